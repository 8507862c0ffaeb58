// The blocks of a CAR response, streamed in DFS order without holding the DAG in memory: the
// blocks that prove the path first, then the target's blocks in the requested dag-scope /
// entity-bytes. Identity blocks are never written (their bytes are in the CID).
#pragma once

#include <functional>
#include <optional>
#include <vector>

#include "gateway/request.h"
#include "store/blockstore.h"

namespace cidrun::gateway {

// Where CAR bytes go. Each returns false when the client is gone (the stream then stops).
struct CarSink {
  // Two pieces sent as one write (the second may be empty).
  std::function<bool(ByteView, ByteView)> write;
  // The first piece, then the block's byte range of its file (sendfile: the bytes never enter
  // this process). Unset: big blocks are read into a buffer and go through write.
  std::function<bool(ByteView, const BlockFile&)> write_file;
};

// The block as a file of the store's own, to send from: nullopt for identity blocks, stores
// that do not keep blocks in files, and references (another file's bytes, which only get()
// checks again).
std::optional<BlockFile> own_block_file(BlockStore& store, const Cid& cid);

// Thrown when the writer reported a closed connection: nothing more can be sent.
class ClientGone : public Error {
 public:
  ClientGone() : Error("client closed the connection") {}
};

// Writes the CARv1 header (roots = [root]) and every block. dups: every occurrence of a block
// in the walk is sent (dups=y) instead of the first only. Throws NotFound when a block is
// missing mid-stream (the caller must then abort the response so the client sees a truncated
// CAR), ClientGone when the sink failed. Blocks the store keeps in files (own_block_file) are
// read from them without going through the store's allocations.
void stream_car(BlockStore& store, const Cid& root, const std::vector<Cid>& path_blocks,
                const Cid& target, exchange::DagScope scope,
                const std::optional<ByteRange>& entity_bytes, bool dups, const CarSink& sink);

}  // namespace cidrun::gateway
