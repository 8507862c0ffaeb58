// multistream-select 1.0 (https://github.com/multiformats/multistream-select): each message is a
// length-prefixed line ending in '\n'; both sides send "/multistream/1.0.0", then the dialer
// proposes protocols one by one and the listener echoes the one it takes or answers "na".
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "util/bytes.h"

namespace cidrun::p2p {

inline constexpr std::string_view kMultistream = "/multistream/1.0.0";
inline constexpr std::string_view kNa = "na";
// Longer lines are refused: implementations cap protocol names near 1 KiB.
inline constexpr size_t kMaxMssLine = 1024;
// A dialer that keeps proposing what we do not speak is dropped after this many.
inline constexpr int kMaxMssProposals = 32;

// Appends one message (varint length, line, '\n').
void put_mss(Bytes& out, std::string_view line);
// The line inside a frame, without its '\n'. Throws Error when the frame is not a line.
std::string mss_line(ByteView frame);

// The listener's side, fed one frame at a time (the dialer may pipeline its header, a proposal
// and even protocol data in one write: feed every frame a FrameReader yields).
class MssListener {
 public:
  explicit MssListener(std::function<bool(std::string_view)> supported)
      : supported_(std::move(supported)) {}
  // Appends what to answer to `reply`; returns the protocol once one is agreed. Throws Error
  // for a malformed exchange (no header, too many proposals).
  std::optional<std::string> on_frame(ByteView frame, Bytes& reply);

 private:
  std::function<bool(std::string_view)> supported_;
  bool header_seen_ = false;
  int proposals_ = 0;
};

// The dialer's side, after it sent the header and its proposal (put_mss twice): fed the
// listener's frames, it says whether the proposal was taken.
class MssDialer {
 public:
  explicit MssDialer(std::string protocol) : protocol_(std::move(protocol)) {}
  enum class Result { kMore, kAccepted, kRefused };
  // Throws Error for an answer that is neither the echo nor "na".
  Result on_frame(ByteView frame);
  const std::string& protocol() const { return protocol_; }

 private:
  std::string protocol_;
  bool header_seen_ = false;
};

}  // namespace cidrun::p2p
