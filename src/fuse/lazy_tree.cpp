#include "fuse/lazy_tree.h"

#include <sys/sysmacros.h>

#include <algorithm>
#include <limits>

#include "unixfs/exporter.h"
#include "util/error.h"
#include "util/quote.h"

namespace cidrun::fuse {
namespace {

mode_t type_bits(Kind k) {
  switch (k) {
    case Kind::kDirectory:
      return S_IFDIR;
    case Kind::kFile:
      return S_IFREG;
    case Kind::kSymlink:
      return S_IFLNK;
    case Kind::kCharDevice:
      return S_IFCHR;
    case Kind::kBlockDevice:
      return S_IFBLK;
    case Kind::kFifo:
      return S_IFIFO;
  }
  return 0;
}

}  // namespace

LazyTree::LazyTree(unixfs::Dag& dag, const Cid& root, Journal journal)
    : dag_(dag), root_(root), journal_(std::move(journal)) {
  Node r;
  r.kind = Kind::kDirectory;
  if (image::load_image_root(dag_, root)) {
    image_.emplace(dag_, root);
    image::DirView v = image_->read_root();
    r.attr = v.self;
    r.node = image_->root().rootfs;
    r.meta = image_->root().meta;
    r.attr_loaded = true;
  } else {
    r.node = root;
    stat_into(dag_, r);
    if (r.kind != Kind::kDirectory) throw Error(root.str() + " is not a directory");
  }
  nodes_.emplace(kRootIno, std::move(r));
}

LazyTree::Node LazyTree::snapshot(uint64_t ino) {
  std::shared_lock l(mu_);
  auto it = nodes_.find(ino);
  if (it == nodes_.end()) throw Error("no inode " + std::to_string(ino));
  const Node& n = it->second;
  Node copy;  // everything but the children list, which callers read under the lock
  copy.parent = n.parent;
  copy.name = n.name;
  copy.kind = n.kind;
  copy.attr = n.attr;
  copy.major = n.major;
  copy.minor = n.minor;
  copy.size = n.size;
  copy.nlink = n.nlink;
  copy.target = n.target;
  copy.node = n.node;
  copy.meta = n.meta;
  copy.hardlink = n.hardlink;
  copy.attr_loaded = n.attr_loaded;
  copy.loaded = n.loaded;
  return copy;
}

size_t LazyTree::inode_count() {
  std::shared_lock l(mu_);
  return nodes_.size();
}

std::string LazyTree::path_of(uint64_t ino) {
  std::shared_lock l(mu_);
  return path_of_locked(ino);
}

std::string LazyTree::path_of_locked(uint64_t ino) {
  std::vector<std::string> parts;
  for (int guard = 0; ino != kRootIno && guard < 4096; ++guard) {
    auto it = nodes_.find(ino);
    if (it == nodes_.end()) break;
    parts.push_back(it->second.name);
    ino = it->second.parent;
  }
  std::string p;
  for (auto it = parts.rbegin(); it != parts.rend(); ++it) p += (p.empty() ? "" : "/") + *it;
  return p;
}

void LazyTree::stat_into(unixfs::Dag& dag, Node& n) {
  unixfs::NodeStat st = dag.stat(n.node);
  switch (st.kind) {
    case unixfs::NodeKind::kDirectory:
      n.kind = Kind::kDirectory;
      n.attr.mode = 0755;
      break;
    case unixfs::NodeKind::kFile:
      n.kind = Kind::kFile;
      n.attr.mode = 0755;
      n.size = st.size;
      break;
    case unixfs::NodeKind::kSymlink:
      n.kind = Kind::kSymlink;
      n.attr.mode = 0777;
      n.size = st.size;
      n.target = st.symlink_target;
      break;
  }
  if (st.mode && n.kind != Kind::kSymlink) n.attr.mode = *st.mode & 07777;
  if (st.mtime) {
    n.attr.mtime_sec = st.mtime->seconds;
    n.attr.mtime_nsec = st.mtime->nanos;
  }
  n.attr_loaded = true;
}

void LazyTree::ensure_attr(uint64_t ino) {
  Node copy = snapshot(ino);
  if (copy.attr_loaded) return;
  stat_into(dag_, copy);  // may wait for the network: no lock held
  std::unique_lock l(mu_);
  Node& n = nodes_.at(ino);
  if (n.attr_loaded) return;
  n.kind = copy.kind;
  n.attr = copy.attr;
  n.size = copy.size;
  n.target = copy.target;
  n.attr_loaded = true;
}

size_t LazyTree::depth_locked(uint64_t ino) {
  size_t depth = 0;
  for (; ino != kRootIno && depth <= image::kMaxDirDepth; ++depth) ino = nodes_.at(ino).parent;
  return depth;
}

void LazyTree::load(uint64_t dir) {
  ensure_attr(dir);
  Node d;
  {
    std::shared_lock l(mu_);
    const Node& n = nodes_.at(dir);
    if (n.loaded) return;
    if (n.kind != Kind::kDirectory) throw Error(quote(path_of_locked(dir)) + " is not a directory");
    // What `get`, checkouts and unpacking refuse, the mount does not show either.
    if (depth_locked(dir) > image::kMaxDirDepth) {
      throw Error(quote(path_of_locked(dir)) + ": directories nested deeper than " +
                  std::to_string(image::kMaxDirDepth) + " levels");
    }
    d.node = n.node;
    d.meta = n.meta;
  }
  // Read the listing without any lock: it may wait for the network.
  std::vector<Node> fresh;
  if (image_) {
    image::DirView v = image_->read_dir(d.meta, d.node, path_of(dir));
    fresh.reserve(v.entries.size());
    for (auto& e : v.entries) {
      Node n;
      n.parent = dir;
      n.name = e.name;
      n.kind = e.kind;
      n.attr = std::move(e.attr);
      n.major = e.major;
      n.minor = e.minor;
      n.size = e.size;
      n.nlink = e.nlink;
      n.target = std::move(e.target);
      n.node = e.node;
      n.meta = e.meta;
      n.hardlink = std::move(e.hardlink);
      n.attr_loaded = true;
      fresh.push_back(std::move(n));
    }
  } else {
    dag_.list(d.node, [&](const unixfs::DirEntryRef& e) {
      if (!unixfs::is_safe_name(e.name)) {
        throw Error("unsafe entry name " + quote(e.name) + " in " + quote(path_of(dir)));
      }
      Node n;
      n.parent = dir;
      n.name = e.name;
      n.node = e.cid;
      // A raw leaf is a whole file whose size its link states; the block proves it on read.
      if (e.cid.codec() == kCodecRaw && e.tsize) {
        n.kind = Kind::kFile;
        n.attr.mode = 0755;
        n.size = *e.tsize;
        n.attr_loaded = true;
      }
      fresh.push_back(std::move(n));
    });
    if (prefetch_) {
      std::vector<Cid> nodes;
      for (const auto& n : fresh) {
        if (!n.attr_loaded && !n.node.is_identity() && !dag_.store().has(n.node)) {
          nodes.push_back(n.node);
        }
      }
      prefetch_(nodes);
    }
    std::sort(fresh.begin(), fresh.end(),
              [](const Node& a, const Node& b) { return a.name < b.name; });
    for (size_t i = 1; i < fresh.size(); ++i) {
      if (fresh[i - 1].name == fresh[i].name) {
        throw Error("directory " + quote(path_of(dir)) + " repeats " + quote(fresh[i].name));
      }
    }
  }
  std::lock_guard order(load_mu_);
  std::unique_lock l(mu_);
  if (nodes_.at(dir).loaded) return;  // another thread won the race: its numbers stand
  uint64_t first = next_ino_;
  std::vector<std::pair<std::string, uint64_t>> children;
  children.reserve(fresh.size());
  for (auto& n : fresh) {
    uint64_t ino = next_ino_++;
    children.emplace_back(n.name, ino);
    nodes_.emplace(ino, std::move(n));
  }
  Node& t = nodes_.at(dir);  // emplace may have rehashed: find it again
  t.children = std::move(children);
  t.loaded = true;
  if (journal_ && !t.children.empty()) journal_(dir, first);
}

void LazyTree::replay(const std::vector<std::pair<uint64_t, uint64_t>>& loads) {
  Journal saved = std::move(journal_);
  journal_ = nullptr;
  try {
    for (const auto& [dir, first] : loads) {
      {
        std::unique_lock l(mu_);
        next_ino_ = first;
      }
      load(dir);
      std::shared_lock l(mu_);
      const auto& children = nodes_.at(dir).children;
      if (children.empty() || children.front().second != first) {
        throw Error("the inode journal does not match the tree (directory " + std::to_string(dir) +
                    ")");
      }
    }
  } catch (...) {
    journal_ = std::move(saved);
    throw;
  }
  journal_ = std::move(saved);
}

std::optional<uint64_t> LazyTree::lookup(uint64_t dir, const std::string& name) {
  load(dir);
  uint64_t ino = 0;
  std::string hardlink;
  {
    std::shared_lock l(mu_);
    const auto& children = nodes_.at(dir).children;
    auto it = std::lower_bound(children.begin(), children.end(), name,
                               [](const auto& c, const std::string& n) { return c.first < n; });
    if (it == children.end() || it->first != name) return std::nullopt;
    ino = it->second;
    hardlink = nodes_.at(ino).hardlink;
  }
  if (!hardlink.empty()) return resolve_hardlink(hardlink);
  ensure_attr(ino);
  return ino;
}

uint64_t LazyTree::resolve_hardlink(const std::string& path) {
  uint64_t ino = kRootIno;
  size_t i = 0;
  size_t depth = 0;
  while (i < path.size()) {
    size_t j = path.find('/', i);
    if (j == std::string::npos) j = path.size();
    std::string part = path.substr(i, j - i);
    i = j + 1;
    if (part.empty()) continue;
    if (++depth > image::kMaxDirDepth) throw Error("hard link path too deep");
    auto next = lookup(ino, part);
    if (!next) throw Error("hard link to " + quote(path) + ", which is not there");
    ino = *next;
  }
  Node n = snapshot(ino);
  if (n.kind == Kind::kDirectory) throw Error("hard link to the directory " + quote(path));
  return ino;
}

bool LazyTree::is_dir(uint64_t ino) {
  ensure_attr(ino);
  return snapshot(ino).kind == Kind::kDirectory;
}

struct stat LazyTree::attr(uint64_t ino) {
  ensure_attr(ino);
  std::shared_lock l(mu_);
  const Node& n = nodes_.at(ino);
  // off_t is signed: a claim past its range would show as a negative size.
  if (n.size > static_cast<uint64_t>(std::numeric_limits<off_t>::max())) {
    throw Error(quote(path_of_locked(ino)) + " claims " + std::to_string(n.size) +
                " bytes, more than a file can hold");
  }
  struct stat st {};
  st.st_ino = ino;
  st.st_mode = type_bits(n.kind) | (n.attr.mode & 07777);
  // Directories say 1 (no count of subdirectories), as btrfs does: find then never skips.
  st.st_nlink = n.kind == Kind::kDirectory ? 1 : static_cast<nlink_t>(n.nlink);
  st.st_uid = n.attr.uid;
  st.st_gid = n.attr.gid;
  st.st_size = static_cast<off_t>(n.size);
  st.st_blksize = 4096;
  st.st_blocks = static_cast<blkcnt_t>((n.size + 511) / 512);
  if (n.kind == Kind::kCharDevice || n.kind == Kind::kBlockDevice) {
    st.st_rdev = makedev(n.major, n.minor);
  }
  st.st_mtim.tv_sec = n.attr.mtime_sec;
  st.st_mtim.tv_nsec = n.attr.mtime_nsec;
  st.st_atim = st.st_mtim;
  st.st_ctim = st.st_mtim;
  return st;
}

std::vector<Entry> LazyTree::list(uint64_t dir, size_t from, size_t max) {
  load(dir);
  std::vector<Entry> out;
  std::shared_lock l(mu_);
  const auto& children = nodes_.at(dir).children;
  if (from >= children.size()) return out;
  size_t count = std::min(max, children.size() - from);
  out.reserve(count);
  for (size_t i = from; i < from + count; ++i) {
    const auto& [name, ino] = children[i];
    const Node& n = nodes_.at(ino);
    Entry e;
    e.name = name;
    e.ino = ino;
    // A plain tree's entry not looked at yet has an unknown type (DT_UNKNOWN); readers stat it.
    e.type = n.attr_loaded ? type_bits(n.kind) : 0;
    out.push_back(std::move(e));
  }
  return out;
}

std::string LazyTree::readlink(uint64_t ino) {
  ensure_attr(ino);
  Node n = snapshot(ino);
  if (n.kind != Kind::kSymlink) throw Error("not a symlink");
  return n.target;
}

std::optional<Bytes> LazyTree::getxattr(uint64_t ino, const std::string& name) {
  std::shared_lock l(mu_);
  for (const auto& x : nodes_.at(ino).attr.xattrs) {
    if (x.name == name) return x.value;
  }
  return std::nullopt;
}

std::vector<std::string> LazyTree::listxattr(uint64_t ino) {
  std::shared_lock l(mu_);
  std::vector<std::string> out;
  for (const auto& x : nodes_.at(ino).attr.xattrs) out.push_back(x.name);
  return out;
}

void LazyTree::read_ahead(uint64_t ino, unixfs::FileReader& r, uint64_t off, size_t len) {
  uint64_t window = kFirstWindow;
  {
    std::lock_guard l(streams_mu_);
    Stream& s = streams_[ino];
    // In order (or within the window just fetched: the kernel's own read-ahead runs in
    // parallel and comes in any order): grow the window.
    bool in_order = s.window && off >= s.next - std::min(s.next, s.window) && off <= s.next;
    window = in_order ? std::min(kMaxWindow, s.window * 2) : kFirstWindow;
    s.window = window;
    s.next = off + len;
  }
  std::vector<Cid> want;
  r.missing_blocks(off, len + window, [&](const Cid& c) { want.push_back(c); });
  // The first is the one this read waits for: it fetches it itself.
  if (want.size() > 1) prefetch_(want);
}

size_t LazyTree::read(uint64_t ino, uint64_t off, uint8_t* buf, size_t len) {
  ensure_attr(ino);
  Node n = snapshot(ino);
  if (n.kind != Kind::kFile) throw Error("not a file");
  if (off >= n.size) return 0;
  len = static_cast<size_t>(std::min<uint64_t>(len, n.size - off));
  unixfs::FileReader r(dag_, n.node);
  if (r.size() != n.size) {
    throw Error("file " + quote(path_of(ino)) + " holds " + std::to_string(r.size()) +
                " bytes, its directory says " + std::to_string(n.size));
  }
  if (prefetch_) read_ahead(ino, r, off, len);
  return r.read(off, buf, len);
}

}  // namespace cidrun::fuse
