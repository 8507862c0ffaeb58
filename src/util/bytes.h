// Byte strings and views used across all layers.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace cidrun {

using Bytes = std::vector<uint8_t>;
using ByteView = std::span<const uint8_t>;

inline ByteView as_bytes(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}
inline std::string_view as_string(ByteView b) {
  return {reinterpret_cast<const char*>(b.data()), b.size()};
}
inline Bytes to_bytes(std::string_view s) {
  return Bytes(s.begin(), s.end());
}

// Hash for byte strings as unordered-container keys (CIDs, multihashes: already uniform).
struct BytesHash {
  size_t operator()(const Bytes& b) const noexcept {
    return std::hash<std::string_view>()(as_string(b));
  }
};

std::string to_hex(ByteView b);
Bytes from_hex(std::string_view hex);  // throws Error on bad input

}  // namespace cidrun
