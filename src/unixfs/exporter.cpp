#include "unixfs/exporter.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <memory>
#include <optional>
#include <vector>

#include "ipld/dagpb.h"
#include "ipld/unixfs_pb.h"
#include "util/error.h"
#include "util/fd.h"
#include "util/quote.h"
#include "util/varint.h"

namespace cidrun::unixfs {
namespace {

// Errors already prefixed with the entry path; outer levels pass them on unchanged.
class ExportError : public Error {
 public:
  using Error::Error;
};
class ExportNotFound : public NotFound {
 public:
  using NotFound::NotFound;
};

timespec to_timespec(const unixfs_pb::UnixTime& t) {
  timespec ts{};
  ts.tv_sec = static_cast<time_t>(t.seconds);
  ts.tv_nsec = static_cast<long>(t.nanos);
  return ts;
}

mode_t current_umask() {
  mode_t m = ::umask(022);
  ::umask(m);
  return m;
}

std::pair<std::string, std::string> split_parent(std::string p) {
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  auto slash = p.rfind('/');
  if (slash == std::string::npos) return {".", p};
  return {slash == 0 ? "/" : p.substr(0, slash), p.substr(slash + 1)};
}

// The parts of a file node the copier needs; its data is a byte range of the block (no copy).
struct FileNodeView {
  std::vector<Cid> links;
  std::optional<uint64_t> filesize;
  std::vector<uint64_t> blocksizes;
  uint64_t data_offset = 0;  // where data starts in the block
  uint64_t data_len = 0;
};

// The UnixFS fields of a file node, decoded by the one decoder every reader uses
// (unixfs_pb::decode_without_data: a repeated field counts as protobuf says, so `get` and
// `cat` can never see different bytes for one CID). Returns where its Data field lies in unixfs.
std::optional<ByteView> file_fields(const Cid& cid, ByteView unixfs, FileNodeView& v) {
  std::optional<ByteView> data;
  unixfs_pb::Data d;
  try {
    d = unixfs_pb::decode_without_data(unixfs, data);
  } catch (const Error& e) {
    throw Error(cid.str() + ": " + e.what());
  }
  if (d.type != unixfs_pb::Type::kFile && d.type != unixfs_pb::Type::kRaw) {
    throw Error(cid.str() + ": a file links to a node that is not file data");
  }
  // The sizes are checked (unixfs_pb::checked_file_size) once the node's data length is known.
  v.filesize = d.filesize;
  v.blocksizes = std::move(d.blocksizes);
  return data;
}

FileNodeView parse_file_node(const Cid& cid, ByteView block) {
  FileNodeView v;
  std::optional<ByteView> unixfs;
  dagpb::Node node;
  try {
    node = dagpb::decode_without_data(block, unixfs);
  } catch (const Error& e) {
    throw Error(cid.str() + ": " + e.what());
  }
  if (!unixfs) throw Error(cid.str() + ": dag-pb node without UnixFS data");
  v.links.reserve(node.links.size());
  for (auto& l : node.links) v.links.push_back(std::move(l.hash));
  if (auto data = file_fields(cid, *unixfs, v)) {
    v.data_offset = static_cast<uint64_t>(data->data() - block.data());
    v.data_len = data->size();
  }
  return v;
}

// Copies a file's bytes into out_fd with copy_file_range, straight from the block files of a
// store that keeps blocks in files (BlockStore::open_block_file): the data of a leaf is a byte
// range of its block file (all of it for a raw leaf), so the kernel copies page cache to page cache
// as `cp` does, and the file's bytes never pass through our memory. Every size claim is checked as
// FileReader checks it: each child must yield exactly its blocksize, each node exactly its
// filesize.
class BlockFileCopier {
 public:
  BlockFileCopier(BlockStore& store, int out_fd, std::vector<LeafExtent>* leaves)
      : store_(store), out_(out_fd), leaves_(leaves) {}

  uint64_t copy(const Cid& root) { return copy_node(root, std::nullopt, 0); }

 private:
  uint64_t copy_node(const Cid& cid, std::optional<uint64_t> expected, int depth) {
    if (depth > kMaxDagDepth) throw Error(cid.str() + ": file DAG nested too deeply");
    if (cid.is_identity() || (cid.codec() != kCodecRaw && cid.codec() != kCodecDagPb)) {
      throw Error(cid.str() + ": unsupported block in a file");
    }
    std::string path = "block " + cid.str();
    auto file = store_.open_block_file(cid);
    if (!file) throw NotFound("block " + cid.str() + " not found");
    UniqueFd fd = std::move(file->fd);
    uint64_t size = file->size;
    uint64_t base = file->offset;
    if (cid.codec() == kCodecRaw) {
      check(cid, size, expected);
      if (leaves_) leaves_->push_back({cid, written_, size});
      copy_range(fd.get(), base, size, path);
      return size;
    }
    if (size > kMaxBlock) throw Error(cid.str() + ": block of " + std::to_string(size) + " bytes");
    FileNodeView v;
    bool whole = base != 0 || !read_leaf_around_data(fd.get(), size, cid, v);
    if (whole) {
      buf_.resize(size);
      if (pread_full(fd.get(), buf_.data(), size, base, path) != size)
        throw Error(path + ": short read");
      v = parse_file_node(cid, buf_);
    }
    uint64_t total =
        unixfs_pb::checked_file_size(cid, v.data_len, v.blocksizes, v.links.size(), v.filesize);
    check(cid, total, expected);
    if (v.data_len > 0 && whole) {
      // Already in memory (small nodes, odd shapes): no second read.
      write_full(out_, buf_.data() + v.data_offset, v.data_len, "file");
      written_ += v.data_len;
    } else if (v.data_len > 0) {
      copy_range(fd.get(), base + v.data_offset, v.data_len, path);
    }
    fd.reset();
    // buf_ is reused below: keep what we still need from this node.
    std::vector<Cid> links = std::move(v.links);
    std::vector<uint64_t> sizes = std::move(v.blocksizes);
    for (size_t i = 0; i < links.size(); ++i) copy_node(links[i], sizes[i], depth + 1);
    return total;
  }

  // A big leaf in canonical form is [0a len][08 type][12 len DATA][filesize, mode, mtime...]:
  // read the few bytes around DATA, never DATA itself, which copy_file_range then moves. Any
  // other shape (links, unusual field order) returns false and the block is read whole.
  bool read_leaf_around_data(int fd, uint64_t size, const Cid& cid, FileNodeView& v) {
    if (size < 4096) return false;
    uint8_t head[32];
    if (::pread(fd, head, sizeof head, 0) != static_cast<ssize_t>(sizeof head)) return false;
    ByteView h(head, sizeof head);
    size_t pos = 0;
    if (h[pos++] != 0x0a) return false;
    auto body = get_varint(h, pos);
    if (!body || pos + *body != size || h[pos++] != 0x08) return false;
    size_t type_at = pos;
    if (!get_varint(h, pos)) return false;
    size_t type_end = pos;
    if (pos >= h.size() || h[pos++] != 0x12) return false;
    auto dlen = get_varint(h, pos);
    if (!dlen || *dlen > size - pos) return false;
    uint64_t tail_at = pos + *dlen;
    uint64_t tail_len = size - tail_at;
    if (tail_len > 4096) return false;
    // Everything but DATA, as one message: the type field, then the fields after DATA.
    Bytes rest(head + type_at - 1, head + type_end);
    size_t keep = rest.size();
    rest.resize(keep + tail_len);
    if (tail_len > 0 && ::pread(fd, rest.data() + keep, tail_len, static_cast<off_t>(tail_at)) !=
                            static_cast<ssize_t>(tail_len)) {
      return false;
    }
    // A second Data field after this one is the one protobuf (and so `cat`) takes: such a block
    // is not in the canonical shape, and the whole-block decoder reads it.
    if (file_fields(cid, rest, v)) return false;
    v.data_offset = pos;
    v.data_len = *dlen;
    return true;
  }

  static void check(const Cid& cid, uint64_t got, std::optional<uint64_t> expected) {
    if (expected && *expected != got) {
      throw Error(cid.str() + ": holds " + std::to_string(got) + " bytes but its parent claims " +
                  std::to_string(*expected));
    }
  }

  void copy_range(int in, uint64_t offset, uint64_t len, const std::string& path) {
    auto off = static_cast<loff_t>(offset);
    // copy_file_range between files without reflinks splices page by page: when the source
    // range and the output sit at different offsets within a page (every dag-pb leaf, whose
    // data starts after a few header bytes), each page is assembled from two pieces, and
    // through a buffer is faster (512 MiB of CIDv0 leaves here: 0.17 s against 0.24 s; raw
    // leaves, which line up, are equal both ways).
    bool aligned = ((offset ^ written_) & (kPage - 1)) == 0;
    while (len > 0) {
      bool cfr = use_cfr_ && aligned;
      ssize_t n = cfr ? ::copy_file_range(in, &off, out_, nullptr, len, 0) : -1;
      if (n < 0 && cfr &&
          (errno == EXDEV || errno == EINVAL || errno == ENOSYS || errno == EOPNOTSUPP)) {
        use_cfr_ = false;  // e.g. another filesystem on an old kernel: copy through memory
        cfr = false;
      }
      if (!cfr) {
        size_t want = static_cast<size_t>(std::min<uint64_t>(len, kCopyBuf));
        uint8_t* buf = copy_buffer(want);
        ssize_t r = ::pread(in, buf, want, off);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) throw Error(path + ": block file ends early");
        write_full(out_, buf, static_cast<size_t>(r), "file");
        n = r;
        off += r;
      } else if (n < 0) {
        if (errno == EINTR) continue;
        throw_errno("copy from " + path);
      } else if (n == 0) {
        throw Error(path + ": block file ends early");
      }
      len -= static_cast<uint64_t>(n);
      written_ += static_cast<uint64_t>(n);
    }
  }

  // Copies into and out of user memory are faster from a 64-byte aligned buffer, which malloc's
  // big blocks are not (they start 16 bytes into a page): 512 MiB of CIDv0 leaves through a
  // 256 KiB buffer, 0.164 s against 0.178 s (median of 5, interleaved).
  uint8_t* copy_buffer(size_t len) {
    constexpr size_t kAlign = 64;
    if (copy_buf_.size() < len + kAlign) copy_buf_.resize(len + kAlign);
    void* p = copy_buf_.data();
    size_t space = copy_buf_.size();
    return static_cast<uint8_t*>(std::align(kAlign, len, p, space));
  }

  static constexpr uint64_t kMaxBlock = 8u << 20;
  static constexpr uint64_t kPage = 4096;
  static constexpr size_t kCopyBuf = 256u << 10;  // one default-sized chunk per read
  BlockStore& store_;
  int out_;
  std::vector<LeafExtent>* leaves_;  // null: not asked for
  Bytes buf_;
  Bytes copy_buf_;
  bool use_cfr_ = true;
  uint64_t written_ = 0;
};

class TreeWriter {
 public:
  TreeWriter(Dag& dag, const ExportOptions& opts)
      : dag_(dag), opts_(opts), umask_(current_umask()) {}

  ExportStats& stats() { return stats_; }

  // Writes one entry `name` (already validated) into dirfd.
  void write_entry(int dirfd, const std::string& name, const Cid& cid, const std::string& path,
                   int depth) {
    try {
      NodeStat st = dag_.stat(cid);
      switch (st.kind) {
        case NodeKind::kDirectory: {
          if (depth > opts_.max_depth) {
            throw Error("directory tree is deeper than " + std::to_string(opts_.max_depth) +
                        " levels");
          }
          // 0700 while we fill it: a stored mode like 0555 is applied only at the end.
          if (::mkdirat(dirfd, name.c_str(), 0700) != 0) create_failed("directory");
          UniqueFd fd(open_beneath(dirfd, name, O_RDONLY | O_DIRECTORY));
          if (!fd.valid()) throw_errno("open directory just created");
          ++stats_.directories;
          write_contents(fd.get(), cid, path, depth);
          finish_dir(fd.get(), st, /*created=*/true);
          break;
        }
        case NodeKind::kFile:
          write_file(dirfd, name, st);
          break;
        case NodeKind::kSymlink:
          write_symlink(dirfd, name, st);
          break;
      }
    } catch (const ExportError&) {
      throw;
    } catch (const ExportNotFound&) {
      throw;
    } catch (const NotFound& e) {
      throw ExportNotFound(quote(path) + ": " + e.what());
    } catch (const Error& e) {
      throw ExportError(quote(path) + ": " + e.what());
    }
  }

  // Writes every entry of directory `cid` into fd (a directory we created or checked empty).
  void write_contents(int fd, const Cid& cid, const std::string& path, int depth) {
    dag_.list(cid, [&](const DirEntryRef& e) {
      std::string child = path + "/" + e.name;
      if (!is_safe_name(e.name)) {
        throw ExportError(quote(child) + ": refusing unsafe entry name " + quote(e.name) +
                          " (empty, '.', '..', or containing '/' or NUL)");
      }
      write_entry(fd, e.name, e.cid, child, depth + 1);
    });
  }

  // Mode then mtime: chmod does not touch mtime, but creating children does, so this runs last.
  void finish_dir(int fd, const NodeStat& st, bool created) {
    if (st.mode) {
      if (::fchmod(fd, *st.mode & 07777) != 0) throw_errno("chmod directory");
    } else if (created) {
      if (::fchmod(fd, 0755 & ~umask_) != 0) throw_errno("chmod directory");
    }
    if (st.mtime) set_mtime_fd(fd, *st.mtime);
  }

  // The exact permission bits the file ends up with: the stored mode, else 0644 (0755 for what
  // looks like a program when guessing) filtered by the umask.
  mode_t final_mode(const NodeStat& st, FileReader& reader) {
    if (st.mode) return static_cast<mode_t>(*st.mode & 07777);
    mode_t base = 0644;
    if (opts_.guess_executables) {
      uint8_t magic[4] = {};
      size_t n = reader.read(0, magic, sizeof magic);
      if ((n >= 2 && magic[0] == '#' && magic[1] == '!') ||
          (n == 4 && magic[0] == 0x7f && magic[1] == 'E' && magic[2] == 'L' && magic[3] == 'F'))
        base = 0755;
    }
    return base & ~umask_;
  }

  void write_file(int dirfd, const std::string& name, const NodeStat& st) {
    FileReader reader(dag_, st.cid);
    uint64_t size = reader.size();
    mode_t mode = final_mode(st, reader);
    std::string key;
    if (opts_.linker) {
      key = file_link_key(st.cid, mode, ::geteuid(), ::getegid(), st.mtime);
      if (opts_.linker->link_from_cache(key, dirfd, name)) {
        ++stats_.files;
        ++stats_.files_linked;
        stats_.bytes += size;
        stats_.bytes_linked += size;
        return;
      }
      if (auto leaf = whole_file_leaf(dag_, st.cid, size)) {
        if (auto fd = opts_.linker->claim_block(*leaf, size, mode, dirfd, name)) {
          if (::fchown(fd->get(), ::geteuid(), ::getegid()) != 0) throw_errno("chown file");
          if (::fchmod(fd->get(), mode) != 0) throw_errno("chmod file");
          if (st.mtime) set_mtime_fd(fd->get(), *st.mtime);
          ++stats_.files;
          stats_.bytes += size;
          opts_.linker->add_to_cache(key, dirfd, name, {});
          return;
        }
      }
    }
    struct statvfs vfs {};
    if (::fstatvfs(dirfd, &vfs) == 0) {
      uint64_t free_bytes = static_cast<uint64_t>(vfs.f_bavail) * vfs.f_frsize;
      if (size > free_bytes) {
        throw Error("file claims " + std::to_string(size) + " bytes but only " +
                    std::to_string(free_bytes) + " are free on the target");
      }
    }
    // 0600 until the content is in; the exact mode comes after (writing clears setuid/setgid).
    UniqueFd fd(open_beneath(dirfd, name, O_WRONLY | O_CREAT | O_EXCL, 0600));
    if (!fd.valid()) create_failed("file");
    std::vector<LeafExtent> leaves;
    uint64_t written = write_file_content(dag_, st.cid, fd.get(), opts_.on_bytes,
                                          opts_.linker ? &leaves : nullptr);
    if (written != size) {
      throw Error("file content is " + std::to_string(written) + " bytes but its node claims " +
                  std::to_string(size));
    }
    if (::fchmod(fd.get(), mode) != 0) throw_errno("chmod file");
    if (st.mtime) set_mtime_fd(fd.get(), *st.mtime);
    ++stats_.files;
    stats_.bytes += written;
    if (opts_.linker) opts_.linker->add_to_cache(key, dirfd, name, leaves);
  }

  void write_symlink(int dirfd, const std::string& name, const NodeStat& st) {
    const std::string& target = st.symlink_target;
    if (target.empty()) throw Error("symlink has an empty target");
    if (target.find('\0') != std::string::npos) throw Error("symlink target contains NUL");
    // The target is stored, never resolved: a link to /etc/passwd is just a link.
    if (::symlinkat(target.c_str(), dirfd, name.c_str()) != 0) create_failed("symlink");
    if (st.mtime) {
      timespec ts[2] = {{0, UTIME_OMIT}, to_timespec(*st.mtime)};
      if (::utimensat(dirfd, name.c_str(), ts, AT_SYMLINK_NOFOLLOW) != 0)
        throw_errno("set symlink mtime");
    }
    ++stats_.symlinks;
  }

  void set_mtime_fd(int fd, const unixfs_pb::UnixTime& t) {
    timespec ts[2] = {{0, UTIME_OMIT}, to_timespec(t)};
    if (::futimens(fd, ts) != 0) throw_errno("set mtime");
  }

 private:
  [[noreturn]] static void create_failed(const char* what) {
    if (errno == EEXIST) {
      throw Error(std::string("duplicate entry name: a ") + what +
                  " would replace (or write through) an entry already written");
    }
    throw_errno(std::string("create ") + what);
  }

  Dag& dag_;
  const ExportOptions& opts_;
  mode_t umask_;
  ExportStats stats_;
};

}  // namespace

uint64_t write_file_content(Dag& dag, const Cid& file, int fd,
                            const std::function<void(uint64_t)>& on_bytes,
                            std::vector<LeafExtent>* raw_leaves) {
  // The block-file path needs the root's file; a store without files (or a block no store has
  // as a file) streams through memory instead.
  if (auto probe = dag.store().open_block_file(file)) {
    probe->fd.reset();
    uint64_t written = BlockFileCopier(dag.store(), fd, raw_leaves).copy(file);
    if (on_bytes) on_bytes(written);
    return written;
  }
  FileReader reader(dag, file);
  uint64_t written = 0;
  reader.stream([&](ByteView chunk) {
    write_full(fd, chunk.data(), chunk.size(), "file");
    written += chunk.size();
    if (on_bytes) on_bytes(chunk.size());
  });
  return written;
}

std::optional<Cid> whole_file_leaf(Dag& dag, const Cid& file, uint64_t size) {
  if (file.codec() == kCodecRaw && !file.is_identity()) return file;
  if (file.codec() != kCodecDagPb) return std::nullopt;
  auto block = dag.store().get(file);
  if (!block) return std::nullopt;
  FileNodeView v;
  try {
    v = parse_file_node(file, *block);
  } catch (const Error&) {
    return std::nullopt;  // the writer that follows reports it
  }
  if (v.data_len != 0 || v.links.size() != 1 || v.blocksizes.size() != 1 ||
      v.links[0].codec() != kCodecRaw || v.links[0].is_identity() || v.blocksizes[0] != size ||
      (v.filesize && *v.filesize != size)) {
    return std::nullopt;
  }
  return v.links[0];
}

std::string file_link_key(const Cid& file, mode_t mode, uid_t uid, gid_t gid,
                          const std::optional<unixfs_pb::UnixTime>& mtime) {
  char meta[96];
  std::snprintf(meta, sizeof meta, ".%o.%u.%u", static_cast<unsigned>(mode & 07777),
                static_cast<unsigned>(uid), static_cast<unsigned>(gid));
  std::string key = file.to_v1().str() + meta;
  if (mtime) key += "." + std::to_string(mtime->seconds) + "." + std::to_string(mtime->nanos);
  return key;
}

bool is_safe_name(std::string_view name) {
  return !name.empty() && name != "." && name != ".." && name.find('/') == std::string_view::npos &&
         name.find('\0') == std::string_view::npos;
}

ExportStats export_tree(Dag& dag, const Cid& root, const std::string& out_path,
                        const std::string& name, const ExportOptions& opts) {
  if (out_path.empty()) throw Error("empty output path");
  TreeWriter writer(dag, opts);
  NodeStat st = dag.stat(root);
  auto [parent, base] = split_parent(out_path);

  if (st.kind == NodeKind::kDirectory) {
    if (base.empty() || base == "/" || base == "." || base == "..") {
      throw Error("output path " + quote(out_path) + " must name a directory to create");
    }
    UniqueFd pfd(::open(parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!pfd.valid()) throw_errno("open " + parent);
    bool created = ::mkdirat(pfd.get(), base.c_str(), 0700) == 0;
    if (!created && errno != EEXIST) throw_errno("create " + out_path);
    UniqueFd fd(open_beneath(pfd.get(), base, O_RDONLY | O_DIRECTORY));
    if (!fd.valid()) {
      if (errno == ELOOP || errno == ENOTDIR || errno == EXDEV) {
        throw Error("output path " + quote(out_path) + " exists and is not a directory");
      }
      throw_errno("open " + out_path);
    }
    if (!created && !dir_entries(fd.get(), out_path).empty()) {
      throw Error("output directory " + quote(out_path) +
                  " is not empty; refusing to mix a fetched tree with existing files");
    }
    ++writer.stats().directories;
    writer.write_contents(fd.get(), root, out_path, 0);
    writer.finish_dir(fd.get(), st, created);
    writer.stats().written_path = out_path;
    return writer.stats();
  }

  // A file or symlink root: into PATH when it is an existing directory (not a symlink to one),
  // else at PATH.
  struct stat ost {};
  std::string dir = parent;
  std::string entry = base;
  if (::lstat(out_path.c_str(), &ost) == 0 && S_ISDIR(ost.st_mode)) {
    dir = out_path;
    entry = name;
  }
  if (!is_safe_name(entry)) {
    throw Error("output name " + quote(entry) + " is not a plain file name");
  }
  UniqueFd dfd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dfd.valid()) throw_errno("open " + dir);
  std::string display = dir == "." ? entry : dir + "/" + entry;
  struct stat existing {};
  if (::fstatat(dfd.get(), entry.c_str(), &existing, AT_SYMLINK_NOFOLLOW) == 0) {
    throw Error(quote(display) + " already exists; refusing to overwrite it");
  }
  writer.write_entry(dfd.get(), entry, root, display, 0);
  writer.stats().written_path = display;
  return writer.stats();
}

}  // namespace cidrun::unixfs
