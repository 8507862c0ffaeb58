#include "util/sha256_ni.h"

#if defined(__x86_64__)

#include <immintrin.h>

namespace cidrun::sha256_ni {
namespace {

// FIPS 180-4, 4.2.2: the first 32 bits of the fractional parts of the cube roots of the first
// 64 primes.
alignas(16) constexpr uint32_t kRound[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

// SHA256RNDS2 works on the state as two registers, "ABEF" and "CDGH" (highest lane first).
struct Lanes {
  __m128i abef, cdgh;
};

inline Lanes load(const uint32_t h[8]) {
  __m128i dcba = _mm_loadu_si128(reinterpret_cast<const __m128i*>(h));
  __m128i hgfe = _mm_loadu_si128(reinterpret_cast<const __m128i*>(h + 4));
  __m128i cdab = _mm_shuffle_epi32(dcba, 0xB1);
  __m128i efgh = _mm_shuffle_epi32(hgfe, 0x1B);
  return {_mm_alignr_epi8(cdab, efgh, 8), _mm_blend_epi16(efgh, cdab, 0xF0)};
}

inline void store(const Lanes& s, uint32_t h[8]) {
  __m128i feba = _mm_shuffle_epi32(s.abef, 0x1B);
  __m128i dchg = _mm_shuffle_epi32(s.cdgh, 0xB1);
  _mm_storeu_si128(reinterpret_cast<__m128i*>(h), _mm_blend_epi16(feba, dchg, 0xF0));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(h + 4), _mm_alignr_epi8(dchg, feba, 8));
}

// Message words are big-endian.
inline __m128i byte_swap_mask() {
  return _mm_set_epi64x(0x0c0d0e0f08090a0bLL, 0x0405060700010203LL);
}

// Rounds 4i..4i+3 of one chunk. w[i % 4] holds message words 4i..4i+3; the schedule for later
// words is computed alongside: words 4j.. need SHA256MSG1 of the groups j-4 and j-3 (done at
// group j-3) and SHA256MSG2 with groups j-2 and j-1 (done at group j-1).
template <int I>
inline void rounds(Lanes& s, __m128i (&w)[4], const uint8_t* chunk, __m128i swap) {
  if constexpr (I < 4) {
    w[I] =
        _mm_shuffle_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(chunk + 16 * I)), swap);
  }
  __m128i k = _mm_load_si128(reinterpret_cast<const __m128i*>(kRound + 4 * I));
  __m128i msg = _mm_add_epi32(w[I % 4], k);
  s.cdgh = _mm_sha256rnds2_epu32(s.cdgh, s.abef, msg);
  if constexpr (I >= 3 && I <= 14) {
    __m128i& next = w[(I + 1) % 4];
    next = _mm_add_epi32(next, _mm_alignr_epi8(w[I % 4], w[(I + 3) % 4], 4));
    next = _mm_sha256msg2_epu32(next, w[I % 4]);
  }
  s.abef = _mm_sha256rnds2_epu32(s.abef, s.cdgh, _mm_shuffle_epi32(msg, 0x0E));
  if constexpr (I >= 1 && I <= 12) {
    w[(I + 3) % 4] = _mm_sha256msg1_epu32(w[(I + 3) % 4], w[I % 4]);
  }
}

// All 16 groups of one chunk, unrolled.
template <int I = 0>
inline void all_rounds(Lanes& s, __m128i (&w)[4], const uint8_t* d, __m128i swap) {
  rounds<I>(s, w, d, swap);
  if constexpr (I < 15) all_rounds<I + 1>(s, w, d, swap);
}

// Two messages, their groups interleaved so that each one's rounds fill the other's waits.
template <int I = 0>
inline void all_rounds2(Lanes& a, __m128i (&wa)[4], const uint8_t* da, Lanes& b, __m128i (&wb)[4],
                        const uint8_t* db, __m128i swap) {
  rounds<I>(a, wa, da, swap);
  rounds<I>(b, wb, db, swap);
  if constexpr (I < 15) all_rounds2<I + 1>(a, wa, da, b, wb, db, swap);
}

inline void add(Lanes& s, const Lanes& saved) {
  s.abef = _mm_add_epi32(s.abef, saved.abef);
  s.cdgh = _mm_add_epi32(s.cdgh, saved.cdgh);
}

}  // namespace

void compress1(uint32_t state[8], const uint8_t* data, size_t chunks) {
  Lanes s = load(state);
  const __m128i swap = byte_swap_mask();
  for (size_t c = 0; c < chunks; ++c) {
    Lanes saved = s;
    __m128i w[4];
    all_rounds(s, w, data + 64 * c, swap);
    add(s, saved);
  }
  store(s, state);
}

void compress2(uint32_t state_a[8], const uint8_t* data_a, uint32_t state_b[8],
               const uint8_t* data_b, size_t chunks) {
  Lanes a = load(state_a);
  Lanes b = load(state_b);
  const __m128i swap = byte_swap_mask();
  for (size_t c = 0; c < chunks; ++c) {
    Lanes saved_a = a;
    Lanes saved_b = b;
    __m128i wa[4];
    __m128i wb[4];
    all_rounds2(a, wa, data_a + 64 * c, b, wb, data_b + 64 * c, swap);
    add(a, saved_a);
    add(b, saved_b);
  }
  store(a, state_a);
  store(b, state_b);
}

}  // namespace cidrun::sha256_ni

#endif
