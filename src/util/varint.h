// Unsigned LEB128 varints as used by multiformats and protobuf. Decoding is strict: at most 10
// bytes, no overflow past 64 bits, and (for multiformats) minimal encoding only.
#pragma once

#include <cstdint>
#include <optional>

#include "util/bytes.h"

namespace cidrun {

void put_varint(Bytes& out, uint64_t v);
size_t varint_size(uint64_t v);

// Reads a varint from data starting at pos and advances pos. Returns nullopt when the input is
// truncated, longer than 10 bytes, overflows, or (with minimal=true) is not minimally encoded.
std::optional<uint64_t> get_varint(ByteView data, size_t& pos, bool minimal = true);

}  // namespace cidrun
