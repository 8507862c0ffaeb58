// Rabin content-defined chunker, bit-exact with kubo: boxo chunker/rabin.go drives
// github.com/whyrusleeping/chunker (a fork of restic's chunker) with polynomial 0x3DF305DFB2A805.
// The fork's state machine, which fixes every boundary, is:
//  - a 16-byte window; the rolling digest is reset for every chunk to the state left by sliding a
//    single byte 1 into an all-zero window (digest 1, that 1 at window slot 0, next slot 1);
//  - the first MIN-16 bytes of a chunk are skipped without touching the digest, then each byte is
//    slid in; after the byte that makes the chunk `add` bytes long, with add >= MIN, the chunk is
//    cut if (digest & mask) == 0 or add >= MAX;
//  - mask = 2^floor(log2(AVG)) - 1 (Go: uint(math.Log2(float64(avg))));
//  - at end of input whatever is left (if anything) is the last chunk.
#include <algorithm>
#include <array>
#include <cstring>

#include "unixfs/chunk_buffer.h"
#include "unixfs/chunker.h"
#include "util/error.h"

namespace cidrun::unixfs {
namespace {

constexpr uint64_t kPolynomial = 0x3DF305DFB2A805;  // 17437180132763653, degree 53
constexpr size_t kWindow = 16;

int degree(uint64_t x) {
  return x == 0 ? -1 : 63 - __builtin_clzll(x);
}

// x mod p over GF(2)[X].
uint64_t pol_mod(uint64_t x, uint64_t p) {
  const int dp = degree(p);
  for (int d = degree(x); d >= dp; d = degree(x)) x ^= p << (d - dp);
  return x;
}

struct Tables {
  // out[b]: the digest contribution of byte b as it leaves the window (b followed by 15 zero
  // bytes), so that xoring it removes the oldest byte.
  std::array<uint64_t, 256> out;
  // mod[i]: reduces the 8 bits that appending a byte pushes above degree 53: their remainder mod
  // the polynomial, together with the bits themselves so one xor both cancels and reduces.
  std::array<uint64_t, 256> mod;
  int shift;  // degree - 8: where those 8 bits sit before the append
  // Two-byte stepping, to halve the serial dependency through the table lookups (the digest is
  // linear, and each step's result is the canonical residue, so it equals the byte-wise value):
  //   digest(j+2) = digest(j)*x^16 ^ out[d(j-16)]*x^16 ^ out[d(j-15)]*x^8 ^ d(j)*x^8 ^ d(j+1)
  // all mod P. lift_hi/lift_lo reduce the 16 bits that x^16 pushes above degree 53 (the top and
  // the next 8 of them); out16/out8 are out[] times x^16 and x^8.
  std::array<uint64_t, 256> lift_hi, lift_lo, out16, out8;
};

const Tables& tables() {
  static const Tables t = [] {
    Tables r{};
    const int k = degree(kPolynomial);
    r.shift = k - 8;
    for (uint64_t b = 0; b < 256; ++b) {
      uint64_t h = pol_mod(b, kPolynomial);
      for (size_t i = 0; i < kWindow - 1; ++i) h = pol_mod(h << 8, kPolynomial);
      r.out[b] = h;
      r.mod[b] = pol_mod(b << k, kPolynomial) | (b << k);
      r.lift_lo[b] = pol_mod(b << k, kPolynomial);
      r.lift_hi[b] = pol_mod(r.lift_lo[b] << 8, kPolynomial);
      r.out8[b] = pol_mod(h << 8, kPolynomial);
      r.out16[b] = pol_mod(r.out8[b] << 8, kPolynomial);
    }
    return r;
  }();
  return t;
}

class RabinChunker : public Chunker {
 public:
  RabinChunker(ByteSource& src, size_t min, size_t avg, size_t max)
      : buf_(src, max),
        t_(tables()),
        min_(min),
        max_(max),
        mask_((uint64_t{1} << degree(avg)) - 1) {}

  bool next(Bytes& out) override {
    size_t n = buf_.fill();
    const uint8_t* d = buf_.data();
    size_t len = cut(d, n);
    out.assign(d, d + len);
    buf_.consume(len);
    return len > 0;
  }

 private:
  // Length of the chunk starting at d, given n available bytes (n < max_ only at end of input).
  size_t cut(const uint8_t* d, size_t n) const {
    if (n < min_) return n;  // no cut is tested before MIN bytes: the rest is the last chunk
    const uint64_t* out_t = t_.out.data();
    const uint64_t* mod_t = t_.mod.data();
    const int shift = t_.shift;
    auto append = [&](uint64_t digest, uint8_t b) {
      uint64_t top = digest >> shift;
      return ((digest << 8) | b) ^ mod_t[top];
    };
    // The reset state: digest 1, window [1, 0 x15] with the next write at slot 1. The first 15
    // bytes slide out zeros (out[0] == 0), the 16th slides out that 1, and from then on the byte
    // leaving is simply the one 16 positions back in the data.
    uint64_t digest = 1;
    size_t j = min_ - kWindow;
    for (size_t e = j + kWindow - 1; j < e; ++j) digest = append(digest, d[j]);
    digest = append(digest ^ out_t[1], d[j]);
    ++j;  // j == min_: the first length at which a cut is tested
    if ((digest & mask_) == 0 || j >= max_) return j;
    const size_t lim = std::min(n, max_);
    const uint64_t* lift_hi = t_.lift_hi.data();
    const uint64_t* lift_lo = t_.lift_lo.data();
    const uint64_t* out16 = t_.out16.data();
    const uint64_t* out8 = t_.out8.data();
    const int low_bits = shift - 8;  // digest bits that x^16 keeps below the degree (53 - 16)
    for (; j + 2 <= lim; j += 2) {
      const uint8_t o0 = d[j - kWindow], o1 = d[j - kWindow + 1], b0 = d[j], b1 = d[j + 1];
      // The intermediate digest is needed only for its cut test, off the critical path.
      const uint64_t mid = append(digest ^ out_t[o0], b0);
      digest = ((digest & ((uint64_t{1} << low_bits) - 1)) << 16) ^ lift_hi[digest >> shift] ^
               lift_lo[(digest >> low_bits) & 0xff] ^ out16[o0] ^ out8[o1] ^
               ((uint64_t{b0} << 8) | b1);
      if ((mid & mask_) == 0) return j + 1;
      if ((digest & mask_) == 0) return j + 2;
    }
    for (; j < lim; ++j) {
      digest = append(digest ^ out_t[d[j - kWindow]], d[j]);
      if ((digest & mask_) == 0) return j + 1;
    }
    // Either the chunk reached MAX (a forced cut) or the input ended.
    return lim;
  }

  ScanBuffer buf_;
  const Tables& t_;
  size_t min_, max_;
  uint64_t mask_;
};

}  // namespace

std::unique_ptr<Chunker> make_rabin_chunker(ByteSource& src, size_t min, size_t avg, size_t max) {
  // Below the window size the Go code's skip count (MIN-16, unsigned) wraps and it never cuts;
  // kubo rejects such parameters before chunking, and so do we.
  if (min < kWindow || avg < min || max < avg || max > kMaxChunkSize) {
    throw Error("rabin chunker: bad sizes min=" + std::to_string(min) +
                " avg=" + std::to_string(avg) + " max=" + std::to_string(max));
  }
  return std::make_unique<RabinChunker>(src, min, avg, max);
}

}  // namespace cidrun::unixfs
