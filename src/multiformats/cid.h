// Content identifiers: CIDv0 (bare sha2-256 multihash, base58btc "Qm...") and CIDv1
// (<version><codec><multihash>, printed base32 "bafy..."). Spec:
// https://github.com/multiformats/cid
#pragma once

#include <compare>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "util/bytes.h"
#include "util/sha256.h"

namespace cidrun {

// Multicodec and multihash codes we use (https://github.com/multiformats/multicodec).
inline constexpr uint64_t kCodecRaw = 0x55;
inline constexpr uint64_t kCodecDagPb = 0x70;
inline constexpr uint64_t kCodecDagCbor = 0x71;
inline constexpr uint64_t kCodecLibp2pKey = 0x72;
inline constexpr uint64_t kHashIdentity = 0x00;
inline constexpr uint64_t kHashSha256 = 0x12;

// Identity CIDs embed their data; anything larger than this is refused, as kubo does, so a CID
// can never smuggle in an unbounded block.
inline constexpr size_t kMaxIdentityDigest = 128;

class Cid {
 public:
  Cid() = default;

  static Cid v0(const Sha256Digest& digest);
  static Cid v1(uint64_t codec, uint64_t hash_code, ByteView digest);
  // Hashes data with sha2-256 and returns its CID (version 0 requires codec dag-pb).
  static Cid of(int version, uint64_t codec, ByteView data);

  // Parses text (CIDv0 base58btc, or CIDv1 in any supported multibase). Throws Error.
  static Cid parse(std::string_view text);
  // Parses a binary CID that must span all of `data`.
  static Cid from_bytes(ByteView data);
  // Parses a binary CID at data[pos...] and advances pos (used inside dag-pb and CAR).
  static Cid read(ByteView data, size_t& pos);

  bool valid() const { return !bytes_.empty(); }
  int version() const { return version_; }
  uint64_t codec() const { return codec_; }
  uint64_t hash_code() const { return hash_code_; }
  ByteView digest() const { return ByteView(bytes_).subspan(digest_offset_); }
  // The multihash (<code><length><digest>): the block store's key.
  ByteView multihash() const { return ByteView(bytes_).subspan(mh_offset_); }
  const Bytes& bytes() const { return bytes_; }

  // Canonical text: base58btc for v0, base32 lower for v1 (kubo's default output).
  std::string str() const;
  std::string str(char multibase_prefix) const;

  // True when data hashes to this CID's multihash (identity CIDs: data equals the digest).
  bool matches(ByteView data) const;
  bool is_identity() const { return hash_code_ == kHashIdentity; }

  // The same content under the other CID version (v0 <-> v1 dag-pb).
  Cid to_v1() const;

  friend bool operator==(const Cid& a, const Cid& b) { return a.bytes_ == b.bytes_; }
  friend auto operator<=>(const Cid& a, const Cid& b) { return a.bytes_ <=> b.bytes_; }

 private:
  static Cid from_parts(int version, uint64_t codec, uint64_t hash_code, ByteView digest);

  Bytes bytes_;
  int version_ = 0;
  uint64_t codec_ = 0;
  uint64_t hash_code_ = 0;
  uint32_t mh_offset_ = 0;
  uint32_t digest_offset_ = 0;
};

struct CidHash {
  size_t operator()(const Cid& c) const noexcept {
    // Digests are uniformly distributed: their first bytes are a good hash.
    auto d = c.digest();
    size_t h = 0;
    for (size_t i = 0; i < d.size() && i < sizeof h; ++i) h = (h << 8) | d[i];
    return h ^ c.codec();
  }
};

}  // namespace cidrun
