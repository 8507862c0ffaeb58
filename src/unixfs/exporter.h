// `get`: writes a UnixFS DAG to disk as a faithful tree — file contents streamed leaf by leaf,
// permission bits (incl. setuid/setgid/sticky) and nanosecond mtimes from UnixFS 1.5, symlinks as
// links, empty directories.
//
// DAGs come from strangers, so the writer trusts no name and no size:
//  - every name must be one plain path component: not empty, not "." or "..", no '/', no NUL;
//  - each directory is created by us (mkdirat) and entered with openat2(RESOLVE_BENEATH |
//    RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS); every create is fd-relative and exclusive
//    (O_CREAT|O_EXCL|O_NOFOLLOW, mkdirat, symlinkat), so a duplicate name — including a symlink
//    followed by an entry that would write through it — fails with EEXIST instead of following
//    anything; symlink targets are stored verbatim and never resolved;
//  - a file's claimed size is checked against the free space before writing, and the reader
//    validates filesize/blocksizes against what the leaves really hold;
//  - trees deeper than ExportOptions::max_depth are refused; a missing block names its CID.
// Any of these stops the export with one error line naming the entry's path; what was written so
// far stays (as with kubo and tar), always inside the target.
//
// Target semantics are kubo's `ipfs get -o PATH` (boxo tar extractor), made stricter:
//  - a directory root becomes PATH itself: PATH is created, or must be an empty directory
//    (kubo merges into a non-empty one; we refuse, so a hostile tree never mixes with, or
//    overwrites, existing files);
//  - a file or symlink root is written at PATH, or, when PATH is an existing directory, at
//    PATH/<name> (name = last path component, else the CID); it never overwrites.
// Modes: a stored mode is applied exactly (umask not applied), after the content is written
// (writing would clear setuid/setgid); without one, files get 0644 and directories 0755, both
// filtered by the umask. Mtimes are applied to directories after their children, to symlinks
// with AT_SYMLINK_NOFOLLOW.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "unixfs/reader.h"
#include "util/fd.h"

namespace cidrun::unixfs {

// Shares files between exports by hard links (the image layer's per-file cache). A key names a
// file's content and all the metadata a hard link shares with every other name of the inode:
// "<file cidv1>.<mode octal>.<uid>.<gid>[.<mtime sec>.<nsec>]" (see file_link_key).
// A raw leaf of a file and where its bytes sit in the file.
struct LeafExtent {
  Cid cid;
  uint64_t offset = 0;
  uint64_t size = 0;
};

class FileLinker {
 public:
  virtual ~FileLinker() = default;
  // Creates dirfd/name as a hard link to the cached file `key`. False when the cache has no such
  // file or the filesystem refuses the link; the exporter then writes the file itself.
  virtual bool link_from_cache(const std::string& key, int dirfd, const std::string& name) = 0;
  // For a file that is one raw block of `size` bytes, which will get permission bits `mode`:
  // makes dirfd/name a new name of the block's own file, when the store holds it as a file that
  // nothing else links, so the file is written nowhere and the block and the file are one inode.
  // Returns that inode open, for the caller to give it the file's owner, xattrs, mode and mtime
  // (which the block store never reads); nullopt when that is not possible (the caller then
  // writes the file).
  virtual std::optional<UniqueFd> claim_block(const Cid& file, uint64_t size, mode_t mode,
                                              int dirfd, const std::string& name) {
    (void)file;
    (void)size;
    (void)mode;
    (void)dirfd;
    (void)name;
    return std::nullopt;
  }
  // Offers dirfd/name, just written with its final mode and mtime, to the cache under `key`.
  // raw_leaves: where the file's raw leaves sit in it (empty when unknown), so the cache can let
  // the block store hold them as references to the cached file instead of as copies.
  virtual void add_to_cache(const std::string& key, int dirfd, const std::string& name,
                            std::span<const LeafExtent> raw_leaves) = 0;
};

struct ExportOptions {
  int max_depth = 256;                     // directory nesting below the root
  std::function<void(uint64_t)> on_bytes;  // progress: file bytes written
  // For root filesystems imported without --preserve-mode (the old demo's CIDs): a file with no
  // stored mode that starts like a program (ELF magic or "#!") gets 0755 instead of 0644, which
  // is the chmod the demo had to do by hand. Stored modes always win.
  bool guess_executables = false;
  FileLinker* linker = nullptr;  // null: every file is written
};

struct ExportStats {
  uint64_t files = 0;
  uint64_t directories = 0;
  uint64_t symlinks = 0;
  uint64_t bytes = 0;
  uint64_t files_linked = 0;  // of files: hard links from the linker's cache
  uint64_t bytes_linked = 0;  // of bytes: in linked files (not written)
  std::string written_path;   // where the root ended up
};

// Writes the node `root` to out_path (see the semantics above); name is the root's own name, used
// when out_path is an existing directory and the root is not a directory.
ExportStats export_tree(Dag& dag, const Cid& root, const std::string& out_path,
                        const std::string& name, const ExportOptions& opts = {});

// Writes the bytes of the UnixFS file `file` to fd (at its current offset) and returns how many.
// Blocks kept in files (BlockStore::open_block_file) are copied file to file with
// copy_file_range, never passing through memory; others are streamed. Every size claim of the
// DAG is checked as FileReader checks it.
// raw_leaves, when given, receives where each raw leaf's bytes went (when copied file to file).
uint64_t write_file_content(Dag& dag, const Cid& file, int fd,
                            const std::function<void(uint64_t)>& on_bytes = nullptr,
                            std::vector<LeafExtent>* raw_leaves = nullptr);

// The one raw block that holds all the bytes of the file `file` of `size` bytes (the file node
// itself, or its only child below a node that holds nothing else but metadata); nullopt for any
// other shape.
std::optional<Cid> whole_file_leaf(Dag& dag, const Cid& file, uint64_t size);

// The FileLinker key of a file node written with these final attributes.
std::string file_link_key(const Cid& file, mode_t mode, uid_t uid, gid_t gid,
                          const std::optional<unixfs_pb::UnixTime>& mtime);

// True when name is one safe path component (what every directory entry must be).
bool is_safe_name(std::string_view name);

}  // namespace cidrun::unixfs
