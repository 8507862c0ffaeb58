#include "unixfs/directory.h"

#include <algorithm>
#include <cstdio>

#include "ipld/dagpb.h"
#include "unixfs/murmur3.h"
#include "util/error.h"

namespace cidrun::unixfs {
namespace {

dagpb::Node basic_node(const std::vector<DirEntry>& sorted, const Metadata& meta, uint64_t& tsize) {
  dagpb::Node node;
  node.links.reserve(sorted.size());
  tsize = 0;
  for (const auto& e : sorted) {
    node.links.push_back({e.node.cid, e.name, e.node.tsize});
    tsize += e.node.tsize;
  }
  unixfs_pb::Data d;
  d.type = unixfs_pb::Type::kDirectory;
  d.mode = meta.mode;
  d.mtime = meta.mtime;
  node.data = unixfs_pb::encode(d);
  return node;
}

struct HashedEntry {
  const DirEntry* entry;
  std::array<uint8_t, 8> hash;
};

unsigned log2_exact(unsigned v) {
  unsigned n = 0;
  while ((1U << n) < v) ++n;
  return n;
}

// The slot index of a name at a given depth: `width` bits of the hash, MSB first from byte 0.
unsigned slot_at(const std::array<uint8_t, 8>& h, unsigned depth, unsigned width) {
  unsigned start = depth * width;
  if (start + width > 64) throw Error("HAMT: hash bits exhausted (too many colliding names)");
  unsigned v = 0;
  for (unsigned b = start; b < start + width; ++b) {
    unsigned bit = (h[b / 8] >> (7 - b % 8)) & 1U;
    v = (v << 1) | bit;
  }
  return v;
}

class ShardBuilder {
 public:
  ShardBuilder(BlockStore& store, const DirParams& p) : store_(store), p_(p) {
    width_ = log2_exact(p.fanout);
    char buf[16];
    prefix_len_ = static_cast<size_t>(std::snprintf(buf, sizeof buf, "%X", p.fanout - 1));
  }

  NodeInfo build(std::vector<HashedEntry>& entries, unsigned depth, const Metadata* meta) {
    // Group by slot; a slot with one entry links the entry, a slot with several a sub-shard.
    std::sort(entries.begin(), entries.end(), [&](const HashedEntry& a, const HashedEntry& b) {
      unsigned sa = slot_at(a.hash, depth, width_);
      unsigned sb = slot_at(b.hash, depth, width_);
      return sa != sb ? sa < sb : a.entry->name < b.entry->name;
    });
    dagpb::Node node;
    std::vector<bool> bits(p_.fanout);
    uint64_t tsize = 0;
    for (size_t i = 0; i < entries.size();) {
      unsigned slot = slot_at(entries[i].hash, depth, width_);
      size_t j = i;
      while (j < entries.size() && slot_at(entries[j].hash, depth, width_) == slot) ++j;
      bits[slot] = true;
      std::string prefix = hex_prefix(slot);
      if (j - i == 1) {
        const DirEntry& e = *entries[i].entry;
        node.links.push_back({e.node.cid, prefix + e.name, e.node.tsize});
        tsize += e.node.tsize;
      } else {
        std::vector<HashedEntry> sub(entries.begin() + static_cast<ptrdiff_t>(i),
                                     entries.begin() + static_cast<ptrdiff_t>(j));
        NodeInfo child = build(sub, depth + 1, nullptr);
        node.links.push_back({child.cid, prefix, child.tsize});
        tsize += child.tsize;
      }
      i = j;
    }
    unixfs_pb::Data d;
    d.type = unixfs_pb::Type::kHamtShard;
    d.data = bitfield(bits);
    d.hash_type = unixfs_pb::kHashMurmur3;
    d.fanout = p_.fanout;
    if (meta) {
      d.mode = meta->mode;
      d.mtime = meta->mtime;
    }
    node.data = unixfs_pb::encode(d);
    return put_dagpb(store_, p_.cid_version, dagpb::encode(node), tsize, 0);
  }

 private:
  std::string hex_prefix(unsigned slot) const {
    char buf[16];
    std::snprintf(buf, sizeof buf, "%0*X", static_cast<int>(prefix_len_), slot);
    return buf;
  }

  // go-bitfield Bytes(): big-endian bytes of the bitmap (slot i = bit i of the integer), with
  // leading zero bytes trimmed.
  static Bytes bitfield(const std::vector<bool>& bits) {
    size_t nbytes = std::max<size_t>(1, bits.size() / 8);
    Bytes out(nbytes, 0);
    for (size_t i = 0; i < bits.size(); ++i) {
      if (bits[i]) out[nbytes - 1 - i / 8] |= static_cast<uint8_t>(1U << (i % 8));
    }
    size_t lead = 0;
    while (lead < out.size() && out[lead] == 0) ++lead;
    out.erase(out.begin(), out.begin() + static_cast<ptrdiff_t>(lead));
    return out;
  }

  BlockStore& store_;
  const DirParams& p_;
  unsigned width_ = 8;
  size_t prefix_len_ = 2;
};

}  // namespace

bool needs_sharding(const std::vector<DirEntry>& sorted, const DirParams& params,
                    const Metadata& meta) {
  if (params.threshold == 0 || sorted.empty()) return false;
  switch (params.estimation) {
    case HamtEstimation::kDisabled:
      return false;
    case HamtEstimation::kLinks: {
      // boxo productionLinkSize: name bytes + CID bytes per entry; framing and Tsize ignored.
      uint64_t est = 0;
      for (const auto& e : sorted) est += e.name.size() + e.node.cid.bytes().size();
      return est > params.threshold;
    }
    case HamtEstimation::kBlock: {
      uint64_t tsize = 0;
      return dagpb::encode(basic_node(sorted, meta, tsize)).size() > params.threshold;
    }
  }
  return false;
}

NodeInfo build_directory(BlockStore& store, std::vector<DirEntry> entries, const DirParams& params,
                         const Metadata& meta) {
  if (params.fanout < 8 || params.fanout > 1024 || (params.fanout & (params.fanout - 1))) {
    throw Error("HAMT fanout must be a power of two between 8 and 1024");
  }
  std::sort(entries.begin(), entries.end(),
            [](const DirEntry& a, const DirEntry& b) { return a.name < b.name; });
  for (size_t i = 0; i < entries.size(); ++i) {
    const std::string& n = entries[i].name;
    if (n.empty() || n.find('/') != std::string::npos || n.find('\0') != std::string::npos) {
      throw Error("invalid directory entry name '" + n + "'");
    }
    if (i > 0 && entries[i - 1].name == n) throw Error("duplicate directory entry '" + n + "'");
  }
  if (needs_sharding(entries, params, meta)) {
    std::vector<HashedEntry> hashed;
    hashed.reserve(entries.size());
    for (const auto& e : entries) hashed.push_back({&e, hamt_hash(as_bytes(e.name))});
    ShardBuilder b(store, params);
    return b.build(hashed, 0, meta.empty() ? nullptr : &meta);
  }
  uint64_t tsize = 0;
  dagpb::Node node = basic_node(entries, meta, tsize);
  return put_dagpb(store, params.cid_version, dagpb::encode(node), tsize, 0);
}

}  // namespace cidrun::unixfs
