// Multiaddrs (https://github.com/multiformats/multiaddr): the text and binary forms of the
// addresses a libp2p node dials and announces. Only the protocols a TCP node meets are known:
// /ip4, /ip6, /dns, /dns4, /dns6, /tcp, /p2p (also spelled /ipfs); anything else is refused with
// its name, so an address is never half understood.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "p2p/peer_id.h"
#include "util/bytes.h"

namespace cidrun::p2p {

struct Multiaddr {
  // The host part: exactly one of these is set by a successful parse.
  std::string ip4, ip6, dns;  // dns holds the name for /dns, /dns4 and /dns6
  uint64_t dns_code = 0;      // which of /dns (0x35), /dns4 (0x36), /dns6 (0x37)
  uint16_t port = 0;          // /tcp
  bool has_tcp = false;
  std::optional<PeerId> peer;  // /p2p/<id>

  // Throws Error naming the text and the part that is wrong.
  static Multiaddr parse(std::string_view text);
  static Multiaddr from_bytes(ByteView binary);
  std::string str() const;
  Bytes bytes() const;

  // The host to connect to (an IP literal or a name).
  std::string host() const;
};

// Whether text looks like a multiaddr that names a peer (".../p2p/<id>"): the form a bitswap
// source is given in, as opposed to a kubo RPC API address.
bool names_peer(std::string_view text);

}  // namespace cidrun::p2p
