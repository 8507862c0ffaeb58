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

// Receives CAR bytes; returns false when the client is gone (the stream then stops).
using CarWriter = std::function<bool(ByteView)>;

// Thrown when the writer reported a closed connection: nothing more can be sent.
class ClientGone : public Error {
 public:
  ClientGone() : Error("client closed the connection") {}
};

// Writes the CARv1 header (roots = [root]) and every block. Throws NotFound when a block is
// missing mid-stream (the caller must then abort the response so the client sees a truncated
// CAR), ClientGone when the writer failed.
void stream_car(BlockStore& store, const Cid& root, const std::vector<Cid>& path_blocks,
                const Cid& target, exchange::DagScope scope,
                const std::optional<ByteRange>& entity_bytes, const CarWriter& write);

}  // namespace cidrun::gateway
