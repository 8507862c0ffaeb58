// The store's own view of a DAG: which blocks a block links to, and which blocks are reachable
// from a root. Pins, gc and verify need this below the UnixFS layer; unlike an export walk they
// must go on past a missing block (to report all of them, or to keep what a lease can reach).
#pragma once

#include <functional>
#include <optional>
#include <unordered_set>
#include <vector>

#include "store/blockstore.h"

namespace cidrun {

using KeySet = std::unordered_set<Bytes, BytesHash>;

// The CIDs a block links to: dag-pb links; raw blocks (and codecs we do not traverse) have none.
// Throws Error naming the CID when a dag-pb block does not decode.
std::vector<Cid> block_links(const Cid& cid, ByteView block);

// The CID kubo prints for a bare store key: CIDv1, raw codec, the stored multihash. Throws Error
// on a malformed multihash.
Cid cid_of_multihash(ByteView multihash);

// Visits every block reachable from root once, depth first. Blocks already in `seen` (CID bytes)
// are skipped, so one set shared across roots visits each block once overall. A missing block
// is passed to on_missing and not descended into.
void walk_reachable(BlockStore& store, const Cid& root, KeySet& seen,
                    const std::function<void(const Cid&, ByteView block)>& on_block,
                    const std::function<void(const Cid&)>& on_missing);

// The first block below root (root included) that the store does not have, or nullopt when the
// DAG is complete locally.
std::optional<Cid> first_missing(BlockStore& store, const Cid& root);

}  // namespace cidrun
