// Tree (image/tree.h) -> image blocks: the UnixFS tree, one metadata node per directory (paged
// when big), the config and the image root, all stored in the given BlockStore. The UnixFS side
// is exactly what `ipfs add -r --cid-version 1 --hidden` makes of the same files (kubo's defaults
// for CIDv1: 256 KiB chunks, raw leaves, balanced layout, HAMT past 256 KiB of links), so kubo
// users can check an image's rootfs CID themselves.
#pragma once

#include <nlohmann/json.hpp>

#include "image/image.h"
#include "image/tree.h"
#include "unixfs/chunker.h"
#include "unixfs/directory.h"

namespace cidrun::image {

// The parameters of every file and directory in an image.
inline constexpr const char* kImageChunker = "size-262144";
unixfs::LayoutParams image_layout();
unixfs::DirParams image_dir_params();

// Chunks and stores one file's content read from src with the image parameters.
unixfs::NodeInfo store_file_content(BlockStore& store, unixfs::ByteSource& src);

// The config as an image keeps it (docs/IMAGE-FORMAT.md "The config"): rootfs dropped, history
// entries without empty_layer, canonical JSON. Throws Error for a config that is not an object,
// lacks architecture/os, or is over 1 MiB once written.
Bytes canonical_config(const nlohmann::json& config);

struct BuiltImage {
  Linked root;
  ImageHeader header;
  Cid rootfs;
  Cid meta;
};

// Stores the image of tree with this config. Throws Error for a tree the format cannot hold (a
// directory too deep, a name over 255 bytes, xattrs out of bounds).
BuiltImage build_image(BlockStore& store, const Tree& tree, const nlohmann::json& config);

}  // namespace cidrun::image
