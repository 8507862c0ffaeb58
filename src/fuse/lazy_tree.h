// The filesystem a lazy mount shows, apart from FUSE itself: inodes numbered as the kernel
// sees them, directory listings, attributes, symlink targets, xattrs and file reads, over an
// image (docs/IMAGE-FORMAT.md: owners, xattrs, hard links, devices all shown) or a plain
// UnixFS tree (UnixFS 1.5 modes and mtimes; files without a mode show 0755, since a lazy mount
// cannot read every file to guess what is a program). Blocks come from a BlockStore, typically
// a FetchingStore that fetches what is missing, so any call may wait for the network; nothing
// here holds a lock while it waits.
//
// Inode numbers are given to a directory's names all at once, in name order, when it is first
// listed or looked up, and each such load is reported to a journal. A server that restarts
// replays the journal (replay()) and so gives every name the number the kernel already knows.
//
// Everything is bounded against hostile DAGs: directory depth (image::kMaxDirDepth, for plain
// trees too), names, xattr sizes (the image reader's checks), HAMT shapes and file reads (the
// UnixFS reader's), and reads never trust a size claim (a file whose bytes disagree with its
// claimed size is an error, never short or padded bytes).
#pragma once

#include <sys/stat.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "image/reader.h"
#include "unixfs/reader.h"

namespace cidrun::fuse {

using image::Kind;

inline constexpr uint64_t kRootIno = 1;

struct Entry {
  std::string name;
  uint64_t ino = 0;
  mode_t type = 0;  // S_IFDIR, S_IFREG...
};

class LazyTree {
 public:
  // Called with (directory inode, first child inode) each time a directory gets its numbers.
  using Journal = std::function<void(uint64_t dir, uint64_t first)>;

  // root is an image or a plain UnixFS directory; dag reads (and fetches) its blocks.
  LazyTree(unixfs::Dag& dag, const Cid& root, Journal journal = nullptr);

  bool is_image() const { return image_.has_value(); }
  const Cid& root() const { return root_; }

  // The child of directory dir named name; nullopt when there is none. Throws Error (a block
  // no source has, a malformed node) and NotFound.
  std::optional<uint64_t> lookup(uint64_t dir, const std::string& name);
  struct stat attr(uint64_t ino);
  // The entries of dir in name order, from the from-th on and at most max of them: the kernel
  // reads a listing a page at a time, and a copy of a directory of 100k names per page would
  // make listing it quadratic.
  std::vector<Entry> list(uint64_t dir, size_t from = 0, size_t max = SIZE_MAX);
  std::string readlink(uint64_t ino);
  // The xattr's value, nullopt when the inode has no such xattr.
  std::optional<Bytes> getxattr(uint64_t ino, const std::string& name);
  std::vector<std::string> listxattr(uint64_t ino);
  // Reads up to len bytes at off into buf; returns the count (short at the end of the file).
  size_t read(uint64_t ino, uint64_t off, uint8_t* buf, size_t len);
  bool is_dir(uint64_t ino);

  // Asks for blocks ahead of need (a FetchingStore's prefetch): file reads name the blocks of a
  // window past the read (growing while a file is read in order), plain-tree directory loads
  // name their entries' nodes (a listing is usually followed by a stat of each).
  using Prefetch = std::function<void(const std::vector<Cid>&)>;
  void set_prefetch(Prefetch p) { prefetch_ = std::move(p); }

  // Gives the same inode numbers as the journal's earlier run: the loads it reported, in order.
  void replay(const std::vector<std::pair<uint64_t, uint64_t>>& loads);

  size_t inode_count();

 private:
  struct Node {
    uint64_t parent = 0;
    std::string name;
    Kind kind = Kind::kDirectory;
    image::Attr attr;
    uint32_t major = 0;
    uint32_t minor = 0;
    uint64_t size = 0;
    uint64_t nlink = 1;
    std::string target;
    Cid node;                  // UnixFS node
    Cid meta;                  // image directories
    std::string hardlink;      // a secondary name: the path of its group's first name
    bool attr_loaded = false;  // plain trees: size and mode come from the node itself
    bool loaded = false;
    std::vector<std::pair<std::string, uint64_t>> children;  // sorted by name
  };

  // A copy of the node (taken under the lock; nodes change only under it).
  Node snapshot(uint64_t ino);
  // Loads a directory's names and gives them numbers (once).
  void load(uint64_t dir);
  // Plain trees: reads the node's own block for its type, size, mode and mtime (once).
  void ensure_attr(uint64_t ino);
  static void stat_into(unixfs::Dag& dag, Node& n);
  uint64_t resolve_hardlink(const std::string& path);
  void read_ahead(uint64_t ino, unixfs::FileReader& r, uint64_t off, size_t len);
  std::string path_of(uint64_t ino);
  std::string path_of_locked(uint64_t ino);
  // Levels below the root (counted up to one past image::kMaxDirDepth).
  size_t depth_locked(uint64_t ino);

  unixfs::Dag& dag_;
  Cid root_;
  Journal journal_;
  std::optional<image::ImageReader> image_;
  std::shared_mutex mu_;  // guards nodes_ and next_ino_; never held across a block read
  std::unordered_map<uint64_t, Node> nodes_;
  uint64_t next_ino_ = kRootIno + 1;
  std::mutex load_mu_;  // one directory load at a time, so numbering follows load order
  Prefetch prefetch_;
  // Per file being read: where an in-order read would continue, and the read-ahead window.
  struct Stream {
    uint64_t next = 0;
    uint64_t window = 0;
  };
  std::mutex streams_mu_;
  std::unordered_map<uint64_t, Stream> streams_;
  // How far ahead of a read to fetch: from the first read of a file, then doubling while it is
  // read in order. Bounded so that a program reading a big file's head costs little.
  static constexpr uint64_t kFirstWindow = 1 << 20;
  static constexpr uint64_t kMaxWindow = 16 << 20;
};

}  // namespace cidrun::fuse
