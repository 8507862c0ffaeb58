// The cryptography libp2p needs, all from OpenSSL 3: Ed25519 identities (sign/verify), X25519
// key agreement, ChaCha20-Poly1305 (IETF, 96-bit nonce) and HMAC-SHA256 / Noise's HKDF.
// Nothing here knows a wire format; noise.h and peer_id.h build on it.
#pragma once

#include <array>
#include <cstdint>
#include <span>

#include "util/bytes.h"

namespace cidrun::p2p {

using Key32 = std::array<uint8_t, 32>;

// 32 bytes from the kernel's CSPRNG (getrandom): key material, never a test's seed.
Key32 random_key();

struct Ed25519Key {
  Key32 seed{};  // the private key (RFC 8032 seed)
  Key32 public_key{};

  static Ed25519Key generate();
  static Ed25519Key from_seed(const Key32& seed);
  Bytes sign(ByteView message) const;  // 64 bytes
};

// RFC 8032 verification; false for a malformed key or a wrong signature.
bool ed25519_verify(const Key32& public_key, ByteView message, ByteView signature);

struct X25519Key {
  Key32 private_key{};
  Key32 public_key{};

  static X25519Key generate();
  static X25519Key from_private(const Key32& private_key);
  // Throws Error for a peer key that yields the all-zero secret (a small-order point).
  Key32 dh(const Key32& peer_public) const;
};

// ChaCha20-Poly1305 as Noise uses it: nonce = 4 zero bytes then the 64-bit counter little-endian.
// seal appends ciphertext || tag (16 bytes) to out; open writes the plaintext to out and returns
// false when the tag does not verify (out's contents are then unspecified).
void chacha_seal(const Key32& key, uint64_t nonce, ByteView ad, ByteView plaintext, Bytes& out);
bool chacha_open(const Key32& key, uint64_t nonce, ByteView ad, ByteView ciphertext, Bytes& out);

// A reusable cipher context for one direction of a session: the per-frame cost is one
// re-initialisation with the new nonce instead of a context allocation.
class ChaChaContext {
 public:
  ChaChaContext();
  ~ChaChaContext();
  ChaChaContext(const ChaChaContext&) = delete;
  ChaChaContext& operator=(const ChaChaContext&) = delete;
  ChaChaContext(ChaChaContext&& o) noexcept;
  ChaChaContext& operator=(ChaChaContext&& o) noexcept;
  void seal(const Key32& key, uint64_t nonce, ByteView ad, ByteView plaintext, Bytes& out);
  // seal() of the pieces' concatenation, without gathering them first, written to out (their
  // total size plus the 16-byte tag).
  void seal_parts(const Key32& key, uint64_t nonce, std::span<const ByteView> parts, uint8_t* out);
  // Decrypts ciphertext||tag into out (resized to the plaintext); false on a bad tag.
  bool open(const Key32& key, uint64_t nonce, ByteView ad, ByteView ciphertext, uint8_t* out);

 private:
  void* ctx_;  // EVP_CIPHER_CTX
};

Key32 hmac_sha256(ByteView key, ByteView data);

}  // namespace cidrun::p2p
