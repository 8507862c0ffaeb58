// Yamux framing (https://github.com/libp2p/specs/blob/master/yamux/README.md): a 12-byte
// big-endian header (version 0, type, flags, stream id, length) and, for Data frames, `length`
// bytes of payload. The session logic (streams, windows, pings) lives in connection.h; this is
// the codec, kept apart so that it can be tested and fuzzed alone.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "util/bytes.h"

namespace cidrun::p2p::yamux {

inline constexpr std::string_view kProtocol = "/yamux/1.0.0";
inline constexpr size_t kHeaderSize = 12;
// Every stream starts with this receive window in both directions (the spec's 256 KiB).
inline constexpr uint32_t kInitialWindow = 256 * 1024;

enum class Type : uint8_t { kData = 0, kWindowUpdate = 1, kPing = 2, kGoAway = 3 };
enum Flag : uint16_t { kSyn = 1, kAck = 2, kFin = 4, kRst = 8 };
enum class GoAwayCode : uint32_t { kNormal = 0, kProtocolError = 1, kInternalError = 2 };

struct Header {
  Type type = Type::kData;
  uint16_t flags = 0;
  uint32_t stream = 0;
  uint32_t length = 0;  // payload size, window delta, ping value or go-away code

  bool has(Flag f) const { return (flags & f) != 0; }
};

void put_header(Bytes& out, const Header& h);
// Throws Error for an unknown version or type (a protocol error: the session must end).
Header parse_header(const uint8_t* twelve_bytes);

}  // namespace cidrun::p2p::yamux
