#include "image/file_cache.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <vector>

#include "util/error.h"
#include "util/log.h"

namespace cidrun::image {
FileCache::FileCache(std::string dir) : dir_(std::move(dir)) {
  make_dirs(dir_, 0700);
  fd_.reset(::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd_.valid()) throw_errno("open file cache " + dir_);
}

// Two characters from the end of the CID (its start is the same for every CID of one kind)
// spread the files over up to 1024 directories.
std::string FileCache::shard_of(const std::string& key) const {
  size_t dot = key.find('.');
  std::string cid = key.substr(0, dot);
  return cid.size() >= 3 ? cid.substr(cid.size() - 3, 2) : "_";
}

bool FileCache::link_from_cache(const std::string& key, int dirfd, const std::string& name) {
  if (!linking_ || in_checkout_.contains(key)) return false;
  std::string rel = shard_of(key) + "/" + key;
  if (::linkat(fd_.get(), rel.c_str(), dirfd, name.c_str(), 0) == 0) {
    in_checkout_.insert(key);
    return true;
  }
  if (errno == EXDEV || errno == EPERM || errno == EOPNOTSUPP) {
    log::debug("image cache: hard links refused (" + std::string(std::strerror(errno)) +
               "); writing copies");
    linking_ = false;
  }
  // ENOENT: not cached yet. EMLINK: this inode is full; the new copy stands alone.
  return false;
}

void FileCache::add_to_cache(const std::string& key, int dirfd, const std::string& name) {
  // A copy written because the checkout already holds the cached inode stays a copy.
  if (!linking_ || in_checkout_.contains(key)) return;
  std::string shard = shard_of(key);
  if (::mkdirat(fd_.get(), shard.c_str(), 0700) != 0 && errno != EEXIST) {
    log::debug("image cache: mkdir " + shard + ": " + std::strerror(errno));
    return;
  }
  std::string rel = shard + "/" + key;
  if (::linkat(dirfd, name.c_str(), fd_.get(), rel.c_str(), 0) == 0) {
    in_checkout_.insert(key);
    return;
  }
  // EEXIST: a concurrent checkout cached the same file first; ours stays a separate copy.
  if (errno == EEXIST) return;
  if (errno == EXDEV || errno == EPERM || errno == EOPNOTSUPP) linking_ = false;
  log::debug("image cache: link " + rel + ": " + std::strerror(errno));
}

FileCacheSweep sweep_file_cache(const std::string& dir) {
  FileCacheSweep r;
  UniqueFd top(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW));
  if (!top.valid()) {
    if (errno == ENOENT) return r;
    throw_errno("open file cache " + dir);
  }
  for (const auto& shard : dir_entries(top.get(), dir)) {
    UniqueFd sfd(
        ::openat(top.get(), shard.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW));
    if (!sfd.valid()) continue;
    for (const auto& name : dir_entries(sfd.get(), std::string(dir).append("/").append(shard))) {
      struct stat st {};
      if (::fstatat(sfd.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
      if (S_ISREG(st.st_mode) && st.st_nlink > 1) {
        ++r.files_kept;
        r.bytes_kept += static_cast<uint64_t>(st.st_size);
        continue;
      }
      if (::unlinkat(sfd.get(), name.c_str(), 0) == 0) {
        ++r.files_removed;
        r.bytes_removed += static_cast<uint64_t>(st.st_size);
      }
    }
    // Empty shards go too; a shard a checkout is filling right now is not empty (ENOTEMPTY), and
    // one emptied under a checkout is recreated by its next add_to_cache.
    (void)::unlinkat(top.get(), shard.c_str(), AT_REMOVEDIR);
  }
  return r;
}

}  // namespace cidrun::image
