// libp2p identities (https://github.com/libp2p/specs/blob/master/peer-ids/peer-ids.md): the
// PublicKey/PrivateKey protobufs and peer IDs. Only Ed25519 keys are made or accepted: every
// current IPFS implementation defaults to them, and a key of another type is refused with a
// clear message rather than half supported.
#pragma once

#include <string>
#include <string_view>

#include "p2p/crypto.h"
#include "util/bytes.h"

namespace cidrun::p2p {

inline constexpr uint64_t kKeyTypeEd25519 = 1;

// PublicKey{Type=1 (Ed25519), Data=32 bytes}: 08 01 12 20 || key, the only encoding accepted
// (deterministic, as the spec requires for peer IDs).
Bytes encode_public_key(const Key32& ed25519_public);
// Throws Error for another key type, a wrong length or a non-canonical encoding.
Key32 decode_public_key(ByteView protobuf);

// PrivateKey{Type=1, Data=seed||public (64 bytes)}; decode also takes the bare 32-byte seed form.
Bytes encode_private_key(const Ed25519Key& key);
Ed25519Key decode_private_key(ByteView protobuf);

// A peer ID: the multihash of the encoded public key (identity multihash for Ed25519).
class PeerId {
 public:
  PeerId() = default;
  static PeerId from_public_key(const Key32& ed25519_public);
  // Binary multihash; throws Error when it is not a multihash a peer ID can be.
  static PeerId from_bytes(ByteView multihash);
  // "12D3KooW..." (base58btc multihash), "Qm..." or a CIDv1 with codec libp2p-key in any
  // multibase ("bafz...", "k51..."). Throws Error naming the text.
  static PeerId parse(std::string_view text);

  bool valid() const { return !bytes_.empty(); }
  const Bytes& bytes() const { return bytes_; }
  std::string str() const;  // base58btc, as every implementation prints it
  // The Ed25519 key inlined in an identity-multihash peer ID.
  bool has_inline_key() const;
  Key32 inline_key() const;

  friend bool operator==(const PeerId& a, const PeerId& b) { return a.bytes_ == b.bytes_; }

 private:
  Bytes bytes_;
};

}  // namespace cidrun::p2p
