// The per-file cache under an image cache: <repo>/images/files/<xx>/<key>, one inode per file
// content plus the metadata a hard link shares (mode, owner, mtime; see unixfs::file_link_key).
// Checkouts hard-link their files from here, so images that hold the same file (a shared libc,
// busybox in two roots) store it once. Nothing ever writes a cached file after it is complete:
// checkouts are read-only lower layers of per-container overlays, and overlayfs copies a file up
// before the container's first write to it.
//
// One FileCache serves one checkout, and links each cached inode into it at most once: a
// container sees its lower files' inodes as they are, so two names of one image linked to one
// cached inode would look like a hard-link group the image never had (`du` counting one of them,
// `tar` and `cp -a` joining them). A second file of the checkout with the same key is written as
// a copy of its own. What sharing still shows inside a container is st_nlink: a cached file's
// count includes the cache's own name and every other checkout that links it
// (docs/ARCHITECTURE.md, under "run").
//
// Given the block store, the cache also keeps each file's bytes once on disk (kubo's filestore
// idea, the other way round where it can): a file that is one raw block becomes that block's own
// inode (claim_block), and the raw leaves of a bigger file become references to the cached file
// (BlockStore::put_ref), after finish() has made the cached files durable. `repo gc` keeps a
// cached file while a reference names it.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

#include "store/blockstore.h"
#include "unixfs/exporter.h"
#include "util/fd.h"

namespace cidrun::image {

class FileCache : public unixfs::FileLinker {
 public:
  // dir is created when missing. A cache that cannot be used (another filesystem than the
  // checkout, links refused) only costs sharing: files are then written as plain copies.
  // blocks: the store whose blocks the checkout reads (null: files are only shared between
  // checkouts, the blocks keep their own copies).
  explicit FileCache(std::string dir, BlockStore* blocks = nullptr);

  bool link_from_cache(const std::string& key, int dirfd, const std::string& name) override;
  std::optional<UniqueFd> claim_block(const Cid& file, uint64_t size, mode_t mode, int dirfd,
                                      const std::string& name) override;
  void add_to_cache(const std::string& key, int dirfd, const std::string& name,
                    std::span<const unixfs::LeafExtent> raw_leaves) override;
  // Makes the cached files added so far durable, then lets the block store hold their raw leaves
  // as references to them. Call once the checkout is complete; a checkout that failed simply
  // never calls it (its blocks keep their bytes).
  void finish();

  const std::string& dir() const { return dir_; }
  struct Stats {
    uint64_t blocks_claimed = 0;  // files that became their block's inode
    uint64_t leaves_referenced = 0;
    uint64_t bytes_referenced = 0;
    std::chrono::steady_clock::duration finish_time{};  // waiting for the disk, making references
  };
  const Stats& stats() const { return stats_; }

 private:
  struct Pending {
    UniqueFd fd;
    std::string path;
    std::vector<unixfs::LeafExtent> leaves;
  };
  std::string shard_of(const std::string& key) const;

  std::string dir_;
  UniqueFd fd_;
  BlockStore* blocks_;
  bool linking_ = true;   // false after the filesystem refused a link outright (EXDEV, EPERM)
  bool claiming_ = true;  // false once blocks and checkout proved to be on two filesystems
  std::unordered_set<std::string> in_checkout_;  // keys whose cached inode this checkout holds
  std::vector<Pending> pending_;                 // cached files whose leaves wait for finish()
  Stats stats_;
};

struct FileCacheSweep {
  uint64_t files_removed = 0;
  uint64_t bytes_removed = 0;
  uint64_t files_kept = 0;
  uint64_t bytes_kept = 0;
};

// Removes every cached file no checkout links to any more (st_nlink == 1) and no block reference
// names (`referenced`: the files' device and inode numbers). Safe against a checkout running at
// the same time: one that links a file just before it is removed keeps its own name for the
// inode, and one that finds it gone writes a copy.
FileCacheSweep sweep_file_cache(const std::string& dir,
                                const std::set<std::pair<dev_t, ino_t>>& referenced = {});

}  // namespace cidrun::image
