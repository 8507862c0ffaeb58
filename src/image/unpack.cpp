#include "image/unpack.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>
#include <vector>

#include "ipld/protobuf.h"
#include "util/error.h"
#include "util/fd.h"
#include "util/log.h"
#include "util/quote.h"
#include "util/sha256.h"

namespace cidrun::image {
namespace {

timespec mtime_of(const Attr& a) {
  timespec ts{};
  ts.tv_sec = static_cast<time_t>(a.mtime_sec);
  ts.tv_nsec = static_cast<long>(a.mtime_nsec);
  return ts;
}

std::pair<std::string, std::string> split_last(const std::string& path) {
  auto slash = path.rfind('/');
  if (slash == std::string::npos) return {"", path};
  return {path.substr(0, slash), path.substr(slash + 1)};
}

class Unpacker {
 public:
  Unpacker(ImageReader& r, const UnpackOptions& o) : r_(r), o_(o) {}

  UnpackStats run(const std::string& out_dir) {
    auto [parent, base] = split_last(out_dir);
    if (parent.empty() && !out_dir.empty() && out_dir[0] == '/') parent = "/";
    if (parent.empty()) parent = ".";
    if (!unixfs::is_safe_name(base)) {
      throw Error("output path " + quote(out_dir) + " must name a directory to create");
    }
    UniqueFd pfd(::open(parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!pfd.valid()) throw_errno("open " + parent);
    bool created = ::mkdirat(pfd.get(), base.c_str(), 0700) == 0;
    if (!created && errno != EEXIST) throw_errno("create " + out_dir);
    root_.reset(open_beneath(pfd.get(), base, O_RDONLY | O_DIRECTORY));
    if (!root_.valid()) {
      if (errno == ELOOP || errno == ENOTDIR) {
        throw Error("output path " + quote(out_dir) + " exists and is not a directory");
      }
      throw_errno("open " + out_dir);
    }
    if (!created && !dir_entries(root_.get(), out_dir).empty()) {
      throw Error("output directory " + quote(out_dir) +
                  " is not empty; refusing to mix an image with existing files");
    }
    ImageVisitor v;
    v.enter = [&](const std::string& path, const DirView&) { enter(path); };
    v.entry = [&](const std::string& path, const DirEntryView& e) { entry(path, e); };
    v.leave = [&](const std::string& path, const DirView& d) { leave(path, d); };
    walk_image(r_, v);
    return stats_;
  }

 private:
  struct Open {
    std::string path;
    UniqueFd fd;
  };

  void enter(const std::string& path) {
    if (path.empty()) {
      dirs_.push_back({path, UniqueFd(::fcntl(root_.get(), F_DUPFD_CLOEXEC, 3))});
    } else {
      int parent = dirs_.back().fd.get();
      std::string name = split_last(path).second;
      if (::mkdirat(parent, name.c_str(), 0700) != 0) create_failed(path, "directory");
      UniqueFd fd(open_beneath(parent, name, O_RDONLY | O_DIRECTORY));
      if (!fd.valid()) throw_errno("open directory " + quote(path));
      dirs_.push_back({path, std::move(fd)});
    }
    ++stats_.directories;
  }

  void leave(const std::string& path, const DirView& d) {
    int fd = dirs_.back().fd.get();
    try {
      chown_fd(fd, d.self);
      set_xattrs_fd(fd, d.self, path);
      if (::fchmod(fd, d.self.mode) != 0) throw_errno("chmod");
      timespec ts[2] = {{0, UTIME_OMIT}, mtime_of(d.self)};
      if (::futimens(fd, ts) != 0) throw_errno("set mtime");
    } catch (const Error& e) {
      throw Error(where(path) + ": " + e.what());
    }
    dirs_.pop_back();
  }

  void entry(const std::string& path, const DirEntryView& e) {
    int dirfd = dirs_.back().fd.get();
    try {
      if (!e.hardlink.empty()) {
        hardlink(dirfd, path, e);
        return;
      }
      switch (e.kind) {
        case Kind::kFile:
          file(dirfd, e);
          break;
        case Kind::kSymlink:
          symlink(dirfd, e);
          break;
        case Kind::kCharDevice:
        case Kind::kBlockDevice:
        case Kind::kFifo:
          special(dirfd, e);
          break;
        case Kind::kDirectory:
          break;
      }
    } catch (const Error& err) {
      throw Error(where(path) + ": " + err.what());
    }
  }

  void file(int dirfd, const DirEntryView& e) {
    std::string key;
    // A hard-link group's inode stays out of the cache: a container sees its lower files'
    // st_nlink, which must be the group's count of names, not one more for the cache's own.
    const bool shared = o_.linker != nullptr && e.nlink <= 1;
    if (shared) {
      key = image_file_key(e.node, e.attr, o_.ownership);
      if (o_.linker->link_from_cache(key, dirfd, e.name)) {
        ++stats_.files;
        ++stats_.files_linked;
        stats_.bytes += e.size;
        return;
      }
      if (auto leaf = unixfs::whole_file_leaf(r_.dag(), e.node, e.size)) {
        if (auto fd = o_.linker->claim_block(*leaf, e.size, e.attr.mode, dirfd, e.name)) {
          finish_file(fd->get(), e);
          ++stats_.files;
          stats_.bytes += e.size;
          o_.linker->add_to_cache(key, dirfd, e.name, {});
          return;
        }
      }
    }
    UniqueFd fd(open_beneath(dirfd, e.name, O_WRONLY | O_CREAT | O_EXCL, 0600));
    if (!fd.valid()) create_failed(e.name, "file");
    std::vector<unixfs::LeafExtent> leaves;
    uint64_t written = unixfs::write_file_content(r_.dag(), e.node, fd.get(), o_.on_bytes,
                                                  shared ? &leaves : nullptr);
    if (written != e.size) {
      throw Error("file content is " + std::to_string(written) + " bytes but its node claims " +
                  std::to_string(e.size));
    }
    finish_file(fd.get(), e);
    ++stats_.files;
    stats_.bytes += written;
    if (shared) o_.linker->add_to_cache(key, dirfd, e.name, leaves);
  }

  // Owner, xattrs, mode and mtime of a file, in that order: chown clears setuid bits and file
  // capabilities, so they come after it.
  void finish_file(int fd, const DirEntryView& e) {
    chown_fd(fd, e.attr);
    set_xattrs_fd(fd, e.attr, e.name);
    if (::fchmod(fd, e.attr.mode) != 0) throw_errno("chmod");
    timespec ts[2] = {{0, UTIME_OMIT}, mtime_of(e.attr)};
    if (::futimens(fd, ts) != 0) throw_errno("set mtime");
  }

  void symlink(int dirfd, const DirEntryView& e) {
    if (e.target.empty() || e.target.find('\0') != std::string::npos) {
      throw Error("symlink target is empty or contains NUL");
    }
    if (::symlinkat(e.target.c_str(), dirfd, e.name.c_str()) != 0) create_failed(e.name, "symlink");
    finish_path(dirfd, e, /*is_symlink=*/true);
    ++stats_.symlinks;
  }

  void special(int dirfd, const DirEntryView& e) {
    if (e.kind == Kind::kFifo) {
      if (::mknodat(dirfd, e.name.c_str(), S_IFIFO | 0600, 0) != 0) create_failed(e.name, "fifo");
    } else {
      if (o_.ownership == Ownership::kAsCaller) {
        skipped("device node " + quote(e.name) + " (making device nodes needs root)");
        return;
      }
      mode_t type = e.kind == Kind::kCharDevice ? S_IFCHR : S_IFBLK;
      if (::mknodat(dirfd, e.name.c_str(), type | 0600, ::makedev(e.major, e.minor)) != 0) {
        create_failed(e.name, "device node");
      }
    }
    finish_path(dirfd, e, /*is_symlink=*/false);
    ++stats_.specials;
  }

  // Owner, xattrs, mode and mtime of something that cannot be opened for writing (a symlink, a
  // device node, a fifo), by name in its directory.
  void finish_path(int dirfd, const DirEntryView& e, bool is_symlink) {
    if (o_.ownership == Ownership::kKeep &&
        ::fchownat(dirfd, e.name.c_str(), e.attr.uid, e.attr.gid, AT_SYMLINK_NOFOLLOW) != 0) {
      throw_errno("chown");
    }
    if (!e.attr.xattrs.empty()) {
      std::string proc = "/proc/self/fd/" + std::to_string(dirfd) + "/" + e.name;
      for (const auto& x : e.attr.xattrs) {
        if (::lsetxattr(proc.c_str(), x.name.c_str(), x.value.data(), x.value.size(), 0) != 0) {
          xattr_failed(x.name, e.name);
        }
      }
    }
    if (!is_symlink && ::fchmodat(dirfd, e.name.c_str(), e.attr.mode, 0) != 0) {
      throw_errno("chmod");
    }
    timespec ts[2] = {{0, UTIME_OMIT}, mtime_of(e.attr)};
    if (::utimensat(dirfd, e.name.c_str(), ts, AT_SYMLINK_NOFOLLOW) != 0) throw_errno("set mtime");
  }

  void hardlink(int dirfd, const std::string& path, const DirEntryView& e) {
    auto [first_dir, first_name] = split_last(e.hardlink);
    UniqueFd from;
    if (first_dir.empty()) {
      from.reset(::fcntl(root_.get(), F_DUPFD_CLOEXEC, 3));
    } else {
      from.reset(open_beneath(root_.get(), first_dir, O_PATH | O_DIRECTORY));
    }
    if (!from.valid()) throw_errno("open the directory of " + quote(e.hardlink));
    if (::linkat(from.get(), first_name.c_str(), dirfd, e.name.c_str(), 0) != 0) {
      if (errno == ENOENT && e.kind != Kind::kFile && e.kind != Kind::kSymlink &&
          o_.ownership == Ownership::kAsCaller) {
        return;  // its first name, a device node, was skipped
      }
      create_failed(path, "hard link");
    }
    ++stats_.hardlinks;
  }

  void chown_fd(int fd, const Attr& a) {
    if (o_.ownership == Ownership::kKeep && ::fchown(fd, a.uid, a.gid) != 0) throw_errno("chown");
  }

  void set_xattrs_fd(int fd, const Attr& a, const std::string& name) {
    for (const auto& x : a.xattrs) {
      if (::fsetxattr(fd, x.name.c_str(), x.value.data(), x.value.size(), 0) != 0) {
        xattr_failed(x.name, name);
      }
    }
  }

  void xattr_failed(const std::string& xattr, const std::string& name) {
    if (o_.ownership == Ownership::kAsCaller && (errno == EPERM || errno == EACCES)) {
      skipped("xattr " + quote(xattr) + " of " + quote(name) + " (not allowed without root)");
      return;
    }
    throw_errno("set xattr " + quote(xattr));
  }

  void skipped(const std::string& what) {
    if (stats_.skipped++ == 0) log::warn("unpack without root: skipping " + what + " and the like");
  }

  [[noreturn]] static void create_failed(const std::string& name, const char* what) {
    if (errno == EEXIST) {
      throw Error(std::string("a ") + what + " " + quote(name) +
                  " would replace (or write through) an entry already written");
    }
    throw_errno(std::string("create ") + what);
  }

  static std::string where(const std::string& path) {
    return path.empty() ? std::string("the root directory") : quote(path);
  }

  ImageReader& r_;
  const UnpackOptions& o_;
  UniqueFd root_;
  std::vector<Open> dirs_;
  UnpackStats stats_;
};

}  // namespace

std::string image_file_key(const Cid& file, const Attr& attr, Ownership ownership) {
  bool keep = ownership == Ownership::kKeep;
  unixfs_pb::UnixTime t{attr.mtime_sec, attr.mtime_nsec};
  std::string key = unixfs::file_link_key(file, attr.mode, keep ? attr.uid : ::geteuid(),
                                          keep ? attr.gid : ::getegid(), t);
  if (!attr.xattrs.empty()) {
    Bytes enc;
    for (const auto& x : attr.xattrs) {
      pb::put_bytes(enc, 1, as_bytes(x.name));
      pb::put_bytes(enc, 2, x.value);
    }
    Sha256Digest d = sha256(enc);
    key += ".x" + to_hex(ByteView(d.data(), 12));
  }
  return key;
}

UnpackStats unpack_image(ImageReader& reader, const std::string& out_dir,
                         const UnpackOptions& opts) {
  if (out_dir.empty()) throw Error("empty output path");
  Unpacker u(reader, opts);
  return u.run(out_dir);
}

}  // namespace cidrun::image
