// Where blocks come from: one small interface, implementations chosen by URL (ccache's remote
// storage backends, applied to IPFS):
//   kubo+http://HOST:PORT   a kubo daemon's RPC API (block/get, dag/export)
//   kubo                    the local kubo daemon named by $IPFS_PATH/api or ~/.ipfs/api
//   /ip4/H/tcp/P            the same, given as kubo's API multiaddr
//   /ip4/H/tcp/P/p2p/ID     a libp2p peer (any IPFS node) asked over bitswap (exchange/bitswap.h)
//   routing+http(s)://HOST  a Delegated Routing V1 server: the providers it names, used together
//   http(s)://HOST[:PORT]   an IPFS Trustless Gateway (application/vnd.ipld.raw and .car)
//   car:PATH                a CARv1 or CARv2 file, read-only
//   flatfs:DIR              a cidrun or kubo block directory (or a repo containing blocks/),
//   read-only
//
// Nothing a source returns is trusted: every implementation hash-checks a block against its CID
// before handing it out, and throws SourceError when the source failed or lied, so the caller can
// mark that source bad and try another.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>

#include "multiformats/cid.h"
#include "util/bytes.h"
#include "util/error.h"

namespace cidrun::exchange {

// A source that failed (transport error, HTTP error, timeout) or misbehaved (wrong bytes, a
// malformed or oversized answer). Distinct from NotFound, which is an honest "don't have it".
class SourceError : public Error {
 public:
  explicit SourceError(const std::string& what) : Error(what) {}
};

// dag-scope of the trustless gateway spec: the block alone, the blocks of one UnixFS entity
// (a whole file, a directory's node and HAMT shards), or the whole DAG below.
enum class DagScope { kBlock, kEntity, kAll };

// Receives the CAR's blocks, each already checked against its CID. Throwing stops the stream
// (a SourceError from here marks the source bad, as a bad block does).
using CarBlockHandler = std::function<void(const Cid&, ByteView)>;

class BlockSource {
 public:
  virtual ~BlockSource() = default;
  // The URL the source was opened from, for messages.
  virtual const std::string& url() const = 0;
  // The block's bytes, verified against cid; nullopt when the source does not have it.
  virtual std::optional<Bytes> get(const Cid& cid) = 0;
  // The same bytes, verified, in scratch (or wherever the source keeps them): valid until the
  // next call with this scratch. For a caller that fetches block after block: an HTTP source
  // reads the body straight into scratch, so a reused scratch costs no allocation, zero-fill or
  // page faults per block.
  virtual std::optional<ByteView> get_into(const Cid& cid, Bytes& scratch);
  // Stops waiting for cid: a get_into for it in progress on another thread may return early
  // (nullopt), and the source tells its peer it no longer wants it, where it can (bitswap). For
  // a caller that got the block elsewhere first.
  virtual void cancel(const Cid& /*cid*/) {}
  // A hint: these blocks will be asked for soon (the missing children of a node just fetched).
  // A source that can ask for many in one message (bitswap's wantlist) may start now, so that
  // the get_into calls that follow find them on their way or arrived. Nothing depends on it.
  virtual void want_soon(std::span<const Cid> /*cids*/) {}
  // Whether get_car streams a whole subtree in one request (gateway, kubo dag/export, CAR file).
  virtual bool can_stream_car() const { return false; }
  // Whether its answers come compressed (HTTP content coding): then one long CAR stream packs
  // better than many short ones and single blocks.
  virtual bool codes() const { return false; }
  // Streams the blocks below root in `scope` (in the source's order) to on_block. Returns false
  // when the source does not have root. Blocks are verified; completeness is the caller's job.
  virtual bool get_car(const Cid& root, DagScope scope, const CarBlockHandler& on_block);
};

// Opens a source from its URL; throws Error for an unknown scheme or an unusable location.
std::unique_ptr<BlockSource> open_source(const std::string& url);

// Finds a running kubo daemon through $IPFS_PATH/api (or ~/.ipfs/api): "kubo+http://HOST:PORT",
// or "" when there is none.
std::string find_local_kubo();

// Throws SourceError unless data is the block cid names and no larger than the block limit.
void verify_block(const std::string& source, const Cid& cid, ByteView data);

}  // namespace cidrun::exchange
