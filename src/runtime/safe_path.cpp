#include "runtime/safe_path.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <vector>

#include "util/error.h"

namespace cidrun::runtime {
namespace {

int openat2_in_root(int root_fd, const std::string& path, int flags) {
  open_how how{};
  how.flags = static_cast<uint64_t>(flags | O_CLOEXEC);
  // Magic links (/proc/self/fd/...) inside an image could point anywhere on the host.
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  std::string rel = path;
  while (!rel.empty() && rel[0] == '/') rel.erase(0, 1);
  if (rel.empty()) rel = ".";
  for (;;) {
    long fd = ::syscall(SYS_openat2, root_fd, rel.c_str(), &how, sizeof how);
    if (fd >= 0) return static_cast<int>(fd);
    if (errno != EAGAIN && errno != EINTR) return -1;  // EAGAIN: a concurrent rename; retry
  }
}

std::vector<std::string> components(const std::string& path) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < path.size()) {
    size_t j = path.find('/', i);
    if (j == std::string::npos) j = path.size();
    std::string c = path.substr(i, j - i);
    if (!c.empty() && c != ".") out.push_back(c);
    i = j + 1;
  }
  return out;
}

std::string join(const std::vector<std::string>& parts, size_t n) {
  std::string out;
  for (size_t i = 0; i < n; ++i) out += "/" + parts[i];
  return out.empty() ? "/" : out;
}

}  // namespace

UniqueFd make_path_in_root_depth(int root_fd, const std::string& path, bool last_is_file,
                                 mode_t mode, int depth);

std::string fd_path(int fd) {
  return "/proc/self/fd/" + std::to_string(fd);
}

UniqueFd try_open_in_root(int root_fd, const std::string& path, int flags) {
  int fd = openat2_in_root(root_fd, path, flags == 0 ? O_PATH : flags);
  if (fd < 0 && errno != ENOENT) throw_errno("resolve " + path + " inside the root");
  return UniqueFd(fd);
}

UniqueFd open_in_root(int root_fd, const std::string& path, int flags) {
  int fd = openat2_in_root(root_fd, path, flags == 0 ? O_PATH : flags);
  if (fd < 0) throw_errno("resolve " + path + " inside the root");
  return UniqueFd(fd);
}

UniqueFd make_path_in_root_depth(int root_fd, const std::string& path, bool last_is_file,
                                 mode_t mode, int depth) {
  // Most destinations already exist in the image (/proc, /dev, /sys): one lookup then.
  UniqueFd whole(openat2_in_root(root_fd, path, O_PATH));
  if (whole.valid()) return whole;
  if (errno != ENOENT) throw_errno("resolve " + path + " inside the root");
  auto parts = components(path);
  // Each prefix is resolved again from the root, so a symlink met on the way (an existing one, or
  // one raced in after mkdirat) is followed inside the root, never relative to a host directory.
  UniqueFd cur(openat2_in_root(root_fd, "/", O_PATH));
  if (!cur.valid()) throw_errno("open the container root");
  for (size_t i = 0; i < parts.size(); ++i) {
    std::string prefix = join(parts, i + 1);
    UniqueFd next(openat2_in_root(root_fd, prefix, O_PATH));
    if (!next.valid()) {
      if (errno != ENOENT) throw_errno("resolve " + prefix + " inside the root");
      bool file = last_is_file && i + 1 == parts.size();
      int rc;
      if (file) {
        rc = ::mknodat(cur.get(), parts[i].c_str(), S_IFREG | 0644, 0);
      } else {
        rc = ::mkdirat(cur.get(), parts[i].c_str(), mode);
      }
      if (rc < 0 && errno != EEXIST) throw_errno("create " + prefix + " inside the root");
      next = UniqueFd(openat2_in_root(root_fd, prefix, O_PATH));
      if (!next.valid() && errno == ENOENT && depth < 40) {
        // A dangling symlink: create what it points to, read as a path inside the root.
        char target[PATH_MAX];
        ssize_t n = ::readlinkat(cur.get(), parts[i].c_str(), target, sizeof target - 1);
        if (n > 0) {
          target[n] = '\0';
          std::string t = target[0] == '/' ? std::string(target) : join(parts, i) + "/" + target;
          make_path_in_root_depth(root_fd, t, file, mode, depth + 1);
          next = UniqueFd(openat2_in_root(root_fd, prefix, O_PATH));
        }
      }
      if (!next.valid()) throw_errno("resolve " + prefix + " inside the root");
    }
    cur = std::move(next);
  }
  return cur;
}

UniqueFd make_path_in_root(int root_fd, const std::string& path, bool last_is_file, mode_t mode) {
  return make_path_in_root_depth(root_fd, path, last_is_file, mode, 0);
}

std::pair<std::string, std::string> split_parent(const std::string& path) {
  auto parts = components(path);
  if (parts.empty()) throw Error("no file name in path \"" + path + "\"");
  if (parts.back() == "..") throw Error("path ends in ..: \"" + path + "\"");
  return {join(parts, parts.size() - 1), parts.back()};
}

ParentAndName open_parent_in_root(int root_fd, const std::string& path) {
  auto [parent, name] = split_parent(path);
  ParentAndName out;
  out.name = name;
  out.parent = make_path_in_root(root_fd, parent, false);
  return out;
}

}  // namespace cidrun::runtime
