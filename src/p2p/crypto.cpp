#include "p2p/crypto.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <sys/random.h>

#include <algorithm>
#include <cerrno>
#include <memory>
#include <utility>

#include "util/error.h"

namespace cidrun::p2p {
namespace {

struct PkeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
using Pkey = std::unique_ptr<EVP_PKEY, PkeyFree>;
struct MdCtxFree {
  void operator()(EVP_MD_CTX* p) const { EVP_MD_CTX_free(p); }
};
struct PkeyCtxFree {
  void operator()(EVP_PKEY_CTX* p) const { EVP_PKEY_CTX_free(p); }
};

[[noreturn]] void fail(const char* what) {
  throw Error(std::string("OpenSSL: ") + what + " failed");
}

Key32 raw_public(EVP_PKEY* key) {
  Key32 out{};
  size_t len = out.size();
  if (EVP_PKEY_get_raw_public_key(key, out.data(), &len) != 1 || len != out.size())
    fail("EVP_PKEY_get_raw_public_key");
  return out;
}

Pkey make_private_key(int type, const Key32& raw) {
  Pkey k(EVP_PKEY_new_raw_private_key(type, nullptr, raw.data(), raw.size()));
  if (!k) fail("EVP_PKEY_new_raw_private_key");
  return k;
}

constexpr size_t kTag = 16;

void make_nonce(uint64_t n, uint8_t out[12]) {
  std::fill(out, out + 4, 0);
  for (int i = 0; i < 8; ++i) out[4 + i] = static_cast<uint8_t>(n >> (8 * i));
}

int as_int(size_t n) {
  if (n > 0x7fffffff) throw Error("ChaCha20-Poly1305: message too large");
  return static_cast<int>(n);
}

}  // namespace

Key32 random_key() {
  Key32 k{};
  size_t got = 0;
  while (got < k.size()) {
    ssize_t n = ::getrandom(k.data() + got, k.size() - got, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw_errno("getrandom");
    }
    got += static_cast<size_t>(n);
  }
  return k;
}

Ed25519Key Ed25519Key::generate() {
  return from_seed(random_key());
}

Ed25519Key Ed25519Key::from_seed(const Key32& seed) {
  Pkey k = make_private_key(EVP_PKEY_ED25519, seed);
  Ed25519Key out;
  out.seed = seed;
  out.public_key = raw_public(k.get());
  return out;
}

Bytes Ed25519Key::sign(ByteView message) const {
  Pkey k = make_private_key(EVP_PKEY_ED25519, seed);
  std::unique_ptr<EVP_MD_CTX, MdCtxFree> ctx(EVP_MD_CTX_new());
  if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, nullptr, nullptr, k.get()) != 1)
    fail("EVP_DigestSignInit");
  Bytes sig(64);
  size_t len = sig.size();
  if (EVP_DigestSign(ctx.get(), sig.data(), &len, message.data(), message.size()) != 1 || len != 64)
    fail("EVP_DigestSign");
  return sig;
}

bool ed25519_verify(const Key32& public_key, ByteView message, ByteView signature) {
  if (signature.size() != 64) return false;
  Pkey k(
      EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr, public_key.data(), public_key.size()));
  if (!k) return false;
  std::unique_ptr<EVP_MD_CTX, MdCtxFree> ctx(EVP_MD_CTX_new());
  if (!ctx || EVP_DigestVerifyInit(ctx.get(), nullptr, nullptr, nullptr, k.get()) != 1)
    return false;
  return EVP_DigestVerify(ctx.get(), signature.data(), signature.size(), message.data(),
                          message.size()) == 1;
}

X25519Key X25519Key::generate() {
  return from_private(random_key());
}

X25519Key X25519Key::from_private(const Key32& private_key_bytes) {
  Pkey k = make_private_key(EVP_PKEY_X25519, private_key_bytes);
  X25519Key out;
  out.private_key = private_key_bytes;
  out.public_key = raw_public(k.get());
  return out;
}

Key32 X25519Key::dh(const Key32& peer_public) const {
  Pkey mine = make_private_key(EVP_PKEY_X25519, private_key);
  Pkey theirs(EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, nullptr, peer_public.data(),
                                          peer_public.size()));
  if (!theirs) fail("EVP_PKEY_new_raw_public_key");
  std::unique_ptr<EVP_PKEY_CTX, PkeyCtxFree> ctx(EVP_PKEY_CTX_new(mine.get(), nullptr));
  if (!ctx || EVP_PKEY_derive_init(ctx.get()) != 1 ||
      EVP_PKEY_derive_set_peer(ctx.get(), theirs.get()) != 1)
    fail("EVP_PKEY_derive_init");
  Key32 out{};
  size_t len = out.size();
  // OpenSSL refuses an all-zero shared secret (a small-order peer key): that is a hostile peer.
  if (EVP_PKEY_derive(ctx.get(), out.data(), &len) != 1 || len != out.size())
    throw Error("X25519: the peer's key is not usable (small-order point)");
  return out;
}

ChaChaContext::ChaChaContext() : ctx_(EVP_CIPHER_CTX_new()) {
  if (!ctx_) fail("EVP_CIPHER_CTX_new");
}

ChaChaContext::~ChaChaContext() {
  if (ctx_) EVP_CIPHER_CTX_free(static_cast<EVP_CIPHER_CTX*>(ctx_));
}

ChaChaContext::ChaChaContext(ChaChaContext&& o) noexcept : ctx_(std::exchange(o.ctx_, nullptr)) {}

ChaChaContext& ChaChaContext::operator=(ChaChaContext&& o) noexcept {
  std::swap(ctx_, o.ctx_);
  return *this;
}

void ChaChaContext::seal(const Key32& key, uint64_t nonce, ByteView ad, ByteView plaintext,
                         Bytes& out) {
  auto* ctx = static_cast<EVP_CIPHER_CTX*>(ctx_);
  uint8_t iv[12];
  make_nonce(nonce, iv);
  if (EVP_EncryptInit_ex(ctx, EVP_chacha20_poly1305(), nullptr, key.data(), iv) != 1)
    fail("EVP_EncryptInit_ex");
  int len = 0;
  if (!ad.empty() && EVP_EncryptUpdate(ctx, nullptr, &len, ad.data(), as_int(ad.size())) != 1)
    fail("EVP_EncryptUpdate(ad)");
  size_t at = out.size();
  out.resize(at + plaintext.size() + kTag);
  if (!plaintext.empty() && EVP_EncryptUpdate(ctx, out.data() + at, &len, plaintext.data(),
                                              as_int(plaintext.size())) != 1)
    fail("EVP_EncryptUpdate");
  if (EVP_EncryptFinal_ex(ctx, out.data() + at + plaintext.size(), &len) != 1)
    fail("EVP_EncryptFinal_ex");
  if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, kTag, out.data() + at + plaintext.size()) !=
      1)
    fail("EVP_CTRL_AEAD_GET_TAG");
}

void ChaChaContext::seal_parts(const Key32& key, uint64_t nonce, std::span<const ByteView> parts,
                               uint8_t* out) {
  auto* ctx = static_cast<EVP_CIPHER_CTX*>(ctx_);
  uint8_t iv[12];
  make_nonce(nonce, iv);
  if (EVP_EncryptInit_ex(ctx, EVP_chacha20_poly1305(), nullptr, key.data(), iv) != 1)
    fail("EVP_EncryptInit_ex");
  size_t total = 0;
  for (ByteView p : parts) total += p.size();
  uint8_t* dst = out;
  int len = 0;
  for (ByteView p : parts) {
    if (p.empty()) continue;
    if (EVP_EncryptUpdate(ctx, dst, &len, p.data(), as_int(p.size())) != 1)
      fail("EVP_EncryptUpdate");
    dst += len;
  }
  if (EVP_EncryptFinal_ex(ctx, dst, &len) != 1) fail("EVP_EncryptFinal_ex");
  if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, kTag, out + total) != 1)
    fail("EVP_CTRL_AEAD_GET_TAG");
}

bool ChaChaContext::open(const Key32& key, uint64_t nonce, ByteView ad, ByteView ciphertext,
                         uint8_t* out) {
  if (ciphertext.size() < kTag) return false;
  auto* ctx = static_cast<EVP_CIPHER_CTX*>(ctx_);
  uint8_t iv[12];
  make_nonce(nonce, iv);
  size_t n = ciphertext.size() - kTag;
  if (EVP_DecryptInit_ex(ctx, EVP_chacha20_poly1305(), nullptr, key.data(), iv) != 1)
    fail("EVP_DecryptInit_ex");
  int len = 0;
  if (!ad.empty() && EVP_DecryptUpdate(ctx, nullptr, &len, ad.data(), as_int(ad.size())) != 1)
    return false;
  if (n > 0 && EVP_DecryptUpdate(ctx, out, &len, ciphertext.data(), as_int(n)) != 1) return false;
  // OpenSSL's ctrl takes a non-const pointer for the tag it only reads.
  Bytes tag(ciphertext.begin() + static_cast<std::ptrdiff_t>(n), ciphertext.end());
  if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, kTag, tag.data()) != 1) return false;
  return EVP_DecryptFinal_ex(ctx, out + n, &len) == 1;
}

void chacha_seal(const Key32& key, uint64_t nonce, ByteView ad, ByteView plaintext, Bytes& out) {
  ChaChaContext().seal(key, nonce, ad, plaintext, out);
}

bool chacha_open(const Key32& key, uint64_t nonce, ByteView ad, ByteView ciphertext, Bytes& out) {
  out.resize(ciphertext.size() >= kTag ? ciphertext.size() - kTag : 0);
  return ChaChaContext().open(key, nonce, ad, ciphertext, out.data());
}

Key32 hmac_sha256(ByteView key, ByteView data) {
  Key32 out{};
  unsigned len = 0;
  if (!HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), data.data(), data.size(),
            out.data(), &len) ||
      len != out.size())
    fail("HMAC");
  return out;
}

}  // namespace cidrun::p2p
