// Unsigned-varint length-prefixed frames, the framing of multistream-select, Identify and Bitswap
// messages. The reader is incremental (bytes arrive in any pieces) and refuses a frame longer
// than its limit as soon as the length prefix is read, before any of it is buffered.
#pragma once

#include <cstddef>
#include <optional>

#include "util/bytes.h"

namespace cidrun::p2p {

void put_frame(Bytes& out, ByteView payload);

class FrameReader {
 public:
  explicit FrameReader(size_t max_frame) : max_(max_frame) {}
  void feed(ByteView data);
  // The next whole frame's payload, valid until the next feed() or next(); nullopt when more
  // bytes are needed. Throws Error for a frame over the limit or a malformed prefix.
  std::optional<ByteView> next();
  // Bytes fed but not yet returned as frames (what follows the last frame).
  ByteView rest() const { return ByteView(buf_).subspan(pos_); }
  size_t buffered() const { return buf_.size() - pos_; }
  void clear_rest() {
    buf_.clear();
    pos_ = 0;
  }

 private:
  size_t max_;
  Bytes buf_;
  size_t pos_ = 0;
};

}  // namespace cidrun::p2p
