#include "image/file_cache.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <memory>
#include <vector>

#include "util/error.h"
#include "util/log.h"

namespace cidrun::image {
namespace {

// Cached files whose leaves wait for finish() are kept open (their writeback already started);
// past this many, the waiting ones are finished early.
constexpr size_t kMaxPending = 64;

// A new name dirfd/name for the open file fd. AT_EMPTY_PATH links the descriptor itself (allowed
// for a file this process opened since Linux 6.10, before that only with CAP_DAC_READ_SEARCH);
// /proc/self/fd/N is the fallback.
bool link_fd(int fd, int dirfd, const std::string& name) {
  if (::linkat(fd, "", dirfd, name.c_str(), AT_EMPTY_PATH) == 0) return true;
  if (errno != ENOENT && errno != EPERM) return false;
  std::string proc = "/proc/self/fd/" + std::to_string(fd);
  return ::linkat(AT_FDCWD, proc.c_str(), dirfd, name.c_str(), AT_SYMLINK_FOLLOW) == 0;
}

// Removes every extended attribute of fd; false when one cannot be removed.
bool clear_xattrs(int fd) {
  std::vector<char> names(4096);
  ssize_t n = ::flistxattr(fd, names.data(), names.size());
  if (n < 0 && errno == ERANGE) {
    n = ::flistxattr(fd, nullptr, 0);
    if (n < 0) return false;
    names.resize(static_cast<size_t>(n));
    n = ::flistxattr(fd, names.data(), names.size());
  }
  if (n < 0) return errno == ENOTSUP;
  for (size_t at = 0; at < static_cast<size_t>(n);) {
    const char* attr = names.data() + at;
    if (::fremovexattr(fd, attr) != 0 && errno != ENODATA) return false;
    at += std::strlen(attr) + 1;
  }
  return true;
}

}  // namespace

FileCache::FileCache(std::string dir, BlockStore* blocks) : dir_(std::move(dir)), blocks_(blocks) {
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

std::optional<UniqueFd> FileCache::claim_block(const Cid& file, uint64_t size, mode_t mode,
                                               int dirfd, const std::string& name) {
  if (blocks_ == nullptr || !claiming_) return std::nullopt;
  // setuid and setgid programs stay out of the block store's directory: their copy lives in the
  // cache, which only checkouts reach.
  if ((mode & (S_ISUID | S_ISGID)) != 0) return std::nullopt;
  const uid_t euid = ::geteuid();
  // Without root the store must still read its block, so its owner keeps read permission.
  if (euid != 0 && (mode & S_IRUSR) == 0) return std::nullopt;
  auto block = blocks_->open_block_file(file);
  if (!block || block->offset != 0 || block->size != size) return std::nullopt;
  struct stat st {};
  if (::fstat(block->fd.get(), &st) != 0 || !S_ISREG(st.st_mode) || st.st_nlink != 1 ||
      static_cast<uint64_t>(st.st_size) != size || (euid != 0 && st.st_uid != euid)) {
    return std::nullopt;
  }
  if (!link_fd(block->fd.get(), dirfd, name)) {
    if (errno == EXDEV) claiming_ = false;  // the checkout is on another filesystem
    return std::nullopt;
  }
  // Another checkout may claim the same block at the same moment: only one that sees exactly two
  // names (the block's and its own) goes on, the other writes a copy.
  if (::fstat(block->fd.get(), &st) != 0 || st.st_nlink != 2 || !clear_xattrs(block->fd.get())) {
    // xattrs left by an earlier claim (whose checkouts are gone) must not carry over either.
    (void)::unlinkat(dirfd, name.c_str(), 0);
    return std::nullopt;
  }
  ++stats_.blocks_claimed;
  return std::move(block->fd);
}

void FileCache::add_to_cache(const std::string& key, int dirfd, const std::string& name,
                             std::span<const unixfs::LeafExtent> raw_leaves) {
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
    if (blocks_ != nullptr && !raw_leaves.empty()) {
      UniqueFd fd(::openat(fd_.get(), rel.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
      if (!fd.valid()) return;
      // Start the writeback now, so that finish() mostly finds it done.
      (void)::sync_file_range(fd.get(), 0, 0, SYNC_FILE_RANGE_WRITE);
      pending_.push_back(Pending{std::move(fd), dir_ + "/" + rel,
                                 std::vector(raw_leaves.begin(), raw_leaves.end())});
      if (pending_.size() >= kMaxPending) finish();
    }
    return;
  }
  // EEXIST: a concurrent checkout cached the same file first; ours stays a separate copy.
  if (errno == EEXIST) return;
  if (errno == EXDEV || errno == EPERM || errno == EOPNOTSUPP) linking_ = false;
  log::debug("image cache: link " + rel + ": " + std::strerror(errno));
}

void FileCache::finish() {
  auto started = std::chrono::steady_clock::now();
  std::vector<Pending> pending;
  pending.swap(pending_);
  if (pending.empty()) return;
  // The block store drops its copies only once the cached files' bytes are on disk: one syncfs
  // (one journal commit) for them all, where an fdatasync per file costs a commit each. Their
  // writeback started as each was added.
  try {
    blocks_->sync();
  } catch (const Error& e) {
    log::debug(std::string("image cache: ") + e.what());
    return;
  }
  for (auto& p : pending) {
    for (const auto& leaf : p.leaves) {
      try {
        if (blocks_->put_ref(leaf.cid, p.path, leaf.offset, leaf.size)) {
          ++stats_.leaves_referenced;
          stats_.bytes_referenced += leaf.size;
        }
      } catch (const Error& e) {
        // The block keeps its own copy: costs space, never correctness.
        log::debug(std::string("image cache: ") + e.what());
      }
    }
  }
  stats_.finish_time += std::chrono::steady_clock::now() - started;
}

FileCacheSweep sweep_file_cache(const std::string& dir,
                                const std::set<std::pair<dev_t, ino_t>>& referenced) {
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
      if (S_ISREG(st.st_mode) && (st.st_nlink > 1 || referenced.contains({st.st_dev, st.st_ino}))) {
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
