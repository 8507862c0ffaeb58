// A block store on disk in kubo's flatfs layout: one file per block, named
// <BASE32(multihash)>.data inside a directory named by the key's next-to-last two characters
// (/repo/flatfs/shard/v1/next-to-last/2). A kubo repo's blocks/ directory can be read as is.
//
// Writes go to an unnamed file (O_TMPFILE) in the shard directory that is linked under the
// block's name once complete (or, where that is not possible, a named temporary file renamed into
// place), so a reader (or a crash) never sees a partial block under a real name. Durability is per
// command: sync() calls syncfs() once, instead of an fsync per block; see docs/ARCHITECTURE.md.
#pragma once

#include <array>
#include <atomic>
#include <string>

#include "store/blockstore.h"
#include "util/fd.h"

namespace cidrun {

class FlatfsStore : public BlockStore {
 public:
  // Opens the store at dir, creating it (and its SHARDING file) when create is true. Refuses a
  // directory whose SHARDING file names another scheme.
  FlatfsStore(const std::string& dir, bool create);

  bool has(const Cid& cid) override;
  std::optional<Bytes> get(const Cid& cid) override;
  std::optional<uint64_t> size(const Cid& cid) override;
  // The block's file, open for reading (zero-copy sends: sendfile); nullopt when absent.
  std::optional<UniqueFd> open_block(const Cid& cid);
  std::optional<BlockFile> open_block_file(const Cid& cid) override;
  void put_parts(const Cid& cid, std::span<const ByteView> parts) override;
  bool remove(const Cid& cid) override;
  void for_each(const std::function<void(ByteView multihash)>& fn) override;
  void sync() override;

  const std::string& dir() const { return dir_; }
  // The path a block with this multihash has (whether or not it exists).
  std::string path_of(ByteView multihash) const;
  static std::string key_of(ByteView multihash);

 private:
  // How a complete block file gets its name; the first that works is kept.
  enum class LinkMode { kEmptyPath, kProcFd, kRename };
  bool put_unnamed(const std::string& rel, std::span<const ByteView> parts);
  // Opens a block file by its path relative to dir_; nullopt when it does not exist.
  std::optional<UniqueFd> open_rel(const std::string& rel) const;

  std::string dir_;
  UniqueFd dirfd_;
  std::array<std::atomic<bool>, 1024> shard_exists_{};
  std::atomic<LinkMode> link_mode_{LinkMode::kEmptyPath};
};

}  // namespace cidrun
