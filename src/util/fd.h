// An owning file descriptor, and the few whole-file helpers every layer needs.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "util/bytes.h"

namespace cidrun {

class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  ~UniqueFd() { reset(); }
  UniqueFd(UniqueFd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  UniqueFd& operator=(UniqueFd&& o) noexcept {
    if (this != &o) {
      reset();
      fd_ = std::exchange(o.fd_, -1);
    }
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  int release() { return std::exchange(fd_, -1); }
  void reset(int fd = -1);

 private:
  int fd_ = -1;
};

// Reads until `len` bytes or EOF; returns the count read. Retries EINTR; throws on error.
size_t read_full(int fd, void* buf, size_t len, const std::string& what);
// The same at an offset (pread: the file position is left alone).
size_t pread_full(int fd, void* buf, size_t len, uint64_t offset, const std::string& what);
void write_full(int fd, const void* buf, size_t len, const std::string& what);

Bytes read_file(const std::string& path);
std::string read_text_file(const std::string& path);

// Writes a file so that readers see either the old content or the whole new one: a temp file in
// the same directory, fsync'ed when `durable`, then renamed over the target.
void write_file_atomic(const std::string& path, ByteView data, bool durable = true,
                       int mode = 0644);

// The names in an open directory, without "." and "..", in readdir order. `what` names the
// directory in the error message.
std::vector<std::string> dir_entries(int dirfd, const std::string& what);

// mkdir -p; existing directories are fine.
void make_dirs(const std::string& path, int mode = 0755);

// openat2 confined to dirfd: no "..", no absolute paths, no symlinks anywhere in path, no /proc
// magic links (RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS), with O_NOFOLLOW
// and O_CLOEXEC added to flags. Returns the fd, or -1 with errno. On a kernel without openat2
// (before 5.6) a single component falls back to openat with O_NOFOLLOW, which confines it as
// well (not "." or ".."); a path of several components then fails with ENOSYS rather than be
// opened unconfined.
int open_beneath(int dirfd, const std::string& path, uint64_t flags, uint64_t mode = 0);

}  // namespace cidrun
