// Bitswap 1.2.0 messages (https://specs.ipfs.tech/bitswap-protocol/): one protobuf per
// length-prefixed frame, carrying wantlist entries, blocks (a CID prefix and the bytes; the
// receiver hashes the bytes to learn which CID they are) and HAVE/DONT_HAVE presences.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "multiformats/cid.h"
#include "util/bytes.h"

namespace cidrun::exchange::bitswap {

inline constexpr std::string_view kProtocol120 = "/ipfs/bitswap/1.2.0";
inline constexpr std::string_view kProtocol110 = "/ipfs/bitswap/1.1.0";
inline constexpr std::string_view kProtocol100 = "/ipfs/bitswap/1.0.0";
inline constexpr std::string_view kProtocolBare = "/ipfs/bitswap";
// The largest message accepted or sent (boxo's network.MessageSizeMax).
inline constexpr size_t kMaxMessage = 4u << 20;

enum class WantType : uint8_t { kBlock = 0, kHave = 1 };
enum class Presence : uint8_t { kHave = 0, kDontHave = 1 };

struct Want {
  Cid cid;
  int32_t priority = 1;
  bool cancel = false;
  WantType type = WantType::kBlock;
  bool send_dont_have = false;
};

struct BlockPresence {
  Cid cid;
  Presence type = Presence::kHave;
};

// A block as it travels: the CID prefix (version, codec, hash code, digest length) and the
// data. `data` points into the decoded message's buffer.
struct WireBlock {
  uint64_t version = 1, codec = 0, hash_code = 0, digest_size = 0;
  ByteView data;
};

struct Message {
  std::vector<Want> wants;
  bool full_wantlist = false;
  std::vector<WireBlock> blocks;
  std::vector<BlockPresence> presences;
  int32_t pending_bytes = 0;
};

// Encodes a message; blocks are given as (cid, data) so that the prefix comes from the CID.
struct OutBlock {
  const Cid* cid;
  ByteView data;
};
// kLengthPrefixed: with the varint length in front, as the message travels on a stream.
enum class Framing { kBare, kLengthPrefixed };
Bytes encode(const std::vector<Want>& wants, bool full_wantlist,
             const std::vector<OutBlock>& blocks, const std::vector<BlockPresence>& presences,
             Framing framing = Framing::kBare);

// Decodes a message (views into `message`). Throws Error for malformed protobuf, bad CIDs or
// prefixes, or more than max_entries wantlist entries/presences (a hostile wantlist is refused
// before it is stored anywhere).
Message decode(ByteView message, size_t max_entries = 1u << 16);

// The CID a received block has: its prefix with the hash of its data (sha2-256 only; identity
// and other hashes are refused). Throws Error.
Cid block_cid(const WireBlock& b);

// The prefix bytes of a CID (what field `prefix` carries).
Bytes cid_prefix(const Cid& cid);

}  // namespace cidrun::exchange::bitswap
