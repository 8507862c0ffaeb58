// Applying one OCI layer (a tar stream of changes) to a Tree, as the image spec's "Applying
// Changesets" says: entries added or replaced in order, `.wh.NAME` removing NAME of lower
// layers, `.wh..wh..opq` making a directory opaque (its lower-layer children removed), hard
// links within the layer and to lower layers, PAX xattrs, owners, devices and fifos. File
// contents are chunked and stored as they stream by; nothing is written to disk.
//
// Policy on what a layer may not do, each a one-line error naming the entry: a whiteout of "."
// or "..", a hard link to a missing entry (or to one that comes later), a write through a
// path component that is not a directory. Symlinks in parent paths are followed inside the
// tree, never out of it. xattrs an image may not hold (trusted.*: overlayfs keeps its own state
// there, so a layer's must never reach an overlay lower layer, which containerd refuses too;
// other system.* than ACLs) are dropped and counted.
#pragma once

#include <cstdint>
#include <functional>

#include "image/tar.h"
#include "image/tree.h"
#include "store/blockstore.h"

namespace cidrun::image {

struct LayerStats {
  uint64_t entries = 0;
  uint64_t whiteouts = 0;
  uint64_t file_bytes = 0;
  uint64_t xattrs_dropped = 0;
};

// Applies the archive in tar to tree as layer number `layer` (the first layer is 1; higher
// layers hide lower ones). Reads the archive to its end.
LayerStats apply_layer(Tree& tree, BlockStore& store, TarReader& tar, uint32_t layer);

}  // namespace cidrun::image
