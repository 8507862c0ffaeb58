#include "p2p/multistream.h"

#include "p2p/frame.h"
#include "util/error.h"

namespace cidrun::p2p {

void put_mss(Bytes& out, std::string_view line) {
  std::string s(line);
  s += '\n';
  put_frame(out, as_bytes(s));
}

std::string mss_line(ByteView frame) {
  if (frame.empty() || frame.back() != '\n')
    throw Error("multistream-select: a message does not end with a newline");
  if (frame.size() > kMaxMssLine) throw Error("multistream-select: message too long");
  std::string s(as_string(frame.first(frame.size() - 1)));
  for (char c : s) {
    if (c == '\n' || c == '\0') throw Error("multistream-select: bad character in a message");
  }
  return s;
}

std::optional<std::string> MssListener::on_frame(ByteView frame, Bytes& reply) {
  std::string line = mss_line(frame);
  if (!header_seen_) {
    if (line != kMultistream)
      throw Error("multistream-select: expected " + std::string(kMultistream) + ", got '" + line +
                  "'");
    header_seen_ = true;
    put_mss(reply, kMultistream);
    return std::nullopt;
  }
  if (++proposals_ > kMaxMssProposals)
    throw Error("multistream-select: too many protocol proposals");
  if (line != "ls" && supported_(line)) {
    put_mss(reply, line);
    return line;
  }
  put_mss(reply, kNa);
  return std::nullopt;
}

MssDialer::Result MssDialer::on_frame(ByteView frame) {
  std::string line = mss_line(frame);
  if (!header_seen_) {
    if (line != kMultistream)
      throw Error("multistream-select: the peer answered '" + line + "' instead of " +
                  std::string(kMultistream));
    header_seen_ = true;
    return Result::kMore;
  }
  if (line == protocol_) return Result::kAccepted;
  if (line == kNa) return Result::kRefused;
  throw Error("multistream-select: the peer answered '" + line + "' to " + protocol_);
}

}  // namespace cidrun::p2p
