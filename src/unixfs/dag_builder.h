// Turns chunks into a UnixFS file DAG (boxo importer/{balanced,trickle}) and writes its blocks.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "ipld/unixfs_pb.h"
#include "multiformats/cid.h"
#include "store/blockstore.h"

namespace cidrun::unixfs {

// What a parent needs to link a child: its CID, its cumulative DAG size (Tsize) and the number
// of file bytes below it (UnixFS blocksizes/filesize).
struct NodeInfo {
  Cid cid;
  uint64_t tsize = 0;
  uint64_t filesize = 0;
};

// Mode and mtime that go on the root node of an entry (UnixFS 1.5).
struct Metadata {
  std::optional<uint32_t> mode;
  std::optional<unixfs_pb::UnixTime> mtime;
  bool empty() const { return !mode && !mtime; }
};

struct LayoutParams {
  int cid_version = 0;
  bool raw_leaves = false;
  size_t max_links = 174;
  bool trickle = false;
};

// Encodes, hashes and stores one dag-pb node.
NodeInfo put_dagpb(BlockStore& store, int cid_version, const Bytes& block, uint64_t links_tsize,
                   uint64_t filesize);

class Chunker;

// Reads every chunk from chunker and returns the file's root. The root carries meta (kubo's
// SetFileAttributes); a raw-leaf single-chunk root cannot, and is returned as is.
NodeInfo build_file(BlockStore& store, Chunker& chunker, const LayoutParams& params,
                    const Metadata& meta);

}  // namespace cidrun::unixfs
