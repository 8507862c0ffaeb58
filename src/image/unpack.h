// Image -> a directory on disk with full fidelity (what `umoci unpack` gives for the same
// layers): contents, permission bits (setuid/setgid/sticky included), owners, nanosecond mtimes,
// xattrs (security.capability, ACLs, user.*), hard links, symlinks, device nodes and fifos.
//
// Writing follows the exporter's rules against hostile input (unixfs/exporter.h): every name
// is one safe component, every create is fd-relative and exclusive under directories opened
// with RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS, symlink targets are stored and never followed, a
// hard link can only name a file this unpack wrote. Attributes go on in the order that keeps
// them: content, owner (which clears setuid and capabilities), xattrs, mode, mtime; a
// directory's after its children.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "image/reader.h"
#include "unixfs/exporter.h"

namespace cidrun::image {

enum class Ownership {
  kKeep,      // chown every entry as the image says (needs root), make device nodes
  kAsCaller,  // rootless: everything stays the caller's; device nodes are skipped with a
              // warning, xattrs the caller may not set (security.*) too
};

struct UnpackOptions {
  Ownership ownership = Ownership::kKeep;
  // Image checkouts share files through the per-file cache (image/file_cache.h); the files of
  // hard-link groups are always written, so that their st_nlink counts only the group's names.
  unixfs::FileLinker* linker = nullptr;
  std::function<void(uint64_t)> on_bytes;  // file bytes written
};

struct UnpackStats {
  uint64_t files = 0;
  uint64_t directories = 0;
  uint64_t symlinks = 0;
  uint64_t specials = 0;
  uint64_t hardlinks = 0;  // secondary names made with link()
  uint64_t bytes = 0;
  uint64_t files_linked = 0;  // from the linker's cache
  uint64_t skipped = 0;       // rootless: device nodes and xattrs left out
};

// Writes the image into out_dir, which is created, or must be an empty directory.
UnpackStats unpack_image(ImageReader& reader, const std::string& out_dir,
                         const UnpackOptions& opts = {});

// The per-file cache key of a file written with these attributes: unixfs::file_link_key plus a
// digest of the xattrs, since all of them are shared by every name of an inode.
std::string image_file_key(const Cid& file, const Attr& attr, Ownership ownership);

}  // namespace cidrun::image
