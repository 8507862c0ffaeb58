// Minimal protobuf wire-format helpers. The IPFS messages (dag-pb, UnixFS Data, CAR-adjacent,
// Bitswap) need exact canonical bytes, which a general protobuf library does not promise.
#pragma once

#include <cstdint>
#include <optional>

#include "util/bytes.h"
#include "util/varint.h"

namespace cidrun::pb {

enum WireType : uint8_t { kVarint = 0, kFixed64 = 1, kLen = 2, kFixed32 = 5 };

inline void put_tag(Bytes& out, uint32_t field, WireType wt) {
  put_varint(out, (static_cast<uint64_t>(field) << 3) | wt);
}
inline void put_uint(Bytes& out, uint32_t field, uint64_t v) {
  put_tag(out, field, kVarint);
  put_varint(out, v);
}
inline void put_bytes(Bytes& out, uint32_t field, ByteView v) {
  put_tag(out, field, kLen);
  put_varint(out, v.size());
  out.insert(out.end(), v.begin(), v.end());
}
inline void put_fixed32(Bytes& out, uint32_t field, uint32_t v) {
  put_tag(out, field, kFixed32);
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<uint8_t>(v >> (8 * i)));
}
inline size_t len_field_size(uint32_t field, size_t len) {
  return varint_size(static_cast<uint64_t>(field) << 3) + varint_size(len) + len;
}

// A bounds-checked reader over one message. Every accessor throws cidrun::Error on malformed or
// truncated input, so a decoder built on it cannot read past the end or allocate from a claim.
class Reader {
 public:
  explicit Reader(ByteView data) : data_(data) {}
  bool done() const { return pos_ >= data_.size(); }
  size_t pos() const { return pos_; }
  // Reads the next tag; returns {field, wiretype}.
  std::pair<uint32_t, WireType> tag();
  uint64_t varint();
  ByteView bytes();
  uint32_t fixed32();
  uint64_t fixed64();
  void skip(WireType wt);

 private:
  ByteView data_;
  size_t pos_ = 0;
};

}  // namespace cidrun::pb
