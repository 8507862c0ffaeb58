#include "image/gc.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "image/checkout.h"
#include "store/lease.h"
#include "store/repo.h"
#include "store/repo_lock.h"
#include "store/staging.h"
#include "util/error.h"
#include "util/log.h"

namespace cidrun::image {
namespace {

std::vector<std::string> entries(const std::string& dir) {
  std::vector<std::string> names;
  std::unique_ptr<DIR, int (*)(DIR*)> dp(::opendir(dir.c_str()), ::closedir);
  if (!dp) {
    if (errno == ENOENT) return names;
    throw_errno("read directory " + dir);
  }
  while (dirent* e = ::readdir(dp.get())) {
    std::string n = e->d_name;
    if (n != "." && n != "..") names.push_back(n);
  }
  return names;
}

// ".staging-<pid>-<random>": alive while its pid is.
bool staging_owner_alive(const std::string& name) {
  size_t start = std::string(".staging-").size();
  size_t dash = name.find('-', start);
  if (dash == std::string::npos) return false;
  pid_t pid = 0;
  try {
    pid = static_cast<pid_t>(std::stol(name.substr(start, dash - start)));
  } catch (const std::exception&) {
    return false;
  }
  return pid > 0 && (::kill(pid, 0) == 0 || errno == EPERM);
}

}  // namespace

ImageGcResult collect_images(Repo& repo, bool wait) {
  RepoLock lock(repo, RepoLock::Mode::kExclusive, wait);
  ImageGcResult r;
  std::string images = repo.dir("images");
  std::set<std::string> keep;
  for (const auto& [cid, type] : repo.pins()) keep.insert(cache_name(cid));
  for (const auto& lease : Lease::list(repo))
    if (lease.live) keep.insert(cache_name(lease.root));

  UniqueFd dir(::open(images.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dir.valid()) {
    if (errno == ENOENT) return r;
    throw_errno("open " + images);
  }
  for (const auto& name : entries(images)) {
    if (name == "files") continue;
    if (name.rfind(".staging-", 0) == 0) {
      if (staging_owner_alive(name)) continue;
      remove_tree(dir.get(), name, /*make_writable=*/true);
      ++r.staging_removed;
      continue;
    }
    if (keep.count(name)) {
      ++r.checkouts_kept;
      continue;
    }
    log::debug("repo gc: removing image checkout " + name);
    remove_tree(dir.get(), name, /*make_writable=*/true);
    ++r.checkouts_removed;
  }
  return r;
}

FileCacheSweep sweep_image_files(Repo& repo) {
  RepoLock lock(repo, RepoLock::Mode::kExclusive);
  std::set<std::pair<dev_t, ino_t>> referenced;
  repo.blocks().for_each_ref_target([&](const std::string& path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) == 0) referenced.insert({st.st_dev, st.st_ino});
  });
  return sweep_file_cache(repo.dir("images") + "/files", referenced);
}

}  // namespace cidrun::image
