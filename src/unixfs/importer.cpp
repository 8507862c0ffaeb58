#include "unixfs/importer.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <memory>

#include "ipld/dagpb.h"
#include "unixfs/chunker.h"
#include "util/error.h"
#include "util/fd.h"

namespace cidrun::unixfs {
namespace {

const char* file_kind(mode_t m) {
  if (S_ISFIFO(m)) return "fifo";
  if (S_ISSOCK(m)) return "socket";
  if (S_ISCHR(m)) return "character device";
  if (S_ISBLK(m)) return "block device";
  return "unknown";
}

NodeInfo put_symlink(BlockStore& store, int cid_version, const std::string& target,
                     const Metadata& meta) {
  unixfs_pb::Data d;
  d.type = unixfs_pb::Type::kSymlink;
  d.data = to_bytes(target);
  d.mtime = meta.mtime;  // kubo never gives symlinks a mode
  dagpb::Node node;
  node.data = unixfs_pb::encode(d);
  return put_dagpb(store, cid_version, dagpb::encode(node), 0, 0);
}

std::string join(const std::string& a, const std::string& b) {
  if (a.empty()) return b;
  return a.back() == '/' ? a + b : a + "/" + b;
}

// Reports the bytes read from a file to a progress callback as they are read.
class CountingChunker : public Chunker {
 public:
  CountingChunker(std::unique_ptr<Chunker> inner, const Importer::OnBytes& cb)
      : inner_(std::move(inner)), cb_(cb) {}
  bool next(Bytes& out) override {
    bool more = inner_->next(out);
    if (cb_ && !out.empty()) cb_(out.size());
    return more;
  }

 private:
  std::unique_ptr<Chunker> inner_;
  const Importer::OnBytes& cb_;
};

}  // namespace

Importer::Importer(BlockStore& store, ImportOptions opts, OnAdded on_added, OnBytes on_bytes)
    : store_(store),
      opts_(std::move(opts)),
      on_added_(std::move(on_added)),
      on_bytes_(std::move(on_bytes)) {
  validate_chunker_spec(opts_.chunker);
}

Metadata Importer::metadata_for(unsigned mode, const struct timespec& mtime,
                                bool is_symlink) const {
  Metadata m;
  if (!is_symlink) {
    if (opts_.mode) {
      m.mode = *opts_.mode;
    } else if (opts_.preserve_mode && (mode & 07777) != 0) {
      m.mode = mode & 07777;
    }
  }
  if (opts_.mtime) {
    m.mtime = opts_.mtime;
  } else if (opts_.preserve_mtime) {
    m.mtime = unixfs_pb::UnixTime{mtime.tv_sec, static_cast<uint32_t>(mtime.tv_nsec)};
  }
  return m;
}

NodeInfo Importer::add_file_fd(int fd, const std::string& fs_path, const Metadata& meta,
                               std::optional<uint64_t> expected_size) {
  ByteSource src(fd, fs_path, expected_size);
  CountingChunker chunker(make_chunker(opts_.chunker, src), on_bytes_);
  return build_file(store_, chunker, opts_.layout, meta);
}

NodeInfo Importer::add_stream(int fd, const std::string& display_name) {
  Metadata meta;
  if (opts_.mode) meta.mode = opts_.mode;
  if (opts_.mtime) meta.mtime = opts_.mtime;
  NodeInfo n = add_file_fd(fd, display_name, meta);
  if (on_added_) on_added_({display_name, n.cid, n.tsize, false});
  return n;
}

NodeInfo Importer::add_path(const std::string& fs_path, const std::string& display_name) {
  // Open the parent and work relative to it, so that every later step names exactly the entry
  // that was inspected (no re-resolution of a path that may have changed).
  std::string parent = ".";
  std::string name = fs_path;
  while (name.size() > 1 && name.back() == '/') name.pop_back();
  if (auto slash = name.rfind('/'); slash != std::string::npos) {
    parent = slash == 0 ? "/" : name.substr(0, slash);
    name = name.substr(slash + 1);
  }
  if (name.empty()) name = ".";
  UniqueFd dirfd(::open(parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dirfd.valid()) throw_errno(fs_path);
  pending_dirs_.clear();
  NodeInfo root = add_at(dirfd.get(), name, fs_path, display_name, true);
  // kubo prints files as they are added, then the directories (children before parents).
  for (const auto& d : pending_dirs_) {
    if (on_added_) on_added_(d);
  }
  pending_dirs_.clear();
  return root;
}

NodeInfo Importer::add_at(int dirfd, const std::string& name, const std::string& fs_path,
                          const std::string& display, bool top) {
  struct stat st {};
  if (::fstatat(dirfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) throw_errno(fs_path);

  if (S_ISLNK(st.st_mode)) {
    std::string target(static_cast<size_t>(st.st_size) + 1, '\0');
    ssize_t n = ::readlinkat(dirfd, name.c_str(), target.data(), target.size());
    if (n < 0) throw_errno("readlink " + fs_path);
    if (static_cast<size_t>(n) >= target.size())
      throw Error(fs_path + ": symlink changed while being added");
    target.resize(static_cast<size_t>(n));
    NodeInfo info = put_symlink(store_, opts_.layout.cid_version, target,
                                metadata_for(st.st_mode, st.st_mtim, true));
    if (on_added_) on_added_({display, info.cid, info.tsize, false});
    return info;
  }

  if (S_ISREG(st.st_mode)) {
    UniqueFd fd(::openat(dirfd, name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY));
    if (!fd.valid()) throw_errno(fs_path);
    struct stat before {};
    if (::fstat(fd.get(), &before) != 0) throw_errno("stat " + fs_path);
    if (before.st_ino != st.st_ino || before.st_dev != st.st_dev) {
      throw Error(fs_path + ": file was replaced while being added");
    }
    ::posix_fadvise(fd.get(), 0, 0, POSIX_FADV_SEQUENTIAL);
    NodeInfo info =
        add_file_fd(fd.get(), fs_path, metadata_for(before.st_mode, before.st_mtim, false),
                    static_cast<uint64_t>(before.st_size));
    struct stat after {};
    if (::fstat(fd.get(), &after) != 0) throw_errno("stat " + fs_path);
    if (after.st_size != before.st_size || after.st_mtim.tv_sec != before.st_mtim.tv_sec ||
        after.st_mtim.tv_nsec != before.st_mtim.tv_nsec ||
        info.filesize != static_cast<uint64_t>(after.st_size)) {
      throw Error(fs_path + ": file changed while being added");
    }
    if (on_added_) on_added_({display, info.cid, info.tsize, false});
    return info;
  }

  if (S_ISDIR(st.st_mode)) {
    if (!opts_.recursive)
      throw Error(fs_path + " is a directory, use the '-r' flag to specify directories");
    int fd = ::openat(dirfd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) throw_errno(fs_path);
    std::unique_ptr<DIR, int (*)(DIR*)> dir(::fdopendir(fd), ::closedir);
    if (!dir) {
      ::close(fd);
      throw_errno(fs_path);
    }
    std::vector<std::string> names;
    errno = 0;
    while (dirent* e = ::readdir(dir.get())) {
      std::string n = e->d_name;
      if (n == "." || n == "..") continue;
      if (!opts_.hidden && n[0] == '.') continue;
      names.push_back(std::move(n));
    }
    if (errno != 0) throw_errno("read directory " + fs_path);
    // Go's os.ReadDir order: sorted by name bytes.
    std::sort(names.begin(), names.end());
    std::vector<DirEntry> entries;
    entries.reserve(names.size());
    for (const auto& n : names) {
      NodeInfo child = add_at(::dirfd(dir.get()), n, join(fs_path, n), join(display, n), false);
      entries.push_back({n, child});
    }
    NodeInfo info = build_directory(store_, std::move(entries), opts_.dir,
                                    metadata_for(st.st_mode, st.st_mtim, false));
    pending_dirs_.push_back({display, info.cid, info.tsize, true});
    return info;
  }

  (void)top;
  throw Error("unrecognized file type for " + fs_path + ": " + file_kind(st.st_mode));
}

}  // namespace cidrun::unixfs
