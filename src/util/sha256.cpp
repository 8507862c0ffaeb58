#include "util/sha256.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <unistd.h>

#if defined(__x86_64__)
#include <cpuid.h>
#endif

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <memory>
#include <mutex>

#include "util/error.h"
#include "util/sha256_ni.h"

namespace cidrun {
namespace {

// Fetching the algorithm once avoids OpenSSL 3's per-call provider lookup, which costs more than
// hashing a small block.
//
// This is usually OpenSSL's first use in the process, which loads its configuration and leaves
// an error-queue state (ERR_set_mark's) in the calling thread's thread-specific storage, freed
// when that thread ends. When the caller is a pool thread, which lives until the process exits,
// LeakSanitizer (clang 14 with glibc >= 2.34) does not count that storage as a root and reported
// the state as a leak; it is released here instead (OPENSSL_thread_stop frees the calling
// thread's OpenSSL state; a later call on this thread makes a fresh one if it needs one).
const EVP_MD* sha256_md() {
  static const EVP_MD* md = [] {
    const EVP_MD* m = EVP_MD_fetch(nullptr, "SHA256", nullptr);
    if (!m) throw Error("OpenSSL: SHA256 is not available");
    if (::gettid() != ::getpid()) OPENSSL_thread_stop();
    return m;
  }();
  return md;
}

struct CtxDeleter {
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};

bool have_sha_ni() {
#if defined(__x86_64__)
  static const bool have = [] {
    unsigned a = 0, b = 0, c = 0, d = 0;
    if (__get_cpuid(1, &a, &b, &c, &d) == 0) return false;
    bool ssse3 = (c & bit_SSSE3) != 0, sse41 = (c & bit_SSE4_1) != 0;
    if (__get_cpuid_count(7, 0, &a, &b, &c, &d) == 0) return false;
    return ssse3 && sse41 && (b & bit_SHA) != 0;
  }();
  return have;
#else
  return false;
#endif
}

// FIPS 180-4, 5.3.3.
constexpr uint32_t kInitial[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                  0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};

// Hashes what follows the first `done` 64-byte chunks of `data` (already in `h`), pads (FIPS
// 180-4, 5.1.1) and writes the digest.
void finish_one(uint32_t h[8], ByteView data, size_t done, Sha256Digest& out) {
  size_t full = data.size() / 64;
  sha256_ni::compress1(h, data.data() + 64 * done, full - done);
  uint8_t tail[128] = {};
  size_t rest = data.size() - 64 * full;
  if (rest > 0) std::memcpy(tail, data.data() + 64 * full, rest);
  tail[rest] = 0x80;
  size_t len = rest + 9 <= 64 ? 64 : 128;
  uint64_t bits = static_cast<uint64_t>(data.size()) * 8;
  for (int i = 0; i < 8; ++i) tail[len - 1 - i] = static_cast<uint8_t>(bits >> (8 * i));
  sha256_ni::compress1(h, tail, len / 64);
  for (int i = 0; i < 8; ++i) {
    out[4 * i] = static_cast<uint8_t>(h[i] >> 24);
    out[4 * i + 1] = static_cast<uint8_t>(h[i] >> 16);
    out[4 * i + 2] = static_cast<uint8_t>(h[i] >> 8);
    out[4 * i + 3] = static_cast<uint8_t>(h[i]);
  }
}

// Below this, pairing saves less than the handover costs.
constexpr size_t kPairMin = 128 * 1024;
// How long a lone buffer waits for a partner: about half the time hashing it alone takes
// (~1.5 GB/s), beyond which waiting cannot pay; 350 µs for 1 MiB.
std::chrono::microseconds pair_wait(size_t bytes) {
  return std::chrono::microseconds(bytes / 3000);
}

// One buffer offered for pairing, on its owner's stack while the owner waits.
struct Offer {
  ByteView data;
  Sha256Digest digest{};
  bool taken = false;
  bool done = false;
};

struct Pairing {
  std::mutex mu;
  std::condition_variable cv;
  Offer* waiting = nullptr;
  uint64_t pairs = 0;
};

Pairing& pairing() {
  static Pairing p;
  return p;
}

}  // namespace

void sha256_pair(ByteView a, ByteView b, Sha256Digest& digest_a, Sha256Digest& digest_b) {
  if (!have_sha_ni()) {
    digest_a = sha256(a);
    digest_b = sha256(b);
    return;
  }
  uint32_t ha[8];
  uint32_t hb[8];
  std::memcpy(ha, kInitial, sizeof ha);
  std::memcpy(hb, kInitial, sizeof hb);
  size_t both = std::min(a.size(), b.size()) / 64;
  sha256_ni::compress2(ha, a.data(), hb, b.data(), both);
  finish_one(ha, a, both, digest_a);
  finish_one(hb, b, both, digest_b);
}

Sha256Digest sha256_shared(ByteView data) {
  if (data.size() < kPairMin || !have_sha_ni()) return sha256(data);
  Pairing& p = pairing();
  std::unique_lock l(p.mu);
  if (p.waiting) {
    Offer* other = p.waiting;
    p.waiting = nullptr;
    other->taken = true;
    ++p.pairs;
    l.unlock();
    Sha256Digest mine{};
    sha256_pair(data, other->data, mine, other->digest);
    l.lock();
    other->done = true;
    p.cv.notify_all();
    return mine;
  }
  Offer me{data};
  p.waiting = &me;
  if (!p.cv.wait_for(l, pair_wait(data.size()), [&] { return me.taken; })) {
    p.waiting = nullptr;
    l.unlock();
    return sha256(data);
  }
  p.cv.wait(l, [&] { return me.done; });
  return me.digest;
}

uint64_t sha256_shared_pairs() {
  Pairing& p = pairing();
  std::lock_guard l(p.mu);
  return p.pairs;
}

Sha256Digest sha256(ByteView data) {
  thread_local std::unique_ptr<EVP_MD_CTX, CtxDeleter> ctx(EVP_MD_CTX_new());
  Sha256Digest out{};
  unsigned int len = 0;
  if (!ctx || EVP_DigestInit_ex2(ctx.get(), sha256_md(), nullptr) != 1 ||
      EVP_DigestUpdate(ctx.get(), data.data(), data.size()) != 1 ||
      EVP_DigestFinal_ex(ctx.get(), out.data(), &len) != 1) {
    throw Error("OpenSSL: SHA-256 failed");
  }
  return out;
}

Sha256::Sha256() : ctx_(EVP_MD_CTX_new()) {
  if (!ctx_ || EVP_DigestInit_ex2(static_cast<EVP_MD_CTX*>(ctx_), sha256_md(), nullptr) != 1) {
    throw Error("OpenSSL: SHA-256 init failed");
  }
}

Sha256::~Sha256() {
  EVP_MD_CTX_free(static_cast<EVP_MD_CTX*>(ctx_));
}

void Sha256::update(ByteView data) {
  if (EVP_DigestUpdate(static_cast<EVP_MD_CTX*>(ctx_), data.data(), data.size()) != 1) {
    throw Error("OpenSSL: SHA-256 update failed");
  }
}

Sha256Digest Sha256::finish() {
  Sha256Digest out{};
  unsigned int len = 0;
  if (EVP_DigestFinal_ex(static_cast<EVP_MD_CTX*>(ctx_), out.data(), &len) != 1) {
    throw Error("OpenSSL: SHA-256 final failed");
  }
  return out;
}

}  // namespace cidrun
