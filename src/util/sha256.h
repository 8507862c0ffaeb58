// SHA-256 through OpenSSL (SHA-NI where the CPU has it): the hash behind every CID we make.
#pragma once

#include <array>
#include <cstdint>

#include "util/bytes.h"

namespace cidrun {

using Sha256Digest = std::array<uint8_t, 32>;

Sha256Digest sha256(ByteView data);

// sha256() of two buffers at once: on a CPU with the SHA extensions their rounds interleave
// (util/sha256_ni.h), about 1.7x the throughput of hashing them one after the other.
void sha256_pair(ByteView a, ByteView b, Sha256Digest& digest_a, Sha256Digest& digest_b);

// sha256() for the many threads that verify blocks at once (a pull's workers): a large buffer
// waits briefly for another thread's, and one of the two threads hashes both with sha256_pair
// while the other sleeps. Same result as sha256(); CPU time per byte drops by about 40% when
// two arrive together, and a lone buffer waits at most half its hashing time (350 µs for 1 MiB)
// before being hashed alone.
Sha256Digest sha256_shared(ByteView data);

// How many pairs sha256_shared() has hashed together in this process (a statistic, for tests).
uint64_t sha256_shared_pairs();

// Incremental hashing for data that arrives in pieces.
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  void update(ByteView data);
  Sha256Digest finish();

 private:
  void* ctx_;  // EVP_MD_CTX, kept opaque so OpenSSL headers stay out of every includer
};

}  // namespace cidrun
