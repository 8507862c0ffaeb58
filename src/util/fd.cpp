#include "util/fd.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <memory>

#include "util/error.h"
#include "util/random.h"

namespace cidrun {

void UniqueFd::reset(int fd) {
  if (fd_ >= 0) ::close(fd_);
  fd_ = fd;
}

namespace {

// Calls read_some(dst, n, done) until len bytes are read or it returns 0 (end of file); EINTR
// is retried, any other error thrown. Returns the count read.
template <class ReadSome>
size_t read_until_full(void* buf, size_t len, const std::string& what, ReadSome read_some) {
  size_t got = 0;
  auto* p = static_cast<uint8_t*>(buf);
  while (got < len) {
    ssize_t n = read_some(p + got, len - got, got);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw_errno("read " + what);
    }
    if (n == 0) break;
    got += static_cast<size_t>(n);
  }
  return got;
}

}  // namespace

size_t read_full(int fd, void* buf, size_t len, const std::string& what) {
  return read_until_full(buf, len, what,
                         [fd](uint8_t* dst, size_t n, size_t) { return ::read(fd, dst, n); });
}

size_t pread_full(int fd, void* buf, size_t len, uint64_t offset, const std::string& what) {
  return read_until_full(buf, len, what, [fd, offset](uint8_t* dst, size_t n, size_t done) {
    return ::pread(fd, dst, n, static_cast<off_t>(offset + done));
  });
}

void write_full(int fd, const void* buf, size_t len, const std::string& what) {
  const auto* p = static_cast<const uint8_t*>(buf);
  while (len > 0) {
    ssize_t n = ::write(fd, p, len);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw_errno("write " + what);
    }
    p += n;
    len -= static_cast<size_t>(n);
  }
}

Bytes read_file(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) throw_errno(path);
  Bytes out;
  uint8_t buf[65536];
  for (;;) {
    size_t n = read_full(fd.get(), buf, sizeof buf, path);
    out.insert(out.end(), buf, buf + n);
    if (n < sizeof buf) break;
  }
  return out;
}

std::string read_text_file(const std::string& path) {
  Bytes b = read_file(path);
  return {b.begin(), b.end()};
}

void write_file_atomic(const std::string& path, ByteView data, bool durable, int mode) {
  std::string tmp =
      path + ".tmp-" + std::to_string(::getpid()) + "-" + std::to_string(random_u64());
  UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode));
  if (!fd.valid()) throw_errno("create " + tmp);
  try {
    write_full(fd.get(), data.data(), data.size(), tmp);
    if (durable && ::fsync(fd.get()) != 0) throw_errno("fsync " + tmp);
    fd.reset();
    if (::rename(tmp.c_str(), path.c_str()) != 0) throw_errno("rename " + tmp + " to " + path);
  } catch (...) {
    ::unlink(tmp.c_str());
    throw;
  }
}

void make_dirs(const std::string& path, int mode) {
  if (path.empty()) return;
  std::string cur;
  size_t pos = 0;
  while (pos != std::string::npos) {
    pos = path.find('/', pos + 1);
    cur = path.substr(0, pos);
    if (cur.empty()) continue;
    if (::mkdir(cur.c_str(), static_cast<mode_t>(mode)) != 0 && errno != EEXIST) {
      throw_errno("mkdir " + cur);
    }
  }
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) throw_errno("stat " + path);
  if (!S_ISDIR(st.st_mode)) throw Error(path + ": not a directory");
}

std::vector<std::string> dir_entries(int dirfd, const std::string& what) {
  // fdopendir takes ownership of its fd, so it gets a duplicate and the caller keeps dirfd.
  int dup_fd = ::dup(dirfd);
  if (dup_fd < 0) throw_errno("dup");
  std::unique_ptr<DIR, int (*)(DIR*)> dp(::fdopendir(dup_fd), ::closedir);
  if (!dp) {
    ::close(dup_fd);
    throw_errno("read directory " + what);
  }
  std::vector<std::string> names;
  while (dirent* e = ::readdir(dp.get())) {
    std::string_view n = e->d_name;
    if (n != "." && n != "..") names.emplace_back(n);
  }
  return names;
}

int open_beneath(int dirfd, const std::string& path, uint64_t flags, uint64_t mode) {
  open_how how{};
  how.flags = flags | O_NOFOLLOW | O_CLOEXEC;
  how.mode = mode;
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
  long fd = ::syscall(SYS_openat2, dirfd, path.c_str(), &how, sizeof how);
  if (fd < 0 && errno == ENOSYS && path.find('/') == std::string::npos && path != "." &&
      path != "..") {
    fd = ::openat(dirfd, path.c_str(), static_cast<int>(flags | O_NOFOLLOW | O_CLOEXEC),
                  static_cast<mode_t>(mode));
  }
  return static_cast<int>(fd);
}

}  // namespace cidrun
