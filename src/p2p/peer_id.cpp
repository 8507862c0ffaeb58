#include "p2p/peer_id.h"

#include <algorithm>

#include "ipld/protobuf.h"
#include "multiformats/cid.h"
#include "multiformats/multibase.h"
#include "util/error.h"
#include "util/sha256.h"

namespace cidrun::p2p {
namespace {

constexpr uint8_t kPublicKeyPrefix[] = {0x08, 0x01, 0x12, 0x20};
// Keys that encode to at most this many bytes are inlined (identity multihash).
constexpr size_t kMaxInlineKey = 42;

}  // namespace

Bytes encode_public_key(const Key32& key) {
  Bytes out(std::begin(kPublicKeyPrefix), std::end(kPublicKeyPrefix));
  out.insert(out.end(), key.begin(), key.end());
  return out;
}

Key32 decode_public_key(ByteView pb) {
  pb::Reader r(pb);
  uint64_t type = ~0ULL;
  ByteView data;
  bool have_data = false;
  while (!r.done()) {
    auto [field, wt] = r.tag();
    if (field == 1 && wt == pb::kVarint) {
      type = r.varint();
    } else if (field == 2 && wt == pb::kLen) {
      data = r.bytes();
      have_data = true;
    } else {
      r.skip(wt);
    }
  }
  if (type != kKeyTypeEd25519)
    throw Error("public key of type " +
                (type == ~0ULL ? std::string("(none)") : std::to_string(type)) +
                " (only Ed25519 keys are supported)");
  if (!have_data || data.size() != 32) throw Error("Ed25519 public key is not 32 bytes");
  Key32 k{};
  std::copy(data.begin(), data.end(), k.begin());
  Bytes canonical = encode_public_key(k);
  if (!std::equal(pb.begin(), pb.end(), canonical.begin(), canonical.end()))
    throw Error("public key is not in the deterministic encoding");
  return k;
}

Bytes encode_private_key(const Ed25519Key& key) {
  Bytes data(key.seed.begin(), key.seed.end());
  data.insert(data.end(), key.public_key.begin(), key.public_key.end());
  Bytes out;
  pb::put_uint(out, 1, kKeyTypeEd25519);
  pb::put_bytes(out, 2, data);
  return out;
}

Ed25519Key decode_private_key(ByteView pb) {
  pb::Reader r(pb);
  uint64_t type = ~0ULL;
  ByteView data;
  while (!r.done()) {
    auto [field, wt] = r.tag();
    if (field == 1 && wt == pb::kVarint) {
      type = r.varint();
    } else if (field == 2 && wt == pb::kLen) {
      data = r.bytes();
    } else {
      r.skip(wt);
    }
  }
  if (type != kKeyTypeEd25519) throw Error("private key is not an Ed25519 key");
  if (data.size() != 64 && data.size() != 32)
    throw Error("Ed25519 private key is " + std::to_string(data.size()) +
                " bytes (expected 64 or 32)");
  Key32 seed{};
  std::copy(data.begin(), data.begin() + 32, seed.begin());
  Ed25519Key key = Ed25519Key::from_seed(seed);
  if (data.size() == 64 &&
      !std::equal(key.public_key.begin(), key.public_key.end(), data.begin() + 32))
    throw Error("Ed25519 private key: its public half does not belong to it");
  return key;
}

PeerId PeerId::from_public_key(const Key32& key) {
  Bytes enc = encode_public_key(key);
  PeerId id;
  if (enc.size() <= kMaxInlineKey) {
    put_varint(id.bytes_, kHashIdentity);
    put_varint(id.bytes_, enc.size());
    id.bytes_.insert(id.bytes_.end(), enc.begin(), enc.end());
  } else {
    Sha256Digest d = sha256(enc);
    put_varint(id.bytes_, kHashSha256);
    put_varint(id.bytes_, d.size());
    id.bytes_.insert(id.bytes_.end(), d.begin(), d.end());
  }
  return id;
}

PeerId PeerId::from_bytes(ByteView mh) {
  size_t pos = 0;
  auto code = get_varint(mh, pos);
  auto len = code ? get_varint(mh, pos) : std::nullopt;
  if (!code || !len || *len != mh.size() - pos)
    throw Error("peer ID is not a well-formed multihash");
  if (*code == kHashSha256) {
    if (*len != 32) throw Error("peer ID: sha2-256 digest is not 32 bytes");
  } else if (*code == kHashIdentity) {
    if (*len > kMaxInlineKey) throw Error("peer ID: inlined key longer than 42 bytes");
  } else {
    throw Error("peer ID uses an unknown hash function");
  }
  PeerId id;
  id.bytes_.assign(mh.begin(), mh.end());
  return id;
}

PeerId PeerId::parse(std::string_view text) {
  try {
    if (!text.empty() && (text[0] == '1' || text[0] == 'Q')) {
      return from_bytes(multibase::decode_base58btc(text));
    }
    Bytes cid = multibase::decode(text);
    size_t pos = 0;
    auto version = get_varint(cid, pos);
    auto codec = version ? get_varint(cid, pos) : std::nullopt;
    if (!version || *version != 1 || !codec || *codec != kCodecLibp2pKey)
      throw Error("not a CIDv1 with codec libp2p-key");
    return from_bytes(ByteView(cid).subspan(pos));
  } catch (const Error& e) {
    throw Error("bad peer ID '" + std::string(text) + "': " + e.what());
  }
}

std::string PeerId::str() const {
  return multibase::base58btc(bytes_);
}

bool PeerId::has_inline_key() const {
  return bytes_.size() == 2 + sizeof kPublicKeyPrefix + 32 && bytes_[0] == kHashIdentity &&
         std::equal(std::begin(kPublicKeyPrefix), std::end(kPublicKeyPrefix), bytes_.begin() + 2);
}

Key32 PeerId::inline_key() const {
  if (!has_inline_key()) throw Error("peer ID " + str() + " does not inline an Ed25519 key");
  Key32 k{};
  std::copy(bytes_.end() - 32, bytes_.end(), k.begin());
  return k;
}

}  // namespace cidrun::p2p
