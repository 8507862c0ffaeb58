// A root filesystem being assembled in memory: names, inodes (shared by the names of a hard-link
// group) and their full metadata, with file contents already stored as UnixFS DAGs. OCI layers
// are applied to it change set by change set, a directory on disk is read into it, and the
// builder (image/builder.h) turns it into an image. Nothing here touches the disk: a hostile
// layer can at worst make a strange tree, which the builder then stores.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "image/format.h"
#include "unixfs/dag_builder.h"

namespace cidrun::image {

struct Inode;
using InodePtr = std::shared_ptr<Inode>;

struct Child {
  InodePtr inode;
  uint32_t layer = 0;  // the layer that put this name here (whiteouts hide lower layers only)
};

struct Inode {
  Kind kind = Kind::kFile;
  Attr attr;
  uint32_t major = 0;
  uint32_t minor = 0;
  unixfs::NodeInfo content;               // files: the stored UnixFS DAG
  std::string target;                     // symlinks
  std::map<std::string, Child> children;  // directories, sorted by name bytes
};

InodePtr make_inode(Kind kind, const Attr& attr);

class Tree {
 public:
  Tree();

  Inode& root() { return *root_; }
  const Inode& root() const { return *root_; }
  const InodePtr& root_ptr() const { return root_; }

  // Puts inode at path ("a/b/c", normalised, "" is the root itself) on behalf of `layer`. Missing
  // parent directories are created (0755, root-owned); a parent that is a symlink is followed
  // inside the tree, as a layer applied on disk with a root-confined resolver would (a symlink
  // can never lead out of the tree); a parent that is something else is an error. An existing
  // directory given a directory keeps its children and takes the new attributes; anything else
  // existing is replaced.
  void put(std::string_view path, InodePtr inode, uint32_t layer);
  // Adds a hard link at path to the inode at target (parents of both resolved as above, the
  // last component of target not followed). The target must exist and not be a directory.
  void link(std::string_view path, std::string_view target, uint32_t layer);
  // OCI whiteouts: removes dir/name when a lower layer put it there; a name from `layer` itself
  // stays (the spec: a whiteout applies to lower layers only). Missing names are fine.
  void whiteout(std::string_view dir, std::string_view name, uint32_t layer);
  // An opaque directory: removes every child that a lower layer put there.
  void opaque(std::string_view dir, uint32_t layer);

  // The inode at path without following its last component; nullptr when absent.
  InodePtr find(std::string_view path);

 private:
  struct Resolved {
    Inode* dir;
    std::string name;
  };
  // Resolves the parent of path (following symlinks inside the tree, creating missing
  // directories when create is true) and returns it with the last component.
  Resolved resolve_parent(std::string_view path, bool create, uint32_t layer);
  Inode* resolve_dir(std::string_view path, bool create, uint32_t layer, int& symlinks_left);

  InodePtr root_;
};

}  // namespace cidrun::image
