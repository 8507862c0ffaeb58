#include "store/staging.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <memory>

#include "store/reachable.h"
#include "store/repo.h"
#include "util/error.h"
#include "util/fd.h"
#include "util/random.h"

namespace cidrun {
namespace {

constexpr std::string_view kPrefix = "stage-";

}  // namespace

void remove_tree(int dirfd, const std::string& name, bool make_writable) {
  if (::unlinkat(dirfd, name.c_str(), 0) == 0 || errno == ENOENT) return;
  if (errno != EISDIR && errno != EPERM) throw_errno("remove " + name);
  UniqueFd fd(::openat(dirfd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!fd.valid()) {
    if (errno == ENOENT) return;
    throw_errno("open " + name);
  }
  if (make_writable) (void)::fchmod(fd.get(), 0700);
  for (const auto& n : dir_entries(fd.get(), name)) remove_tree(fd.get(), n, make_writable);
  if (::unlinkat(dirfd, name.c_str(), AT_REMOVEDIR) != 0 && errno != ENOENT) {
    throw_errno("remove directory " + name);
  }
}

StagingArea::StagingArea(Repo& repo) : repo_(repo) {
  make_dirs(repo.dir("tmp"), 0700);
  dir_ = repo.dir("tmp") + "/" + std::string(kPrefix) + std::to_string(::getpid()) + "-" +
         std::to_string(random_u64());
  if (::mkdir(dir_.c_str(), 0700) != 0) throw_errno("create staging area " + dir_);
  store_ = std::make_unique<FlatfsStore>(dir_, /*create=*/true);
}

StagingArea::~StagingArea() {
  store_.reset();
  try {
    remove_tree(AT_FDCWD, dir_);
  } catch (const Error&) {
    // Left for `repo gc`, which removes areas of dead processes.
  }
}

uint64_t StagingArea::commit() {
  std::vector<Bytes> keys;
  store_->for_each([&](ByteView mh) { keys.emplace_back(mh.begin(), mh.end()); });
  return move_in(keys);
}

uint64_t StagingArea::commit_reachable(const Cid& root) {
  std::vector<Bytes> keys;
  KeySet seen;
  walk_reachable(*store_, root, seen, IfMissing::kSkip, [&](const Cid& cid, ByteView) {
    auto mh = cid.multihash();
    keys.emplace_back(mh.begin(), mh.end());
    return true;
  });
  return move_in(keys);
}

uint64_t StagingArea::move_in(const std::vector<Bytes>& keys) {
  FlatfsStore& dest = repo_.blocks();
  uint64_t n = 0;
  for (const auto& mh : keys) {
    std::string from = store_->path_of(mh);
    std::string to = dest.path_of(mh);
    std::string shard = to.substr(0, to.rfind('/'));
    if (::mkdir(shard.c_str(), 0755) != 0 && errno != EEXIST) throw_errno("mkdir " + shard);
    // A block the store holds already stays as it is: it may be a checkout's file or a
    // reference to one (image/file_cache.h), which the staged copy would make a second copy of.
    // (Renaming over an existing copy would be harmless and atomic otherwise.)
    if (dest.has(cid_of_multihash(mh))) continue;
    if (::rename(from.c_str(), to.c_str()) != 0) {
      if (errno == ENOENT) continue;  // identity or a key reached twice
      throw_errno("move block into " + to);
    }
    ++n;
  }
  dest.sync();
  return n;
}

size_t StagingArea::remove_stale(const Repo& repo) {
  std::string tmp = repo.dir("tmp");
  UniqueFd dfd(::open(tmp.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dfd.valid()) return 0;
  std::vector<std::string> stale;
  {
    int dup_fd = ::dup(dfd.get());
    if (dup_fd < 0) throw_errno("dup");
    std::unique_ptr<DIR, int (*)(DIR*)> dp(::fdopendir(dup_fd), ::closedir);
    if (!dp) {
      ::close(dup_fd);
      return 0;
    }
    while (dirent* e = ::readdir(dp.get())) {
      std::string_view n = e->d_name;
      if (n.substr(0, kPrefix.size()) != kPrefix) continue;
      long pid = std::atol(std::string(n.substr(kPrefix.size())).c_str());
      if (pid > 0 && (::kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM)) continue;
      stale.emplace_back(n);
    }
  }
  for (const auto& n : stale) remove_tree(dfd.get(), n);
  return stale.size();
}

}  // namespace cidrun
