// SHA-256's compression function on the x86 SHA extensions (SHA-NI), for one message or two at
// once. On AMD Zen 3 each SHA256RNDS2 waits about 4 cycles for the one before it, so a single
// message runs at ~1.55 GB/s (as OpenSSL's SHA-NI code does) while two interleaved messages keep
// the unit busy: ~2.6 GB/s in all. Only sha256.cpp calls this, and only after available().
//
// This file's .cpp is compiled with -msha -msse4.1 -mssse3 and includes no C++ library headers,
// so no inline function built for those instructions can stand in for a plain one elsewhere.
#pragma once

#include <cstddef>
#include <cstdint>

namespace cidrun::sha256_ni {

// The state is the eight words h0..h7 of FIPS 180-4; `chunks` 64-byte chunks are processed.
void compress1(uint32_t state[8], const uint8_t* data, size_t chunks);
void compress2(uint32_t state_a[8], const uint8_t* data_a, uint32_t state_b[8],
               const uint8_t* data_b, size_t chunks);

}  // namespace cidrun::sha256_ni
