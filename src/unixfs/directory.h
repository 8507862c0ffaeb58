// Builds UnixFS directories: a basic directory node, or a HAMT-sharded one when kubo's size
// rule says so (boxo ipld/unixfs/io/directory.go, ipld/unixfs/hamt).
#pragma once

#include <string>
#include <vector>

#include "unixfs/dag_builder.h"

namespace cidrun::unixfs {

enum class HamtEstimation { kLinks, kBlock, kDisabled };

struct DirParams {
  int cid_version = 0;
  HamtEstimation estimation = HamtEstimation::kLinks;
  uint64_t threshold = 262144;  // shard when the estimate is strictly greater; 0 = never
  unsigned fanout = 256;
};

struct DirEntry {
  std::string name;
  NodeInfo node;
};

// Entries may come in any order; names must be unique, non-empty and contain no '/'.
NodeInfo build_directory(BlockStore& store, std::vector<DirEntry> entries, const DirParams& params,
                         const Metadata& meta);

// True when kubo would shard a directory with these (sorted) entries.
bool needs_sharding(const std::vector<DirEntry>& sorted, const DirParams& params,
                    const Metadata& meta);

}  // namespace cidrun::unixfs
