// MurmurHash3 x64-128 (Austin Appleby's public-domain algorithm), as UnixFS HAMTs use it:
// hashType 0x22 "murmur3-x64-64" takes the first 64-bit half, emitted big-endian.
#pragma once

#include <array>
#include <cstdint>

#include "util/bytes.h"

namespace cidrun::unixfs {

std::array<uint64_t, 2> murmur3_x64_128(ByteView data, uint64_t seed = 0);

// The 8 hash bytes a HAMT consumes, MSB first: big-endian h1 of murmur3_x64_128(name, seed 0).
std::array<uint8_t, 8> hamt_hash(ByteView name);

}  // namespace cidrun::unixfs
