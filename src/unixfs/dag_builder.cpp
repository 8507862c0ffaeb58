#include "unixfs/dag_builder.h"

#include <deque>
#include <functional>
#include <future>
#include <memory>
#include <mutex>

#include "ipld/dagpb.h"
#include "unixfs/chunker.h"
#include "util/error.h"
#include "util/sha256.h"
#include "util/thread_pool.h"
#include "util/varint.h"

namespace cidrun::unixfs {
namespace {

constexpr int kTrickleDepthRepeat = 4;  // boxo trickle/trickledag.go depthRepeat

void apply_meta(unixfs_pb::Data& d, const Metadata* meta) {
  if (!meta) return;
  d.mode = meta->mode;
  d.mtime = meta->mtime;
}

// A leaf holding chunk. Raw leaves are the bytes themselves; dag-pb leaves wrap the chunk in a
// UnixFS node of leaf_type (File for balanced, Raw for trickle, as boxo does).
NodeInfo put_leaf(BlockStore& store, const LayoutParams& p, ByteView chunk,
                  unixfs_pb::Type leaf_type, const Metadata* meta) {
  if (p.raw_leaves && !meta) {
    // Leaves are hashed on several pool threads at once: sha256_shared pairs them.
    Cid cid = Cid::v1(kCodecRaw, kHashSha256, sha256_shared(chunk));
    store.put(cid, chunk);
    return {cid, chunk.size(), chunk.size()};
  }
  unixfs_pb::Data d;
  d.type = leaf_type;
  d.filesize = chunk.size();
  apply_meta(d, meta);
  Bytes head;
  Bytes tail;
  unixfs_pb::encode_split(d, chunk, head, tail);
  // PBNode{Data = head ++ chunk ++ tail}: field 1, length-delimited.
  size_t data_len = head.size() + chunk.size() + tail.size();
  Bytes frame;
  frame.push_back(0x0a);
  put_varint(frame, data_len);
  frame.insert(frame.end(), head.begin(), head.end());
  ByteView parts[3] = {frame, chunk, tail};
  Sha256 h;
  for (auto part : parts) h.update(part);
  Sha256Digest digest = h.finish();
  Cid cid = p.cid_version == 0 ? Cid::v0(digest) : Cid::v1(kCodecDagPb, kHashSha256, digest);
  store.put_parts(cid, parts);
  uint64_t block_len = frame.size() + chunk.size() + tail.size();
  return {cid, block_len, chunk.size()};
}

// An internal File node over children (balanced and trickle interior nodes).
NodeInfo put_file_node(BlockStore& store, const LayoutParams& p, const std::vector<NodeInfo>& kids,
                       const Metadata* meta) {
  dagpb::Node node;
  unixfs_pb::Data d;
  d.type = unixfs_pb::Type::kFile;
  uint64_t filesize = 0;
  uint64_t tsize = 0;
  node.links.reserve(kids.size());
  d.blocksizes.reserve(kids.size());
  for (const auto& k : kids) {
    node.links.push_back({k.cid, std::string(), k.tsize});
    d.blocksizes.push_back(k.filesize);
    filesize += k.filesize;
    tsize += k.tsize;
  }
  d.filesize = filesize;
  apply_meta(d, meta);
  node.data = unixfs_pb::encode(d);
  return put_dagpb(store, p.cid_version, dagpb::encode(node), tsize, filesize);
}

// Pulls chunks one at a time, with a one-chunk lookahead so layouts can tell "last chunk".
class ChunkStream {
 public:
  explicit ChunkStream(Chunker& c) : chunker_(c) { have_ = chunker_.next(next_); }
  bool done() const { return !have_; }
  // Moves the next chunk into out and reads the one after it.
  void take(Bytes& out) {
    std::swap(out, next_);
    have_ = chunker_.next(next_);
  }

 private:
  Chunker& chunker_;
  Bytes next_;
  bool have_ = false;
};

// Balanced layout, streamed: levels[0] collects leaves; a full level is folded into one node of
// the level above before it takes another child. This builds the same tree as boxo's
// fillNodeRec (complete maxlinks-ary subtrees filled left to right, all leaves at one depth).
NodeInfo balanced(BlockStore& store, ChunkStream& chunks, const LayoutParams& p,
                  const Metadata& meta) {
  Bytes chunk;
  chunks.take(chunk);
  if (chunks.done()) {
    // One chunk: the leaf is the file (and carries the metadata).
    return put_leaf(store, p, chunk, unixfs_pb::Type::kFile, meta.empty() ? nullptr : &meta);
  }
  std::vector<std::vector<NodeInfo>> levels(1);
  std::function<void(size_t, NodeInfo)> push = [&](size_t level, NodeInfo info) {
    if (levels.size() <= level) levels.resize(level + 1);
    if (levels[level].size() == p.max_links) {
      NodeInfo folded = put_file_node(store, p, levels[level], nullptr);
      levels[level].clear();
      push(level + 1, folded);
    }
    levels[level].push_back(std::move(info));
  };

  // Leaves are hashed and stored on the shared pool while this thread reads the next chunks;
  // the layout takes them back in file order. At most `max_inflight` chunks are held, and their
  // buffers are recycled, so memory stays bounded and no chunk is allocated twice.
  ThreadPool& pool = ThreadPool::shared();
  const size_t max_inflight = 2 * pool.size() + 2;
  std::mutex free_mu;
  std::vector<Bytes> free_buffers;
  std::deque<std::future<NodeInfo>> inflight;
  auto submit = [&](Bytes& c) {
    auto data = std::make_shared<Bytes>();
    data->swap(c);
    inflight.push_back(pool.submit([&store, &p, &free_mu, &free_buffers, data] {
      NodeInfo info = put_leaf(store, p, *data, unixfs_pb::Type::kFile, nullptr);
      std::lock_guard lock(free_mu);
      free_buffers.push_back(std::move(*data));
      return info;
    }));
  };
  auto recycled = [&](Bytes& c) {
    std::lock_guard lock(free_mu);
    if (!free_buffers.empty()) {
      c.swap(free_buffers.back());
      free_buffers.pop_back();
    }
  };
  try {
    submit(chunk);
    while (!chunks.done()) {
      recycled(chunk);
      chunks.take(chunk);
      submit(chunk);
      while (inflight.size() > max_inflight) {
        push(0, inflight.front().get());
        inflight.pop_front();
      }
    }
    while (!inflight.empty()) {
      push(0, inflight.front().get());
      inflight.pop_front();
    }
  } catch (...) {
    // Tasks still running reference this frame: let them finish before unwinding it.
    for (auto& f : inflight) f.wait();
    throw;
  }
  // Fold every level into the one above; the top level becomes the root.
  for (size_t level = 0; level + 1 < levels.size(); ++level) {
    if (levels[level].empty()) continue;
    NodeInfo folded = put_file_node(store, p, levels[level], nullptr);
    levels[level].clear();
    // Through push(): a full level above must itself fold first, or the root would take more
    // than max_links children (boxo starts a new root level instead).
    push(level + 1, folded);
  }
  return put_file_node(store, p, levels.back(), meta.empty() ? nullptr : &meta);
}

// Trickle layout (boxo trickle/trickledag.go fillTrickleRec): a node takes up to maxlinks
// leaves, then depthRepeat subtrees of depth 1, 2, ... (below maxDepth, unbounded at the root).
std::vector<NodeInfo> trickle_fill(BlockStore& store, ChunkStream& chunks, const LayoutParams& p,
                                   int max_depth) {
  std::vector<NodeInfo> kids;
  Bytes chunk;
  while (kids.size() < p.max_links && !chunks.done()) {
    chunks.take(chunk);
    kids.push_back(put_leaf(store, p, chunk, unixfs_pb::Type::kRaw, nullptr));
  }
  for (int depth = 1; max_depth < 0 || depth < max_depth; ++depth) {
    if (chunks.done()) break;
    for (int r = 0; r < kTrickleDepthRepeat && !chunks.done(); ++r) {
      auto sub = trickle_fill(store, chunks, p, depth);
      kids.push_back(put_file_node(store, p, sub, nullptr));
    }
  }
  return kids;
}

}  // namespace

NodeInfo put_dagpb(BlockStore& store, int cid_version, const Bytes& block, uint64_t links_tsize,
                   uint64_t filesize) {
  Cid cid = Cid::of(cid_version, kCodecDagPb, block);
  store.put(cid, block);
  return {cid, block.size() + links_tsize, filesize};
}

NodeInfo build_file(BlockStore& store, Chunker& chunker, const LayoutParams& params,
                    const Metadata& meta) {
  if (params.max_links < 2) throw Error("max file links must be at least 2");
  ChunkStream chunks(chunker);
  if (params.trickle) {
    auto kids = trickle_fill(store, chunks, params, -1);
    return put_file_node(store, params, kids, meta.empty() ? nullptr : &meta);
  }
  if (chunks.done()) {
    // An empty file is one empty leaf: a raw empty block, or a File node with filesize 0.
    return put_leaf(store, params, ByteView(), unixfs_pb::Type::kFile,
                    meta.empty() ? nullptr : &meta);
  }
  return balanced(store, chunks, params, meta);
}

}  // namespace cidrun::unixfs
