// The dag-pb blocks of an image (docs/IMAGE-FORMAT.md): the image root, which links the config,
// the root directory's metadata node and the UnixFS tree, and the metadata nodes with their
// structure, subdirectory and page links. Parsing checks everything the format requires of one
// block; agreement between a metadata node and its UnixFS directory is checked by the reader
// (image/reader.h), which sees both.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "image/format.h"
#include "multiformats/cid.h"
#include "store/blockstore.h"

namespace cidrun::image {

struct ImageRoot {
  ImageHeader header;
  Cid config;
  Cid meta;
  Cid rootfs;
  std::optional<Cid> startset;
};

// nullopt when the block is not an image (a UnixFS node, a raw block, another codec); throws
// Error naming the CID for a block that claims to be an image and breaks the format.
std::optional<ImageRoot> parse_image_root(const Cid& cid, ByteView block);

// A link target with its cumulative size.
struct Linked {
  Cid cid;
  uint64_t tsize = 0;
};

// Encodes and stores an image root; returns its CID (v1) and cumulative size.
Linked put_image_root(BlockStore& store, const ImageHeader& header, const Linked& config,
                      const Linked& meta, const Linked& rootfs,
                      const std::optional<Linked>& startset);

struct MetaNode {
  DirMeta meta;
  std::vector<Cid> structure;                        // raw-codec CIDs, in stored order
  std::vector<std::pair<std::string, Cid>> subdirs;  // sorted by name
  std::vector<std::pair<std::string, Cid>> pages;    // (first name, page), sorted
};

enum class MetaNodeKind { kDirectory, kPage };

// Decodes a metadata node or page; throws Error naming the CID when it breaks the format.
MetaNode parse_meta_node(const Cid& cid, ByteView block, MetaNodeKind kind);

// A start set's command and blocks (raw-codec CIDs, in first-read order).
struct StartSet {
  std::string command;
  std::vector<Cid> blocks;
};
StartSet parse_start_set(const Cid& cid, ByteView block);
Linked put_start_set(BlockStore& store, const StartSet& set,
                     const std::vector<uint64_t>& block_sizes);

// The raw-codec CID naming the same block as cid (same multihash): how structure and start-set
// links name dag-pb blocks so that walkers treat them as leaves.
Cid raw_alias(const Cid& cid);

}  // namespace cidrun::image
