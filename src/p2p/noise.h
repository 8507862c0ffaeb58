// Noise XX (Noise_XX_25519_ChaChaPoly_SHA256, https://noiseprotocol.org/noise.html) with the
// libp2p handshake payload (https://github.com/libp2p/specs/blob/master/noise/README.md):
//   -> e
//   <- e, ee, s, es   + payload (identity key, signature over the static key)
//   -> s, se          + payload
// Every handshake and transport message travels as a 2-byte big-endian length and the message.
// The payload proves which libp2p identity owns the Noise static key: the handshake refuses a
// peer whose signature does not verify, or whose identity is not the one dialed.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "p2p/crypto.h"
#include "p2p/peer_id.h"
#include "util/bytes.h"

namespace cidrun::p2p {

inline constexpr size_t kNoiseMaxMessage = 65535;
inline constexpr size_t kNoiseTag = 16;
inline constexpr size_t kNoiseMaxPlaintext = kNoiseMaxMessage - kNoiseTag;

class NoiseCipher {
 public:
  NoiseCipher() = default;
  explicit NoiseCipher(const Key32& key) : key_(key), has_key_(true) {}
  bool has_key() const { return has_key_; }
  // Appends ciphertext||tag of plaintext (or the plaintext itself before a key exists).
  void encrypt(ByteView ad, ByteView plaintext, Bytes& out);
  // Transport use: writes the sealed concatenation of parts to out (their total size plus
  // kNoiseTag bytes; a key must exist).
  void encrypt_parts(std::span<const ByteView> parts, uint8_t* out) {
    ctx_.seal_parts(key_, nonce_++, parts, out);
  }
  // Throws Error when the tag does not verify.
  Bytes decrypt(ByteView ad, ByteView ciphertext);
  // Transport use without allocation: decrypts in into out (in.size() - 16 bytes).
  void decrypt_into(ByteView in, uint8_t* out);

 private:
  Key32 key_{};
  bool has_key_ = false;
  uint64_t nonce_ = 0;
  ChaChaContext ctx_;
};

class NoiseXX {
 public:
  enum class Role { kInitiator, kResponder };
  // ephemeral: fixed only for test vectors; by default a fresh key per handshake.
  NoiseXX(Role role, const X25519Key& static_key, ByteView prologue = {},
          std::optional<X25519Key> ephemeral = std::nullopt);

  // The next handshake message, carrying payload. Throws Error when it is not our turn.
  Bytes write_message(ByteView payload);
  // The peer's next handshake message; returns its payload. Throws Error for a malformed
  // message or one that does not decrypt.
  Bytes read_message(ByteView message);

  bool complete() const { return step_ == 3; }
  const Key32& remote_static() const { return rs_; }
  const Key32& handshake_hash() const { return h_; }
  // After the third message: (cipher for what we send, cipher for what we receive).
  std::pair<Key32, Key32> split() const;

 private:
  void mix_hash(ByteView data);
  void mix_key(const Key32& input);
  void encrypt_and_hash(ByteView plaintext, Bytes& out);
  Bytes decrypt_and_hash(ByteView ciphertext);

  Role role_;
  X25519Key s_;
  std::optional<X25519Key> e_;
  Key32 re_{}, rs_{};
  Key32 h_{}, ck_{};
  std::optional<NoiseCipher> cipher_;
  int step_ = 0;  // handshake messages done
};

// The libp2p payload: our identity key and its signature over "noise-libp2p-static-key:" and
// our Noise static public key. No extensions are sent (the muxer is chosen by multistream).
Bytes make_noise_payload(const Ed25519Key& identity, const Key32& noise_static_public);
// Checks the peer's payload against the static key it used; returns its peer ID. Throws Error
// (a lying handshake) when the key is not Ed25519, the signature does not verify, or the
// payload is malformed.
PeerId verify_noise_payload(ByteView payload, const Key32& remote_static_public);

}  // namespace cidrun::p2p
