// A directory on disk -> Tree (image/tree.h), taken with everything it holds: contents (stored
// as they are read), permission bits, owners, nanosecond mtimes, storable xattrs, hard links
// (by device and inode), symlinks, device nodes and fifos. Sockets cannot be in an image (no
// OCI layer holds one) and are skipped with a warning; xattrs an image may not hold
// (trusted.*, system.* other than ACLs) are left out with a warning.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "image/tree.h"
#include "store/blockstore.h"

namespace cidrun::image {

struct DirImportStats {
  uint64_t entries = 0;
  uint64_t bytes = 0;
  uint64_t sockets_skipped = 0;
  uint64_t xattrs_dropped = 0;
};

// Reads dir into tree, storing file contents in store. Throws Error naming the path on any
// problem (unreadable file, a file that changes size while read).
DirImportStats read_directory(Tree& tree, BlockStore& store, const std::string& dir,
                              const std::function<void(uint64_t)>& on_bytes = nullptr);

}  // namespace cidrun::image
