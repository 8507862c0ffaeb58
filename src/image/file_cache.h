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
#pragma once

#include <cstdint>
#include <string>
#include <unordered_set>

#include "unixfs/exporter.h"
#include "util/fd.h"

namespace cidrun::image {

class FileCache : public unixfs::FileLinker {
 public:
  // dir is created when missing. A cache that cannot be used (another filesystem than the
  // checkout, links refused) only costs sharing: files are then written as plain copies.
  explicit FileCache(std::string dir);

  bool link_from_cache(const std::string& key, int dirfd, const std::string& name) override;
  void add_to_cache(const std::string& key, int dirfd, const std::string& name) override;

  const std::string& dir() const { return dir_; }

 private:
  std::string shard_of(const std::string& key) const;

  std::string dir_;
  UniqueFd fd_;
  bool linking_ = true;  // false after the filesystem refused a link outright (EXDEV, EPERM)
  std::unordered_set<std::string> in_checkout_;  // keys whose cached inode this checkout holds
};

struct FileCacheSweep {
  uint64_t files_removed = 0;
  uint64_t bytes_removed = 0;
  uint64_t files_kept = 0;
  uint64_t bytes_kept = 0;
};

// Removes every cached file no checkout links to any more (st_nlink == 1). Safe against a
// checkout running at the same time: one that links a file just before it is removed keeps its
// own name for the inode, and one that finds it gone writes a copy.
FileCacheSweep sweep_file_cache(const std::string& dir);

}  // namespace cidrun::image
