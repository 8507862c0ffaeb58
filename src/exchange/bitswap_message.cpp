#include "exchange/bitswap_message.h"

#include "ipld/protobuf.h"
#include "util/error.h"
#include "util/sha256.h"

namespace cidrun::exchange::bitswap {
namespace {

void put_want(Bytes& out, const Want& w) {
  Bytes e;
  pb::put_bytes(e, 1, w.cid.bytes());
  pb::put_uint(e, 2, static_cast<uint32_t>(w.priority));
  if (w.cancel) pb::put_uint(e, 3, 1);
  if (w.type != WantType::kBlock) pb::put_uint(e, 4, static_cast<uint64_t>(w.type));
  if (w.send_dont_have) pb::put_uint(e, 5, 1);
  pb::put_bytes(out, 1, e);
}

Want decode_want(ByteView b) {
  pb::Reader r(b);
  Want w;
  bool have_cid = false;
  while (!r.done()) {
    auto [field, wt] = r.tag();
    if (field == 1 && wt == pb::kLen) {
      w.cid = Cid::from_bytes(r.bytes());
      have_cid = true;
    } else if (field == 2 && wt == pb::kVarint) {
      w.priority = static_cast<int32_t>(r.varint());
    } else if (field == 3 && wt == pb::kVarint) {
      w.cancel = r.varint() != 0;
    } else if (field == 4 && wt == pb::kVarint) {
      uint64_t t = r.varint();
      if (t > 1) throw Error("bitswap: unknown want type " + std::to_string(t));
      w.type = static_cast<WantType>(t);
    } else if (field == 5 && wt == pb::kVarint) {
      w.send_dont_have = r.varint() != 0;
    } else {
      r.skip(wt);
    }
  }
  if (!have_cid) throw Error("bitswap: a wantlist entry has no CID");
  return w;
}

WireBlock decode_block(ByteView b) {
  pb::Reader r(b);
  WireBlock out;
  bool have_prefix = false;
  while (!r.done()) {
    auto [field, wt] = r.tag();
    if (field == 1 && wt == pb::kLen) {
      ByteView p = r.bytes();
      size_t pos = 0;
      auto v = get_varint(p, pos);
      auto codec = v ? get_varint(p, pos) : std::nullopt;
      auto hash = codec ? get_varint(p, pos) : std::nullopt;
      auto len = hash ? get_varint(p, pos) : std::nullopt;
      if (!len || pos != p.size() || *v > 1) throw Error("bitswap: malformed block prefix");
      out.version = *v;
      out.codec = *codec;
      out.hash_code = *hash;
      out.digest_size = *len;
      have_prefix = true;
    } else if (field == 2 && wt == pb::kLen) {
      out.data = r.bytes();
    } else {
      r.skip(wt);
    }
  }
  if (!have_prefix) throw Error("bitswap: a block has no prefix");
  return out;
}

BlockPresence decode_presence(ByteView b) {
  pb::Reader r(b);
  BlockPresence p;
  bool have_cid = false;
  while (!r.done()) {
    auto [field, wt] = r.tag();
    if (field == 1 && wt == pb::kLen) {
      p.cid = Cid::from_bytes(r.bytes());
      have_cid = true;
    } else if (field == 2 && wt == pb::kVarint) {
      uint64_t t = r.varint();
      if (t > 1) throw Error("bitswap: unknown presence type");
      p.type = static_cast<Presence>(t);
    } else {
      r.skip(wt);
    }
  }
  if (!have_cid) throw Error("bitswap: a presence has no CID");
  return p;
}

}  // namespace

Bytes cid_prefix(const Cid& cid) {
  Bytes p;
  put_varint(p, static_cast<uint64_t>(cid.version()));
  put_varint(p, cid.codec());
  put_varint(p, cid.hash_code());
  put_varint(p, cid.digest().size());
  return p;
}

Bytes encode(const std::vector<Want>& wants, bool full_wantlist,
             const std::vector<OutBlock>& blocks, const std::vector<BlockPresence>& presences,
             Framing framing) {
  // Small parts are built first; blocks are written once, straight into the output, whose size
  // is known before anything is copied (a message is mostly block bytes).
  Bytes wl;
  if (!wants.empty() || full_wantlist) {
    for (const auto& w : wants) put_want(wl, w);
    if (full_wantlist) pb::put_uint(wl, 2, 1);
  }
  Bytes pres;
  for (const auto& p : presences) {
    Bytes e;
    pb::put_bytes(e, 1, p.cid.bytes());
    pb::put_uint(e, 2, static_cast<uint64_t>(p.type));
    pb::put_bytes(pres, 4, e);
  }
  std::vector<Bytes> prefixes;
  prefixes.reserve(blocks.size());
  size_t total = pres.size();
  if (!wants.empty() || full_wantlist) total += pb::len_field_size(1, wl.size());
  for (const auto& b : blocks) {
    prefixes.push_back(cid_prefix(*b.cid));
    size_t blk =
        pb::len_field_size(1, prefixes.back().size()) + pb::len_field_size(2, b.data.size());
    total += pb::len_field_size(3, blk);
  }
  Bytes out;
  out.reserve(total + 10);
  if (framing == Framing::kLengthPrefixed) put_varint(out, total);
  if (!wants.empty() || full_wantlist) pb::put_bytes(out, 1, wl);
  for (size_t i = 0; i < blocks.size(); ++i) {
    ByteView data = blocks[i].data;
    size_t blk = pb::len_field_size(1, prefixes[i].size()) + pb::len_field_size(2, data.size());
    pb::put_tag(out, 3, pb::kLen);
    put_varint(out, blk);
    pb::put_bytes(out, 1, prefixes[i]);
    pb::put_bytes(out, 2, data);
  }
  out.insert(out.end(), pres.begin(), pres.end());
  return out;
}

Message decode(ByteView message, size_t max_entries) {
  if (message.size() > kMaxMessage) throw Error("bitswap: message over 4 MiB");
  Message m;
  pb::Reader r(message);
  while (!r.done()) {
    auto [field, wt] = r.tag();
    if (field == 1 && wt == pb::kLen) {
      pb::Reader wl(r.bytes());
      while (!wl.done()) {
        auto [f, w] = wl.tag();
        if (f == 1 && w == pb::kLen) {
          if (m.wants.size() >= max_entries)
            throw Error("bitswap: more than " + std::to_string(max_entries) +
                        " wantlist entries in one message");
          m.wants.push_back(decode_want(wl.bytes()));
        } else if (f == 2 && w == pb::kVarint) {
          m.full_wantlist = wl.varint() != 0;
        } else {
          wl.skip(w);
        }
      }
    } else if (field == 2 && wt == pb::kLen) {
      // Bitswap 1.0.0: bare blocks, always CIDv0 (dag-pb, sha2-256).
      WireBlock b;
      b.version = 0;
      b.codec = kCodecDagPb;
      b.hash_code = kHashSha256;
      b.digest_size = 32;
      b.data = r.bytes();
      m.blocks.push_back(b);
    } else if (field == 3 && wt == pb::kLen) {
      m.blocks.push_back(decode_block(r.bytes()));
    } else if (field == 4 && wt == pb::kLen) {
      if (m.presences.size() >= max_entries) throw Error("bitswap: too many block presences");
      m.presences.push_back(decode_presence(r.bytes()));
    } else if (field == 5 && wt == pb::kVarint) {
      m.pending_bytes = static_cast<int32_t>(r.varint());
    } else {
      r.skip(wt);
    }
  }
  return m;
}

Cid block_cid(const WireBlock& b) {
  if (b.hash_code != kHashSha256 || b.digest_size != 32)
    throw Error("bitswap: block hashed with multihash code " + std::to_string(b.hash_code) +
                " (only sha2-256 is accepted)");
  Sha256Digest d = sha256_shared(b.data);
  if (b.version == 0) {
    if (b.codec != kCodecDagPb) throw Error("bitswap: CIDv0 block that is not dag-pb");
    return Cid::v0(d);
  }
  return Cid::v1(b.codec, kHashSha256, d);
}

}  // namespace cidrun::exchange::bitswap
