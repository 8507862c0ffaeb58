// The read-ahead buffer of the content-defined chunkers (rabin, buzhash).
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>

#include "unixfs/chunker.h"

namespace cidrun::unixfs {

// Reads the source in large pieces and keeps the unconsumed tail, so that a whole chunk's worth
// of bytes (`want`) is contiguous in memory while scanning, except at end of input. The buffer
// grows only while data keeps coming, and is left uninitialized, so that a small file costs a
// small allocation rather than the full lookahead.
class ScanBuffer {
 public:
  ScanBuffer(ByteSource& src, size_t want)
      : src_(src), want_(want), target_(std::max<size_t>(4 * want, size_t{1} << 20)) {}

  // Returns how many bytes are available at data(): at least want_, fewer only at end of input.
  size_t fill() {
    size_t avail = end_ - pos_;
    if (avail >= want_ || eof_) return avail;
    if (pos_ > 0) std::memmove(buf_.get(), buf_.get() + pos_, avail);
    pos_ = 0;
    end_ = avail;
    while (!eof_ && end_ < want_) {
      if (end_ == cap_) grow();
      size_t n = src_.read(buf_.get() + end_, cap_ - end_);
      end_ += n;
      if (end_ < cap_) eof_ = true;  // ByteSource::read is short only at EOF
    }
    return end_;
  }
  const uint8_t* data() const { return buf_.get() + pos_; }
  void consume(size_t n) { pos_ += n; }

 private:
  void grow() {
    size_t cap = std::min(target_, std::max(2 * cap_, size_t{64} << 10));
    std::unique_ptr<uint8_t[]> bigger(new uint8_t[cap]);
    if (end_ > 0) std::memcpy(bigger.get(), buf_.get(), end_);
    buf_ = std::move(bigger);
    cap_ = cap;
  }

  ByteSource& src_;
  size_t want_, target_;
  std::unique_ptr<uint8_t[]> buf_;
  size_t cap_ = 0, pos_ = 0, end_ = 0;
  bool eof_ = false;
};

}  // namespace cidrun::unixfs
