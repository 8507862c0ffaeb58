// Reading an image back: its root, config and, directory by directory, every name joined with
// its metadata (image/format.h) and its UnixFS node. Works over any BlockStore, so a fetching
// store makes it network-aware, and is what unpack, checkout, export and the lazy mount use.
//
// Everything is checked as it is read: a metadata node that disagrees with its UnixFS directory
// (a name on one side only, a type mismatch, a hard link to something that is not there) is
// refused with an error naming the path.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "image/image.h"
#include "unixfs/reader.h"

namespace cidrun::image {

struct DirEntryView {
  std::string name;
  Kind kind = Kind::kFile;
  Attr attr;           // for a hard link: the group's attributes are at its first name
  uint32_t major = 0;  // devices
  uint32_t minor = 0;
  Cid node;              // files, symlinks: the UnixFS node; directories: the UnixFS directory
  Cid meta;              // directories: their metadata node
  uint64_t size = 0;     // files: bytes; symlinks: target length
  std::string target;    // symlinks
  std::string hardlink;  // a secondary name of a group: the first name's path (else empty)
  uint64_t nlink = 1;    // names of the inode
};

struct DirView {
  Attr self;
  std::vector<DirEntryView> entries;  // sorted by name
};

class ImageReader {
 public:
  // Throws Error when root is not an image (use is_image to ask first).
  ImageReader(unixfs::Dag& dag, const Cid& root);

  const ImageRoot& root() const { return root_; }
  const Cid& cid() const { return cid_; }
  nlohmann::json config();
  // The raw config bytes as stored.
  Bytes config_bytes();

  // The root directory's metadata node and UnixFS node.
  DirView read_root();
  // One directory, given its metadata node and UnixFS directory; path (relative, "" for the
  // root) names it in errors.
  DirView read_dir(const Cid& meta, const Cid& unixfs_dir, const std::string& path);

  unixfs::Dag& dag() { return dag_; }

 private:
  unixfs::Dag& dag_;
  Cid cid_;
  ImageRoot root_;
};

// Whether cid names an image: reads its block (so the block must be reachable through dag).
// Throws Error for a block that claims to be an image but is malformed.
std::optional<ImageRoot> load_image_root(unixfs::Dag& dag, const Cid& cid);

// Walks the whole image depth first in canonical order (a directory's names sorted, its
// subdirectories entered where their names fall), calling enter for each directory (the root
// first, with path "") before its entries, entry for every non-directory name and leave after
// a directory's last entry. Paths are relative, components joined by "/".
struct ImageVisitor {
  std::function<void(const std::string& path, const DirView& dir)> enter;
  std::function<void(const std::string& path, const DirEntryView& entry)> entry;
  std::function<void(const std::string& path, const DirView& dir)> leave;
};
void walk_image(ImageReader& reader, const ImageVisitor& visitor);

}  // namespace cidrun::image
