#include "multiformats/cid.h"

#include <cstring>

#include "multiformats/multibase.h"
#include "util/error.h"
#include "util/varint.h"

namespace cidrun {

Cid Cid::from_parts(int version, uint64_t codec, uint64_t hash_code, ByteView digest) {
  Cid c;
  c.version_ = version;
  c.codec_ = codec;
  c.hash_code_ = hash_code;
  if (version == 1) {
    put_varint(c.bytes_, 1);
    put_varint(c.bytes_, codec);
  }
  c.mh_offset_ = static_cast<uint32_t>(c.bytes_.size());
  put_varint(c.bytes_, hash_code);
  put_varint(c.bytes_, digest.size());
  c.digest_offset_ = static_cast<uint32_t>(c.bytes_.size());
  c.bytes_.insert(c.bytes_.end(), digest.begin(), digest.end());
  return c;
}

Cid Cid::v0(const Sha256Digest& digest) {
  return from_parts(0, kCodecDagPb, kHashSha256, digest);
}

Cid Cid::v1(uint64_t codec, uint64_t hash_code, ByteView digest) {
  return from_parts(1, codec, hash_code, digest);
}

Cid Cid::of(int version, uint64_t codec, ByteView data) {
  Sha256Digest d = sha256(data);
  if (version == 0) {
    if (codec != kCodecDagPb) throw Error("CIDv0 can only address dag-pb blocks");
    return v0(d);
  }
  return v1(codec, kHashSha256, d);
}

static void check_multihash(uint64_t code, uint64_t len) {
  if (code == kHashSha256) {
    if (len != 32) throw Error("sha2-256 multihash with digest length " + std::to_string(len));
  } else if (code == kHashIdentity) {
    if (len > kMaxIdentityDigest) throw Error("identity multihash too large");
  } else {
    throw Error("unsupported multihash function 0x" + to_hex(Bytes{static_cast<uint8_t>(code)}));
  }
}

Cid Cid::read(ByteView data, size_t& pos) {
  // CIDv0 is a bare sha2-256 multihash: 0x12 0x20 + 32 bytes.
  if (pos + 2 <= data.size() && data[pos] == 0x12 && data[pos + 1] == 0x20) {
    if (data.size() - pos < 34) throw Error("truncated CIDv0");
    Sha256Digest d;
    std::memcpy(d.data(), data.data() + pos + 2, 32);
    pos += 34;
    return v0(d);
  }
  auto version = get_varint(data, pos);
  if (!version) throw Error("malformed CID: bad version varint");
  if (*version != 1) throw Error("unsupported CID version " + std::to_string(*version));
  auto codec = get_varint(data, pos);
  auto code = codec ? get_varint(data, pos) : std::nullopt;
  auto len = code ? get_varint(data, pos) : std::nullopt;
  if (!len) throw Error("malformed CID: truncated header");
  check_multihash(*code, *len);
  if (data.size() - pos < *len) throw Error("truncated CID digest");
  Cid c = from_parts(1, *codec, *code, data.subspan(pos, *len));
  pos += *len;
  return c;
}

Cid Cid::from_bytes(ByteView data) {
  size_t pos = 0;
  Cid c = read(data, pos);
  if (pos != data.size()) throw Error("trailing bytes after CID");
  return c;
}

Cid Cid::parse(std::string_view text) {
  if (text.size() == 46 && text[0] == 'Q' && text[1] == 'm') {
    try {
      return from_bytes(multibase::decode_base58btc(text));
    } catch (const Error& e) {
      throw Error("invalid CID '" + std::string(text) + "': " + e.what());
    }
  }
  if (text.empty() || text.size() > 4096)
    throw Error("invalid CID '" + std::string(text.substr(0, 64)) + "'");
  try {
    Cid c = from_bytes(multibase::decode(text));
    if (c.version() == 0) throw Error("CIDv0 must be base58btc");
    return c;
  } catch (const Error& e) {
    throw Error("invalid CID '" + std::string(text) + "': " + e.what());
  }
}

std::string Cid::str() const {
  return version_ == 0 ? multibase::base58btc(bytes_) : str('b');
}

std::string Cid::str(char prefix) const {
  if (version_ == 0) return multibase::base58btc(bytes_);
  return multibase::encode(prefix, bytes_);
}

bool Cid::matches(ByteView data) const {
  if (hash_code_ == kHashIdentity) {
    auto d = digest();
    return d.size() == data.size() && std::equal(d.begin(), d.end(), data.begin());
  }
  Sha256Digest h = sha256(data);
  auto d = digest();
  return d.size() == h.size() && std::equal(d.begin(), d.end(), h.begin());
}

Cid Cid::to_v1() const {
  return version_ == 1 ? *this : v1(codec_, hash_code_, digest());
}

}  // namespace cidrun
