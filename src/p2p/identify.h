// Identify (https://github.com/libp2p/specs/blob/master/identify/README.md): what a peer says
// about itself when asked on /ipfs/id/1.0.0 (or pushes on /ipfs/id/push/1.0.0). Helia sends
// bitswap wants only to peers whose Identify lists a bitswap protocol, so ours must.
#pragma once

#include <string>
#include <vector>

#include "util/bytes.h"

namespace cidrun::p2p {

inline constexpr std::string_view kIdentifyProtocol = "/ipfs/id/1.0.0";
inline constexpr std::string_view kIdentifyPushProtocol = "/ipfs/id/push/1.0.0";
inline constexpr std::string_view kPingProtocol = "/ipfs/ping/1.0.0";
inline constexpr size_t kMaxIdentifyMessage = 64 * 1024;

struct IdentifyInfo {
  Bytes public_key;                 // PublicKey protobuf
  std::vector<Bytes> listen_addrs;  // binary multiaddrs
  std::vector<std::string> protocols;
  Bytes observed_addr;
  std::string protocol_version = "ipfs/0.1.0";
  std::string agent_version;
};

Bytes encode_identify(const IdentifyInfo& info);
// Throws Error for a malformed message (unknown fields are skipped; counts are bounded).
IdentifyInfo decode_identify(ByteView message);

}  // namespace cidrun::p2p
