#include "gateway/car_response.h"

#include <string>
#include <unordered_set>

#include "exchange/car_stream.h"
#include "ipld/dagpb.h"
#include "ipld/unixfs_pb.h"
#include "unixfs/reader.h"

namespace cidrun::gateway {
namespace {

using exchange::DagScope;

class Emitter {
 public:
  Emitter(BlockStore& store, const CarWriter& write) : store_(store), write_(write) {}

  Bytes block(const Cid& cid) {
    if (cid.is_identity()) return Bytes(cid.digest().begin(), cid.digest().end());
    auto b = store_.get(cid);
    if (!b) throw NotFound("block " + cid.str() + " not found");
    return std::move(*b);
  }

  // Writes one section unless it is an identity block or was already sent (dups=n).
  void emit(const Cid& cid, ByteView data) {
    if (cid.is_identity()) return;
    if (!sent_.insert(std::string(as_string(cid.multihash()))).second) return;
    section(cid, data);
  }

  // Small sections are gathered into one buffer: one socket write (and one HTTP chunk) per
  // ~256 KiB instead of two per block, which is what a tree of small files is made of.
  void section(const Cid& cid, ByteView data) {
    Bytes prefix = exchange::car_section_prefix(cid, data.size());
    raw(prefix);
    raw(data);
  }

  void raw(ByteView bytes) {
    if (bytes.size() >= kGather) {
      flush();
      if (!write_(bytes)) throw ClientGone();
      return;
    }
    out_.insert(out_.end(), bytes.begin(), bytes.end());
    if (out_.size() >= kGather) flush();
  }

  void flush() {
    if (out_.empty()) return;
    if (!write_(out_)) throw ClientGone();
    out_.clear();
  }

  // The whole DAG below cid (walk_dag dedupes by itself; sent_ only holds path/entity blocks,
  // so the set stays small for big DAGs).
  void all(const Cid& cid) {
    unixfs::walk_dag(store_, cid, [&](const Cid& c, ByteView data) {
      if (sent_.count(std::string(as_string(c.multihash())))) return true;
      section(c, data);
      return true;
    });
  }

  // A UnixFS entity: a file's whole DAG, a directory's node (with every HAMT shard), or the block.
  void entity(const Cid& cid, const std::optional<ByteRange>& range) {
    Bytes b = block(cid);
    if (cid.codec() != kCodecDagPb) {
      emit(cid, b);
      return;
    }
    dagpb::Node node = dagpb::decode(b);
    unixfs_pb::Data data;
    try {
      data = unixfs_pb::decode(node.data ? *node.data : Bytes());
    } catch (const Error&) {
      emit(cid, b);  // not UnixFS: the entity is the block
      return;
    }
    switch (data.type) {
      case unixfs_pb::Type::kFile:
      case unixfs_pb::Type::kRaw:
        if (!range) {
          emit(cid, b);
          all(cid);
          return;
        }
        if (auto r = resolve_range(*range, data.filesize.value_or(0))) {
          file_range(cid, b, 0, r->first, r->second, 0);
        } else {
          emit(cid, b);  // nothing selected: the root alone lets the client see the size
        }
        return;
      case unixfs_pb::Type::kHamtShard:
        shards(cid, b, 0);
        return;
      default:
        emit(cid, b);
    }
  }

 private:
  // The blocks of a file that cover [first, last], found through the blocksizes of each node.
  void file_range(const Cid& cid, const Bytes& b, uint64_t offset, uint64_t first, uint64_t last,
                  int depth) {
    if (depth > unixfs::kMaxDagDepth) throw Error(cid.str() + ": file DAG too deep");
    emit(cid, b);
    if (cid.codec() != kCodecDagPb) return;
    dagpb::Node node = dagpb::decode(b);
    unixfs_pb::Data data = unixfs_pb::decode(node.data ? *node.data : Bytes());
    uint64_t pos = offset + (data.data ? data.data->size() : 0);
    if (data.blocksizes.size() != node.links.size()) {
      throw Error(cid.str() + ": blocksizes do not match the links");
    }
    for (size_t i = 0; i < node.links.size() && pos <= last; ++i) {
      uint64_t end = pos + data.blocksizes[i];  // exclusive
      if (end > first && data.blocksizes[i] > 0) {
        const Cid& child = node.links[i].hash;
        file_range(child, block(child), pos, first, last, depth + 1);
      }
      pos = end;
    }
  }

  // A HAMT directory: the shard and every sub-shard (link names that are only the slot prefix),
  // which is what a client needs to list it; the entries themselves are not part of the entity.
  void shards(const Cid& cid, const Bytes& b, int depth) {
    if (depth > unixfs::kMaxDagDepth) throw Error(cid.str() + ": HAMT too deep");
    emit(cid, b);
    dagpb::Node node = dagpb::decode(b);
    unixfs_pb::Data data = unixfs_pb::decode(node.data ? *node.data : Bytes());
    // Slot names are the slot index in upper-case hex, padded to the width of fanout-1.
    size_t prefix = 0;
    for (uint64_t f = data.fanout.value_or(256) - 1; f > 0; f >>= 4) ++prefix;
    for (const auto& l : node.links) {
      if (l.name && l.name->size() == prefix && l.hash.codec() == kCodecDagPb) {
        shards(l.hash, block(l.hash), depth + 1);
      }
    }
  }

  static constexpr size_t kGather = 256 * 1024;
  BlockStore& store_;
  const CarWriter& write_;
  Bytes out_;
  std::unordered_set<std::string> sent_;
};

}  // namespace

void stream_car(BlockStore& store, const Cid& root, const std::vector<Cid>& path_blocks,
                const Cid& target, DagScope scope, const std::optional<ByteRange>& entity_bytes,
                const CarWriter& write) {
  Emitter e(store, write);
  e.raw(exchange::car_header({root}));
  for (const auto& c : path_blocks) e.emit(c, e.block(c));
  switch (scope) {
    case DagScope::kBlock:
      e.emit(target, e.block(target));
      break;
    case DagScope::kEntity:
      e.entity(target, entity_bytes);
      break;
    case DagScope::kAll: {
      e.emit(target, e.block(target));
      e.all(target);
      break;
    }
  }
  e.flush();
}

}  // namespace cidrun::gateway
