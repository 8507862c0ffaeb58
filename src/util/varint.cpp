#include "util/varint.h"

namespace cidrun {

void put_varint(Bytes& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<uint8_t>(v | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<uint8_t>(v));
}

size_t varint_size(uint64_t v) {
  size_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    ++n;
  }
  return n;
}

std::optional<uint64_t> get_varint(ByteView data, size_t& pos, bool minimal) {
  uint64_t v = 0;
  for (int shift = 0, i = 0; i < 10; ++i, shift += 7) {
    if (pos >= data.size()) return std::nullopt;
    uint8_t b = data[pos++];
    if (i == 9 && b > 1) return std::nullopt;  // would overflow 64 bits
    v |= static_cast<uint64_t>(b & 0x7f) << shift;
    if (!(b & 0x80)) {
      if (minimal && b == 0 && i > 0) return std::nullopt;  // trailing zero group
      return v;
    }
  }
  return std::nullopt;
}

}  // namespace cidrun
