// SHA-256 through OpenSSL (SHA-NI where the CPU has it): the hash behind every CID we make.
#pragma once

#include <array>
#include <cstdint>

#include "util/bytes.h"

namespace cidrun {

using Sha256Digest = std::array<uint8_t, 32>;

Sha256Digest sha256(ByteView data);

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
