// A block store on disk in kubo's flatfs layout: one file per block, named
// <BASE32(multihash)>.data inside a directory named by the key's next-to-last two characters
// (/repo/flatfs/shard/v1/next-to-last/2). A kubo repo's blocks/ directory can be read as is.
//
// Writes go to an unnamed file (O_TMPFILE) in the shard directory that is linked under the
// block's name once complete (or, where that is not possible, a named temporary file renamed into
// place), so a reader (or a crash) never sees a partial block under a real name. Durability is per
// command: sync() calls syncfs() once, instead of an fsync per block; see docs/ARCHITECTURE.md.
//
// A block may also be held as a reference (put_ref): a symlink under the block's name whose text
// is "ref:<offset>:<size>:<path>", naming a byte range of another file (an image checkout's cached
// file; a relative path is relative to the store directory). The text never resolves as a path,
// so nothing that follows symlinks mistakes it for the block's bytes. A reference whose file is
// gone or too short counts as absent everywhere (has, get, size), and a put replaces it with the
// bytes. kubo reads such a block as missing.
#pragma once

#include <dirent.h>

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
  std::optional<BlockFile> open_block_file(const Cid& cid) override;
  void put_parts(const Cid& cid, std::span<const ByteView> parts) override;
  bool remove(const Cid& cid) override;
  bool put_ref(const Cid& cid, const std::string& path, uint64_t offset, uint64_t size) override;
  void for_each(const std::function<void(ByteView multihash)>& fn) override;
  // Calls fn with the file every reference names (with repeats), for `repo gc`, which keeps
  // those files.
  void for_each_ref_target(const std::function<void(const std::string& path)>& fn);
  void sync() override;

  const std::string& dir() const { return dir_; }
  // The path a block with this multihash has (whether or not it exists).
  std::string path_of(ByteView multihash) const;
  static std::string key_of(ByteView multihash);

 private:
  // How a complete block file gets its name; the first that works is kept.
  enum class LinkMode { kEmptyPath, kProcFd, kRename };
  bool put_unnamed(const std::string& rel, std::span<const ByteView> parts);
  struct Ref {
    uint64_t offset = 0;
    uint64_t size = 0;
    std::string path;  // as written: relative to dir_, or absolute
  };
  // The block named rel (relative to dir_) as a range of an open file: its own file, or the file
  // its reference names. nullopt when absent or a broken reference; `ref` tells which it was.
  std::optional<BlockFile> open_entry(const std::string& rel, bool* ref = nullptr) const;
  std::optional<Ref> read_ref(const std::string& rel) const;
  std::optional<BlockFile> open_ref(const Ref& ref) const;
  // Calls fn for every name in every shard directory but those starting with "." (temporary
  // files).
  void for_each_entry(
      const std::function<void(const std::string& shard, const dirent& entry)>& fn) const;
  // Present: a block file, or a reference whose range exists.
  bool present(const std::string& rel) const;

  std::string dir_;
  UniqueFd dirfd_;
  std::array<std::atomic<bool>, 1024> shard_exists_{};
  std::atomic<LinkMode> link_mode_{LinkMode::kEmptyPath};
};

}  // namespace cidrun
