// The store's own view of a DAG: which blocks a block links to, and which blocks are reachable
// from a root. Pins, gc and verify need this below the UnixFS layer; unlike an export walk they
// must go on past a missing block (to report all of them, or to keep what a lease can reach).
#pragma once

#include <functional>
#include <optional>
#include <unordered_set>
#include <vector>

#include "ipld/dagpb.h"
#include "store/blockstore.h"

namespace cidrun {

using KeySet = std::unordered_set<Bytes, BytesHash>;

// The CIDs a block links to: dag-pb links; raw blocks (and codecs we do not traverse) have none.
// Throws Error naming the CID when a dag-pb block does not decode.
std::vector<Cid> block_links(const Cid& cid, ByteView block);
// The dag-pb node block_links reads its links from, with the same error for a bad one.
dagpb::Node decode_dagpb_block(const Cid& cid, ByteView block);

// The CID kubo prints for a bare store key: CIDv1, raw codec, the stored multihash. Throws Error
// on a malformed multihash.
Cid cid_of_multihash(ByteView multihash);

// What a walk does at a block the store does not have.
enum class IfMissing {
  kThrow,  // throw NotFound naming the block: an export or a push cannot leave a hole
  kSkip,   // walk on past it: gc keeps what is here, verify reports every hole
  kStop,   // end the whole walk there
};

// Visits every block reachable from root once, depth first, links in their stored order (the
// order of `ipfs dag export`). Blocks already in `seen` (CID bytes) are skipped, so one set
// shared across roots visits each block once overall. on_block (nullptr: visit all) returns false
// to leave a block's children out. A missing block is first passed to on_missing (which may
// throw an error of its own), then if_missing applies. Throws Error naming the CID when a dag-pb
// block does not decode.
void walk_reachable(BlockStore& store, const Cid& root, KeySet& seen, IfMissing if_missing,
                    const std::function<bool(const Cid&, ByteView block)>& on_block,
                    const std::function<void(const Cid&)>& on_missing = nullptr);

// The first block below root (root included) that the store does not have, or nullopt when the
// DAG is complete locally.
std::optional<Cid> first_missing(BlockStore& store, const Cid& root);

}  // namespace cidrun
