#include "p2p/noise.h"

#include <algorithm>
#include <cstring>

#include "ipld/protobuf.h"
#include "util/error.h"
#include "util/sha256.h"

namespace cidrun::p2p {
namespace {

constexpr std::string_view kProtocolName = "Noise_XX_25519_ChaChaPoly_SHA256";
constexpr std::string_view kSignaturePrefix = "noise-libp2p-static-key:";

Key32 to_key(const Sha256Digest& d) {
  Key32 k{};
  std::copy(d.begin(), d.end(), k.begin());
  return k;
}

// Noise's HKDF with two outputs (section 4.3).
std::pair<Key32, Key32> hkdf2(const Key32& ck, ByteView input) {
  Key32 temp = hmac_sha256(ck, input);
  uint8_t one = 1;
  Key32 out1 = hmac_sha256(temp, ByteView(&one, 1));
  Bytes in2(out1.begin(), out1.end());
  in2.push_back(2);
  Key32 out2 = hmac_sha256(temp, in2);
  return {out1, out2};
}

Key32 key_at(ByteView b) {
  Key32 k{};
  std::copy(b.begin(), b.begin() + 32, k.begin());
  return k;
}

}  // namespace

void NoiseCipher::encrypt(ByteView ad, ByteView plaintext, Bytes& out) {
  if (!has_key_) {
    out.insert(out.end(), plaintext.begin(), plaintext.end());
    return;
  }
  ctx_.seal(key_, nonce_++, ad, plaintext, out);
}

Bytes NoiseCipher::decrypt(ByteView ad, ByteView ciphertext) {
  if (!has_key_) return Bytes(ciphertext.begin(), ciphertext.end());
  if (ciphertext.size() < kNoiseTag) throw Error("Noise: message shorter than its tag");
  Bytes out(ciphertext.size() - kNoiseTag);
  if (!ctx_.open(key_, nonce_, ad, ciphertext, out.data()))
    throw Error("Noise: a message does not decrypt (wrong key or altered bytes)");
  ++nonce_;
  return out;
}

void NoiseCipher::decrypt_into(ByteView in, uint8_t* out) {
  if (in.size() < kNoiseTag) throw Error("Noise: frame shorter than its tag");
  if (!ctx_.open(key_, nonce_, {}, in, out))
    throw Error("Noise: a frame does not decrypt (wrong key or altered bytes)");
  ++nonce_;
}

NoiseXX::NoiseXX(Role role, const X25519Key& static_key, ByteView prologue,
                 std::optional<X25519Key> ephemeral)
    : role_(role), s_(static_key), e_(ephemeral) {
  static_assert(kProtocolName.size() == 32, "the name is the initial hash as it is");
  std::memcpy(h_.data(), kProtocolName.data(), 32);
  ck_ = h_;
  mix_hash(prologue);
}

void NoiseXX::mix_hash(ByteView data) {
  Sha256 ctx;
  ctx.update(h_);
  ctx.update(data);
  h_ = to_key(ctx.finish());
}

void NoiseXX::mix_key(const Key32& input) {
  auto [ck, k] = hkdf2(ck_, input);
  ck_ = ck;
  cipher_.emplace(k);
}

void NoiseXX::encrypt_and_hash(ByteView plaintext, Bytes& out) {
  size_t at = out.size();
  if (cipher_) {
    cipher_->encrypt(h_, plaintext, out);
  } else {
    out.insert(out.end(), plaintext.begin(), plaintext.end());
  }
  mix_hash(ByteView(out).subspan(at));
}

Bytes NoiseXX::decrypt_and_hash(ByteView ciphertext) {
  Bytes plain =
      cipher_ ? cipher_->decrypt(h_, ciphertext) : Bytes(ciphertext.begin(), ciphertext.end());
  mix_hash(ciphertext);
  return plain;
}

Bytes NoiseXX::write_message(ByteView payload) {
  bool mine = (role_ == Role::kInitiator) == (step_ % 2 == 0);
  if (!mine || step_ >= 3) throw Error("Noise: not our turn to write");
  Bytes out;
  if (step_ == 0) {  // -> e
    if (!e_) e_ = X25519Key::generate();
    out.insert(out.end(), e_->public_key.begin(), e_->public_key.end());
    mix_hash(e_->public_key);
  } else if (step_ == 1) {  // <- e, ee, s, es
    if (!e_) e_ = X25519Key::generate();
    out.insert(out.end(), e_->public_key.begin(), e_->public_key.end());
    mix_hash(e_->public_key);
    mix_key(e_->dh(re_));
    encrypt_and_hash(s_.public_key, out);
    mix_key(s_.dh(re_));
  } else {  // -> s, se
    encrypt_and_hash(s_.public_key, out);
    mix_key(s_.dh(re_));
  }
  encrypt_and_hash(payload, out);
  if (out.size() > kNoiseMaxMessage) throw Error("Noise: handshake message too large");
  ++step_;
  return out;
}

Bytes NoiseXX::read_message(ByteView m) {
  bool theirs = (role_ == Role::kInitiator) == (step_ % 2 == 1);
  if (!theirs || step_ >= 3) throw Error("Noise: not the peer's turn to write");
  size_t pos = 0;
  auto take = [&](size_t n) {
    if (m.size() - pos < n) throw Error("Noise: handshake message too short");
    ByteView v = m.subspan(pos, n);
    pos += n;
    return v;
  };
  if (step_ == 0) {  // -> e
    re_ = key_at(take(32));
    mix_hash(re_);
  } else if (step_ == 1) {  // <- e, ee, s, es
    re_ = key_at(take(32));
    mix_hash(re_);
    mix_key(e_->dh(re_));
    rs_ = key_at(decrypt_and_hash(take(32 + kNoiseTag)));
    mix_key(e_->dh(rs_));
  } else {  // -> s, se
    rs_ = key_at(decrypt_and_hash(take(32 + kNoiseTag)));
    mix_key(e_->dh(rs_));
  }
  Bytes payload = decrypt_and_hash(m.subspan(pos));
  ++step_;
  return payload;
}

std::pair<Key32, Key32> NoiseXX::split() const {
  if (!complete()) throw Error("Noise: handshake not complete");
  auto [k1, k2] = hkdf2(ck_, {});
  // k1 carries initiator -> responder.
  return role_ == Role::kInitiator ? std::pair{k1, k2} : std::pair{k2, k1};
}

Bytes make_noise_payload(const Ed25519Key& identity, const Key32& noise_static_public) {
  Bytes msg = to_bytes(kSignaturePrefix);
  msg.insert(msg.end(), noise_static_public.begin(), noise_static_public.end());
  Bytes out;
  pb::put_bytes(out, 1, encode_public_key(identity.public_key));
  pb::put_bytes(out, 2, identity.sign(msg));
  return out;
}

PeerId verify_noise_payload(ByteView payload, const Key32& remote_static_public) {
  pb::Reader r(payload);
  ByteView key, sig;
  while (!r.done()) {
    auto [field, wt] = r.tag();
    if (field == 1 && wt == pb::kLen) {
      key = r.bytes();
    } else if (field == 2 && wt == pb::kLen) {
      sig = r.bytes();
    } else {
      r.skip(wt);  // extensions (4) and anything newer
    }
  }
  if (key.empty()) throw Error("Noise: the peer sent no identity key");
  Key32 identity = decode_public_key(key);
  Bytes msg = to_bytes(kSignaturePrefix);
  msg.insert(msg.end(), remote_static_public.begin(), remote_static_public.end());
  if (!ed25519_verify(identity, msg, sig))
    throw Error("Noise: the peer's signature over its static key does not verify");
  return PeerId::from_public_key(identity);
}

}  // namespace cidrun::p2p
