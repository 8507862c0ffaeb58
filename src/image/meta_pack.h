// An image's metadata pack: its metadata nodes and structure blocks (what
// `GET /ipfs/<meta>?format=car&dag-scope=all` returns, docs/IMAGE-FORMAT.md) copied into one CAR
// file in the repository, <repo>/packs/<meta CIDv1>.car. Every stat and readdir of a lazy mount
// is answered from those blocks; as separate block files a Debian root's 3,500 of them cost a
// fresh mount on a cold disk 0.3 s of small reads before `find` is done, where one sequential
// read of the pack costs milliseconds. The pack is a cache: the blocks stay in the block store,
// every block read from a pack is verified against its CID, and a pack that does not read back
// whole is removed and ignored.
#pragma once

#include <cstddef>
#include <functional>
#include <string>

#include "multiformats/cid.h"
#include "store/blockstore.h"

namespace cidrun {
class Repo;
}

namespace cidrun::image {

std::string meta_pack_path(const Repo& repo, const Cid& meta);

// Writes the pack of `meta` from the blocks of `store` (a temporary file renamed into place, so
// a reader never sees half of one). Returns false and writes nothing when a block of the metadata
// DAG is not in `store`; an existing pack is kept as it is.
bool write_meta_pack(const Repo& repo, BlockStore& store, const Cid& meta);

// When `root` is an image whose metadata is all in `store`: writes its pack unless there is one.
// A cache must not fail the command that fills it: errors become a warning. Returns whether a
// pack is there now.
bool write_image_pack(const Repo& repo, BlockStore& store, const Cid& root) noexcept;

// Passes every block of the pack of `meta` to on_block, each verified against its CID. Returns
// false when there is no pack, or (after a warning, having removed it) when it does not read back
// whole: blocks passed before the fault were verified and may be kept.
bool read_meta_pack(const Repo& repo, const Cid& meta,
                    const std::function<void(const Cid&, ByteView)>& on_block);

// For `repo gc`: removes the packs whose metadata root is no longer in `store`, and temporary
// files left by a writer that died. Returns how many packs went.
size_t sweep_meta_packs(const Repo& repo, BlockStore& store);

}  // namespace cidrun::image
