#include "image/dir_import.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <map>
#include <memory>
#include <tuple>

#include "image/builder.h"
#include "util/error.h"
#include "util/fd.h"
#include "util/log.h"
#include "util/quote.h"

namespace cidrun::image {
namespace {

struct InodeKey {
  dev_t dev;
  ino_t ino;
  // (Not a defaulted <=>: clang-tidy 14 misreads its expansion as a literal 0 pointer.)
  friend bool operator<(const InodeKey& a, const InodeKey& b) {
    return std::tie(a.dev, a.ino) < std::tie(b.dev, b.ino);
  }
};

class DirReader {
 public:
  DirReader(Tree& tree, BlockStore& store, const std::function<void(uint64_t)>& on_bytes)
      : tree_(tree), store_(store), on_bytes_(on_bytes) {}

  DirImportStats run(const std::string& dir) {
    UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!fd.valid()) throw_errno("open " + dir);
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) throw_errno("stat " + dir);
    tree_.root().attr = attr_of(st, xattrs_fd(fd.get(), dir));
    read_dir(fd.get(), tree_.root(), dir, 0);
    return stats_;
  }

 private:
  void read_dir(int fd, Inode& into, const std::string& path, size_t depth) {
    if (depth >= kMaxDirDepth) throw Error(quote(path) + ": directories nested too deeply");
    int dup = ::fcntl(fd, F_DUPFD_CLOEXEC, 3);
    if (dup < 0) throw_errno("dup");
    std::unique_ptr<DIR, int (*)(DIR*)> d(::fdopendir(dup), ::closedir);
    if (!d) {
      ::close(dup);
      throw_errno("read directory " + quote(path));
    }
    std::vector<std::string> names;
    errno = 0;
    while (dirent* e = ::readdir(d.get())) {
      std::string n = e->d_name;
      if (n != "." && n != "..") names.push_back(std::move(n));
    }
    if (errno != 0) throw_errno("read directory " + quote(path));
    std::sort(names.begin(), names.end());
    for (const auto& name : names) {
      std::string p = path + "/";
      p += name;
      if (name.size() > kMaxNameLen) throw Error(quote(p) + ": name longer than 255 bytes");
      InodePtr child = read_entry(fd, name, p, depth);
      if (child) into.children.emplace(name, Child{std::move(child), 0});
    }
  }

  InodePtr read_entry(int dirfd, const std::string& name, const std::string& path, size_t depth) {
    struct stat st {};
    if (::fstatat(dirfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) throw_errno(quote(path));
    ++stats_.entries;
    if (S_ISSOCK(st.st_mode)) {
      if (stats_.sockets_skipped++ == 0) {
        log::warn(quote(path) +
                  " is a socket, which an image cannot hold: skipped (and any other)");
      }
      return nullptr;
    }
    // A second name of an inode already read: the same Inode, so the builder makes a hard link.
    bool linkable = !S_ISDIR(st.st_mode) && st.st_nlink > 1;
    if (linkable) {
      auto it = seen_.find({st.st_dev, st.st_ino});
      if (it != seen_.end()) return it->second;
    }
    InodePtr n;
    if (S_ISDIR(st.st_mode)) {
      UniqueFd fd(::openat(dirfd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (!fd.valid()) throw_errno("open " + quote(path));
      n = make_inode(Kind::kDirectory, attr_of(st, xattrs_fd(fd.get(), path)));
      read_dir(fd.get(), *n, path, depth + 1);
    } else if (S_ISREG(st.st_mode)) {
      UniqueFd fd(::openat(dirfd, name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY));
      if (!fd.valid()) throw_errno("open " + quote(path));
      struct stat before {};
      if (::fstat(fd.get(), &before) != 0) throw_errno("stat " + quote(path));
      if (before.st_ino != st.st_ino || before.st_dev != st.st_dev) {
        throw Error(quote(path) + ": file was replaced while being read");
      }
      ::posix_fadvise(fd.get(), 0, 0, POSIX_FADV_SEQUENTIAL);
      n = make_inode(Kind::kFile, attr_of(before, xattrs_fd(fd.get(), path)));
      unixfs::ByteSource src(fd.get(), path, static_cast<uint64_t>(before.st_size));
      n->content = store_file_content(store_, src);
      struct stat after {};
      if (::fstat(fd.get(), &after) != 0) throw_errno("stat " + quote(path));
      if (after.st_size != before.st_size || after.st_mtim.tv_sec != before.st_mtim.tv_sec ||
          after.st_mtim.tv_nsec != before.st_mtim.tv_nsec ||
          n->content.filesize != static_cast<uint64_t>(after.st_size)) {
        throw Error(quote(path) + ": file changed while being read");
      }
      stats_.bytes += n->content.filesize;
      if (on_bytes_) on_bytes_(n->content.filesize);
    } else if (S_ISLNK(st.st_mode)) {
      std::string target(static_cast<size_t>(st.st_size) + 1, '\0');
      ssize_t len = ::readlinkat(dirfd, name.c_str(), target.data(), target.size());
      if (len < 0) throw_errno("readlink " + quote(path));
      if (static_cast<size_t>(len) >= target.size()) {
        throw Error(quote(path) + ": symlink changed while being read");
      }
      target.resize(static_cast<size_t>(len));
      if (target.empty()) throw Error(quote(path) + ": symlink with an empty target");
      n = make_inode(Kind::kSymlink, attr_of(st, xattrs_path(dirfd, name, path)));
      n->attr.mode = 0777;
      n->target = std::move(target);
    } else if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode) || S_ISFIFO(st.st_mode)) {
      Kind k = S_ISFIFO(st.st_mode)  ? Kind::kFifo
               : S_ISCHR(st.st_mode) ? Kind::kCharDevice
                                     : Kind::kBlockDevice;
      n = make_inode(k, attr_of(st, xattrs_path(dirfd, name, path)));
      if (k != Kind::kFifo) {
        n->major = ::major(st.st_rdev);
        n->minor = ::minor(st.st_rdev);
      }
    } else {
      throw Error(quote(path) + ": unknown file type");
    }
    if (linkable) seen_.emplace(InodeKey{st.st_dev, st.st_ino}, n);
    return n;
  }

  Attr attr_of(const struct stat& st, std::vector<Xattr> xattrs) {
    Attr a;
    a.mode = st.st_mode & 07777;
    a.uid = st.st_uid;
    a.gid = st.st_gid;
    a.mtime_sec = st.st_mtim.tv_sec;
    a.mtime_nsec = static_cast<uint32_t>(st.st_mtim.tv_nsec);
    a.xattrs = std::move(xattrs);
    return a;
  }

  std::vector<Xattr> xattrs_fd(int fd, const std::string& path) {
    return read_xattrs(
        [&](char* buf, size_t n) { return ::flistxattr(fd, buf, n); },
        [&](const char* name, void* buf, size_t n) { return ::fgetxattr(fd, name, buf, n); }, path);
  }

  // Entries that cannot be opened (symlinks, devices, fifos): by name through the directory.
  std::vector<Xattr> xattrs_path(int dirfd, const std::string& name, const std::string& path) {
    std::string p = "/proc/self/fd/" + std::to_string(dirfd) + "/" + name;
    return read_xattrs(
        [&](char* buf, size_t n) { return ::llistxattr(p.c_str(), buf, n); },
        [&](const char* x, void* buf, size_t n) { return ::lgetxattr(p.c_str(), x, buf, n); },
        path);
  }

  template <typename List, typename Get>
  std::vector<Xattr> read_xattrs(List list, Get get, const std::string& path) {
    std::vector<Xattr> out;
    ssize_t len = list(nullptr, 0);
    if (len < 0) {
      if (errno == ENOTSUP || errno == EOPNOTSUPP) return out;
      throw_errno("list xattrs of " + quote(path));
    }
    if (len == 0) return out;
    std::string names(static_cast<size_t>(len), '\0');
    len = list(names.data(), names.size());
    if (len < 0) throw_errno("list xattrs of " + quote(path));
    names.resize(static_cast<size_t>(len));
    for (size_t i = 0; i < names.size();) {
      std::string name(names.c_str() + i);
      i += name.size() + 1;
      if (name.empty()) continue;
      if (!storable_xattr(name)) {
        if (stats_.xattrs_dropped++ == 0) {
          log::warn("xattr " + quote(name) + " of " + quote(path) +
                    " cannot be kept in an image: left out (and any other such)");
        }
        continue;
      }
      ssize_t vlen = get(name.c_str(), nullptr, 0);
      if (vlen < 0) throw_errno("read xattr " + quote(name) + " of " + quote(path));
      Bytes value(static_cast<size_t>(vlen));
      vlen = get(name.c_str(), value.data(), value.size());
      if (vlen < 0) throw_errno("read xattr " + quote(name) + " of " + quote(path));
      value.resize(static_cast<size_t>(vlen));
      out.push_back({std::move(name), std::move(value)});
    }
    std::sort(out.begin(), out.end(),
              [](const Xattr& a, const Xattr& b) { return a.name < b.name; });
    try {
      check_xattrs(out);
    } catch (const Error& e) {
      throw Error(quote(path) + ": " + e.what());
    }
    return out;
  }

  Tree& tree_;
  BlockStore& store_;
  const std::function<void(uint64_t)>& on_bytes_;
  std::map<InodeKey, InodePtr> seen_;
  DirImportStats stats_;
};

}  // namespace

DirImportStats read_directory(Tree& tree, BlockStore& store, const std::string& dir,
                              const std::function<void(uint64_t)>& on_bytes) {
  DirReader r(tree, store, on_bytes);
  return r.run(dir);
}

}  // namespace cidrun::image
