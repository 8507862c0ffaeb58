// Reading UnixFS back: stat, directory listing (basic and HAMT), path resolution, random-access
// file reads, and a DAG walk. Everything works over any BlockStore, so a store that fetches
// missing blocks from the network makes every reader network-aware.
//
// Blocks may come from strangers: every size and structure claim is checked before use, so a
// hostile DAG gives a clear error, never a crash, a huge allocation or an endless loop.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "ipld/dagpb.h"
#include "ipld/unixfs_pb.h"
#include "store/blockstore.h"
#include "store/reachable.h"

namespace cidrun::unixfs {

enum class NodeKind { kFile, kDirectory, kSymlink };

struct NodeStat {
  Cid cid;
  NodeKind kind = NodeKind::kFile;
  uint64_t size = 0;  // file bytes; symlink target length; 0 for directories
  std::optional<uint32_t> mode;
  std::optional<unixfs_pb::UnixTime> mtime;
  bool hamt = false;
  std::string symlink_target;
  uint64_t block_size = 0;
  size_t num_links = 0;
};

struct DirEntryRef {
  std::string name;
  Cid cid;
  std::optional<uint64_t> tsize;
};

// The deepest DAG we follow: far beyond any real file (174^8 leaves) or directory tree.
inline constexpr int kMaxDagDepth = 256;

class Dag {
 public:
  explicit Dag(BlockStore& store) : store_(store) {}

  // The block's bytes; throws NotFound naming the CID when no store or source has it.
  Bytes block(const Cid& cid);
  BlockStore& store() { return store_; }

  NodeStat stat(const Cid& cid);
  // Calls fn for every entry of a directory (basic or HAMT), in name order for basic
  // directories and in HAMT order for sharded ones.
  void list(const Cid& dir, const std::function<void(const DirEntryRef&)>& fn);
  // Finds one entry by name (a HAMT is searched by hash, not listed).
  std::optional<Cid> lookup(const Cid& dir, std::string_view name);
  // Resolves "a/b/c" below root. Empty components and "." are skipped; ".." and symlinks are
  // refused (paths inside IPFS are never re-rooted).
  Cid resolve(const Cid& root, std::string_view path);

  // Parses "CID", "/ipfs/CID/path" or "CID/path" into a root and a path.
  static std::pair<Cid, std::string> split_path(std::string_view text);

 private:
  friend class FileReader;
  struct Decoded {
    dagpb::Node node;
    unixfs_pb::Data data;
  };
  Decoded decode(const Cid& cid, const Bytes& block);
  // shards: the CIDs of the shards listed so far (each may come once).
  void list_hamt(const Decoded& shard, int depth, KeySet& shards,
                 const std::function<void(const DirEntryRef&)>& fn);

  BlockStore& store_;
};

class FileReader {
 public:
  // Throws when cid is not a file.
  FileReader(Dag& dag, const Cid& cid);
  uint64_t size() const { return size_; }
  // Reads up to len bytes at offset; returns 0 at or past the end.
  size_t read(uint64_t offset, uint8_t* buf, size_t len);
  // Streams the whole file in order, one leaf at a time (bounded memory).
  void stream(const std::function<void(ByteView)>& sink);
  // Streams [offset, offset+length).
  //
  // Every node read must hold exactly what its parent claims for it, and a read may cost at
  // most kReadAllowance + kReadCostPerByte * length in blocks (their bytes, plus
  // kReadCostPerBlock each), else it fails as hostile: a few blocks linked many times over can
  // describe a file whose every byte is a leaf under big nodes, and a read of 128 KiB of it
  // would parse gigabytes. Real DAGs cost about their length (small chunks: a few times that).
  void stream_range(uint64_t offset, uint64_t length, const std::function<void(ByteView)>& sink);
  static constexpr uint64_t kReadAllowance = 64 << 20;
  static constexpr uint64_t kReadCostPerByte = 64;
  static constexpr uint64_t kReadCostPerBlock = 128;
  // The blocks that hold [offset, offset+length) and are not in the store yet, in file order,
  // without fetching any: inner nodes the store has are descended into, a missing child is
  // named and not descended (its own children are unknown until it arrives). For reading
  // ahead: a caller asks for these all at once instead of one round trip per block. A guess,
  // so bounded: it stops after kMaxMissingBlocksVisits blocks looked at (a DAG of tiny leaves,
  // or one node linked many times over, could otherwise name millions for one window).
  void missing_blocks(uint64_t offset, uint64_t length, const std::function<void(const Cid&)>& fn);
  static constexpr size_t kMaxMissingBlocksVisits = 4096;

 private:
  // claimed: the bytes the node's parent (or, for the root, the file's stat) says it holds.
  void stream_node(const Cid& cid, uint64_t claimed, uint64_t node_offset, uint64_t start,
                   uint64_t end, int depth, const std::function<void(ByteView)>& sink);
  // A child claimed empty: its block must claim no bytes either (it is not descended).
  void check_empty(const Cid& cid);
  void missing_below(const Cid& cid, uint64_t node_offset, uint64_t start, uint64_t end, int depth,
                     size_t& budget, const std::function<void(const Cid&)>& fn);

  // Counts a block read against the range's cost budget.
  void spend(const Cid& cid, size_t block_size);

  Dag& dag_;
  Cid cid_;
  uint64_t size_ = 0;
  uint64_t budget_ = 0;  // what the current range may still cost
};

// DFS pre-order over every block below root (dag-pb links; raw blocks are leaves), each block
// visited once, identity blocks not at all. visit returns false to skip a block's children. This
// is the order of `ipfs dag export`. A missing block throws NotFound: the caller is exporting the
// DAG and must not leave a hole (store's walk_reachable, which this is, also walks past them).
void walk_dag(BlockStore& store, const Cid& root,
              const std::function<bool(const Cid&, ByteView block)>& visit);

}  // namespace cidrun::unixfs
