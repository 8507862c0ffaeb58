#include "unixfs/reader.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "store/reachable.h"
#include "unixfs/murmur3.h"
#include "util/error.h"
#include "util/quote.h"

namespace cidrun::unixfs {
namespace {

bool is_file_type(unixfs_pb::Type t) {
  return t == unixfs_pb::Type::kFile || t == unixfs_pb::Type::kRaw;
}

size_t hamt_prefix_len(uint64_t fanout) {
  size_t n = 0;
  for (uint64_t v = fanout - 1; v > 0; v >>= 4) ++n;
  return std::max<size_t>(n, 1);
}

int parse_hex(std::string_view s) {
  int v = 0;
  for (char c : s) {
    v <<= 4;
    if (c >= '0' && c <= '9')
      v |= c - '0';
    else if (c >= 'A' && c <= 'F')
      v |= c - 'A' + 10;
    else if (c >= 'a' && c <= 'f')
      v |= c - 'a' + 10;
    else
      return -1;
  }
  return v;
}

unsigned hamt_slot(const std::array<uint8_t, 8>& h, unsigned depth, unsigned width) {
  unsigned start = depth * width;
  if (start + width > 64) throw Error("HAMT deeper than its hash allows");
  unsigned v = 0;
  for (unsigned b = start; b < start + width; ++b) v = (v << 1) | ((h[b / 8] >> (7 - b % 8)) & 1U);
  return v;
}

unsigned log2u(uint64_t v) {
  unsigned n = 0;
  while ((1ULL << n) < v) ++n;
  return n;
}

}  // namespace

Bytes Dag::block(const Cid& cid) {
  auto b = store_.get(cid);
  if (!b) throw NotFound("block " + cid.str() + " not found");
  return std::move(*b);
}

Dag::Decoded Dag::decode(const Cid& cid, const Bytes& block) {
  Decoded d;
  if (cid.codec() == kCodecRaw) {
    d.data.type = unixfs_pb::Type::kRaw;
    d.data.data = block;
    d.data.filesize = block.size();
    return d;
  }
  if (cid.codec() != kCodecDagPb) {
    throw Error(cid.str() + ": not a UnixFS node (codec 0x" +
                to_hex(Bytes{static_cast<uint8_t>(cid.codec())}) + ")");
  }
  try {
    d.node = dagpb::decode(block);
    if (!d.node.data) throw Error("dag-pb node without UnixFS data");
    d.data = unixfs_pb::decode(*d.node.data);
  } catch (const NotFound&) {
    throw;
  } catch (const Error& e) {
    throw Error(cid.str() + ": " + e.what());
  }
  return d;
}

NodeStat Dag::stat(const Cid& cid) {
  Bytes b = block(cid);
  Decoded d = decode(cid, b);
  NodeStat s;
  s.cid = cid;
  s.block_size = b.size();
  s.num_links = d.node.links.size();
  s.mode = d.data.mode;
  s.mtime = d.data.mtime;
  switch (d.data.type) {
    case unixfs_pb::Type::kFile:
    case unixfs_pb::Type::kRaw: {
      s.kind = NodeKind::kFile;
      uint64_t own = d.data.data ? d.data.data->size() : 0;
      s.size = d.data.filesize.value_or(own);
      if (cid.codec() == kCodecDagPb) {
        s.size = unixfs_pb::checked_file_size(cid, own, d.data.blocksizes, d.node.links.size(),
                                              d.data.filesize);
      }
      break;
    }
    case unixfs_pb::Type::kDirectory:
      s.kind = NodeKind::kDirectory;
      break;
    case unixfs_pb::Type::kHamtShard:
      s.kind = NodeKind::kDirectory;
      s.hamt = true;
      break;
    case unixfs_pb::Type::kSymlink:
      s.kind = NodeKind::kSymlink;
      s.symlink_target = d.data.data ? std::string(as_string(*d.data.data)) : std::string();
      s.size = s.symlink_target.size();
      break;
    case unixfs_pb::Type::kMetadata:
      throw Error(cid.str() + ": UnixFS Metadata nodes are not supported");
  }
  return s;
}

void Dag::list_hamt(const Decoded& shard, int depth, KeySet& shards,
                    const std::function<void(const DirEntryRef&)>& fn) {
  if (shard.data.hash_type != unixfs_pb::kHashMurmur3 || !shard.data.fanout) {
    throw Error("HAMT shard with unsupported hash type or no fanout");
  }
  // A name's hash picks one slot per level, so a real HAMT ends where its 64 bits do (lookup
  // could not reach an entry below that).
  unsigned width = log2u(*shard.data.fanout);
  if (depth > kMaxDagDepth || (width > 0 && static_cast<unsigned>(depth + 1) * width > 64)) {
    throw Error("HAMT nested deeper than its hash allows");
  }
  size_t plen = hamt_prefix_len(*shard.data.fanout);
  for (const auto& l : shard.node.links) {
    const std::string name = l.name.value_or("");
    if (name.size() < plen || parse_hex(std::string_view(name).substr(0, plen)) < 0) {
      throw Error("HAMT link with malformed name " + quote(name));
    }
    if (name.size() == plen) {
      // Each entry's hash places it in one shard, so no real HAMT holds a shard twice; a
      // hostile one that links the same shard from every slot of every level would list 256^7
      // times the entries its few blocks hold.
      if (!shards.insert(l.hash.bytes()).second) {
        throw Error(l.hash.str() + ": HAMT links the same shard more than once");
      }
      Bytes b = block(l.hash);
      Decoded sub = decode(l.hash, b);
      if (sub.data.type != unixfs_pb::Type::kHamtShard || sub.data.fanout != shard.data.fanout) {
        throw Error(l.hash.str() + ": HAMT child is not a shard of the same fanout");
      }
      list_hamt(sub, depth + 1, shards, fn);
    } else {
      fn({name.substr(plen), l.hash, l.tsize});
    }
  }
}

void Dag::list(const Cid& dir, const std::function<void(const DirEntryRef&)>& fn) {
  Bytes b = block(dir);
  Decoded d = decode(dir, b);
  if (d.data.type == unixfs_pb::Type::kHamtShard) {
    KeySet shards{dir.bytes()};
    list_hamt(d, 0, shards, fn);
    return;
  }
  if (d.data.type != unixfs_pb::Type::kDirectory) throw Error(dir.str() + " is not a directory");
  for (const auto& l : d.node.links) {
    if (!l.name) throw Error(dir.str() + ": directory link without a name");
    fn({*l.name, l.hash, l.tsize});
  }
}

std::optional<Cid> Dag::lookup(const Cid& dir, std::string_view name) {
  Bytes b = block(dir);
  Decoded d = decode(dir, b);
  if (d.data.type == unixfs_pb::Type::kDirectory) {
    for (const auto& l : d.node.links) {
      if (l.name && *l.name == name) return l.hash;
    }
    return std::nullopt;
  }
  if (d.data.type != unixfs_pb::Type::kHamtShard) throw Error(dir.str() + " is not a directory");
  auto h = hamt_hash(as_bytes(name));
  for (unsigned depth = 0;; ++depth) {
    // A fanout of 1 uses no bits of the hash: only this bounds a chain of such shards.
    if (depth > static_cast<unsigned>(kMaxDagDepth)) throw Error("HAMT nested too deeply");
    if (d.data.hash_type != unixfs_pb::kHashMurmur3 || !d.data.fanout) {
      throw Error("HAMT shard with unsupported hash type or no fanout");
    }
    size_t plen = hamt_prefix_len(*d.data.fanout);
    unsigned slot = hamt_slot(h, depth, log2u(*d.data.fanout));
    const dagpb::Link* next = nullptr;
    for (const auto& l : d.node.links) {
      const std::string n = l.name.value_or("");
      if (n.size() < plen ||
          parse_hex(std::string_view(n).substr(0, plen)) != static_cast<int>(slot))
        continue;
      if (n.size() == plen) {
        next = &l;
        break;
      }
      if (std::string_view(n).substr(plen) == name) return l.hash;
    }
    if (!next) return std::nullopt;
    Cid child = next->hash;
    b = block(child);
    d = decode(child, b);
    if (d.data.type != unixfs_pb::Type::kHamtShard)
      throw Error(child.str() + ": HAMT child is not a shard");
  }
}

Cid Dag::resolve(const Cid& root, std::string_view path) {
  Cid cur = root;
  size_t pos = 0;
  int depth = 0;
  while (pos <= path.size()) {
    size_t slash = path.find('/', pos);
    std::string_view comp =
        path.substr(pos, slash == std::string_view::npos ? std::string_view::npos : slash - pos);
    pos = slash == std::string_view::npos ? path.size() + 1 : slash + 1;
    if (comp.empty() || comp == ".") continue;
    if (comp == "..") throw Error("path component '..' is not allowed in an IPFS path");
    if (++depth > kMaxDagDepth) throw Error("path too deep");
    NodeStat s = stat(cur);
    if (s.kind != NodeKind::kDirectory) {
      throw Error("cannot resolve " + quote(comp) + ": " + cur.str() + " is not a directory");
    }
    auto next = lookup(cur, comp);
    if (!next) throw Error("no link named " + quote(comp) + " under " + cur.str());
    cur = *next;
  }
  return cur;
}

std::pair<Cid, std::string> Dag::split_path(std::string_view text) {
  if (text.rfind("/ipfs/", 0) == 0)
    text.remove_prefix(6);
  else if (text.rfind("ipfs://", 0) == 0)
    text.remove_prefix(7);
  while (!text.empty() && text.front() == '/') text.remove_prefix(1);
  size_t slash = text.find('/');
  Cid cid = Cid::parse(text.substr(0, slash));
  std::string rest = slash == std::string_view::npos ? "" : std::string(text.substr(slash + 1));
  return {cid, rest};
}

FileReader::FileReader(Dag& dag, const Cid& cid) : dag_(dag), cid_(cid) {
  NodeStat s = dag_.stat(cid);
  if (s.kind != NodeKind::kFile) throw Error(cid.str() + " is not a file");
  size_ = s.size;
}

namespace {

// The bytes a file node says it holds (unixfs_pb::checked_file_size).
uint64_t claimed_size(const Cid& cid, const unixfs_pb::Data& data, size_t links) {
  return unixfs_pb::checked_file_size(cid, data.data ? data.data->size() : 0, data.blocksizes,
                                      links, data.filesize);
}

[[noreturn]] void size_lie(const Cid& cid, uint64_t holds, uint64_t claimed) {
  throw Error(cid.str() + ": holds " + std::to_string(holds) + " bytes where its parent claims " +
              std::to_string(claimed));
}

}  // namespace

void FileReader::stream_node(const Cid& cid, uint64_t claimed, uint64_t node_offset, uint64_t start,
                             uint64_t end, int depth, const std::function<void(ByteView)>& sink) {
  if (depth > kMaxDagDepth) throw Error(cid.str() + ": file DAG nested too deeply");
  Bytes b = dag_.block(cid);
  spend(cid, b.size());
  // Every node read must hold exactly what its parent claims for it, also where the range
  // ends inside it: a leaf longer than its claim would otherwise pass a read of its head.
  auto emit = [&](ByteView data, uint64_t at) {
    uint64_t lo = std::max(start, at);
    uint64_t hi = std::min(end, at + data.size());
    if (lo < hi) sink(data.subspan(lo - at, hi - lo));
  };
  if (cid.codec() == kCodecRaw) {
    if (b.size() != claimed) size_lie(cid, b.size(), claimed);
    emit(b, node_offset);
    return;
  }
  Dag::Decoded d = dag_.decode(cid, b);
  if (!is_file_type(d.data.type)) throw Error(cid.str() + ": expected a file node");
  if (uint64_t holds = claimed_size(cid, d.data, d.node.links.size()); holds != claimed) {
    size_lie(cid, holds, claimed);
  }
  ByteView own = d.data.data ? ByteView(*d.data.data) : ByteView();
  emit(own, node_offset);
  uint64_t child_at = node_offset + own.size();
  for (size_t i = 0; i < d.node.links.size(); ++i) {
    uint64_t bs = d.data.blocksizes[i];
    const Cid& child = d.node.links[i].hash;
    // Only children whose claimed bytes meet the range are read, so a read costs at most one
    // node per byte and level. A child claimed empty within the range is checked to claim
    // nothing itself, never descended: a subtree of empty nodes, each linking the next twice,
    // would otherwise be 2^depth visits.
    if (bs > 0 && child_at < end && child_at + bs > start) {
      stream_node(child, bs, child_at, start, end, depth + 1, sink);
    } else if (bs == 0 && child_at >= start && child_at <= end) {
      check_empty(child);
    }
    child_at += bs;
  }
}

void FileReader::check_empty(const Cid& cid) {
  Bytes b = dag_.block(cid);
  spend(cid, b.size());
  uint64_t holds = b.size();
  if (cid.codec() != kCodecRaw) {
    Dag::Decoded d = dag_.decode(cid, b);
    if (!is_file_type(d.data.type)) throw Error(cid.str() + ": expected a file node");
    holds = claimed_size(cid, d.data, d.node.links.size());
  }
  if (holds != 0) size_lie(cid, holds, 0);
}

void FileReader::spend(const Cid& cid, size_t block_size) {
  uint64_t cost = block_size + kReadCostPerBlock;
  if (cost > budget_) {
    throw Error(cid_.str() + ": reading it costs more blocks than any real file DAG (at " +
                cid.str() + "): a DAG that links the same nodes over and over?");
  }
  budget_ -= cost;
}

void FileReader::stream_range(uint64_t offset, uint64_t length,
                              const std::function<void(ByteView)>& sink) {
  if (offset >= size_) return;
  uint64_t end = length > size_ - offset ? size_ : offset + length;
  uint64_t span = end - offset;
  budget_ = span > (UINT64_MAX - kReadAllowance) / kReadCostPerByte
                ? UINT64_MAX
                : kReadAllowance + kReadCostPerByte * span;
  uint64_t produced = 0;
  stream_node(cid_, size_, 0, offset, end, 0, [&](ByteView piece) {
    produced += piece.size();
    sink(piece);
  });
  if (produced != end - offset) throw Error(cid_.str() + ": file is shorter than its size claims");
}

void FileReader::missing_below(const Cid& cid, uint64_t node_offset, uint64_t start, uint64_t end,
                               int depth, size_t& budget,
                               const std::function<void(const Cid&)>& fn) {
  if (depth > kMaxDagDepth || cid.codec() != kCodecDagPb || budget == 0) return;
  --budget;
  if (!cid.is_identity() && !dag_.store_.has(cid)) {
    fn(cid);
    return;
  }
  Bytes b = dag_.block(cid);
  Dag::Decoded d = dag_.decode(cid, b);
  // Malformed nodes are the reader's to report, when it gets there.
  if (!is_file_type(d.data.type) || d.data.blocksizes.size() != d.node.links.size()) return;
  uint64_t child_at = node_offset + (d.data.data ? d.data.data->size() : 0);
  for (size_t i = 0; i < d.node.links.size() && child_at < end && budget > 0; ++i) {
    uint64_t bs = d.data.blocksizes[i];
    if (bs > UINT64_MAX - child_at) return;
    if (bs > 0 && child_at + bs > start) {  // the children a read would visit (stream_node)
      const Cid& c = d.node.links[i].hash;
      if (c.codec() == kCodecDagPb) {
        missing_below(c, child_at, start, end, depth + 1, budget, fn);
      } else {
        --budget;
        if (!c.is_identity() && !dag_.store_.has(c)) fn(c);
      }
    }
    child_at += bs;
  }
}

void FileReader::missing_blocks(uint64_t offset, uint64_t length,
                                const std::function<void(const Cid&)>& fn) {
  if (offset >= size_) return;
  uint64_t end = length > size_ - offset ? size_ : offset + length;
  if (cid_.codec() != kCodecDagPb) {
    if (!cid_.is_identity() && !dag_.store_.has(cid_)) fn(cid_);
    return;
  }
  size_t budget = kMaxMissingBlocksVisits;
  missing_below(cid_, 0, offset, end, 0, budget, fn);
}

void FileReader::stream(const std::function<void(ByteView)>& sink) {
  stream_range(0, size_, sink);
}

size_t FileReader::read(uint64_t offset, uint8_t* buf, size_t len) {
  size_t got = 0;
  stream_range(offset, len, [&](ByteView piece) {
    std::memcpy(buf + got, piece.data(), piece.size());
    got += piece.size();
  });
  return got;
}

void walk_dag(BlockStore& store, const Cid& root,
              const std::function<bool(const Cid&, ByteView block)>& visit) {
  KeySet seen;
  walk_reachable(store, root, seen, IfMissing::kThrow, [&](const Cid& cid, ByteView block) {
    // Identity blocks live inside their CID, so an export leaves them out; an inlined dag-pb
    // node's links still lead to real blocks.
    return cid.is_identity() || visit(cid, block);
  });
}

}  // namespace cidrun::unixfs
