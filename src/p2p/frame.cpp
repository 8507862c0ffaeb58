#include "p2p/frame.h"

#include "util/error.h"
#include "util/varint.h"

namespace cidrun::p2p {

void put_frame(Bytes& out, ByteView payload) {
  put_varint(out, payload.size());
  out.insert(out.end(), payload.begin(), payload.end());
}

void FrameReader::feed(ByteView data) {
  if (pos_ > 0 && pos_ == buf_.size()) {
    buf_.clear();
    pos_ = 0;
  } else if (pos_ > (64u << 10) && pos_ * 2 > buf_.size()) {
    buf_.erase(buf_.begin(), buf_.begin() + static_cast<std::ptrdiff_t>(pos_));
    pos_ = 0;
  }
  buf_.insert(buf_.end(), data.begin(), data.end());
}

std::optional<ByteView> FrameReader::next() {
  ByteView avail = rest();
  size_t p = 0;
  auto len = get_varint(avail, p);
  if (!len) {
    // Truncated, or malformed: a varint of 10 bytes that still does not end is malformed.
    if (avail.size() >= 10) throw Error("malformed frame length");
    return std::nullopt;
  }
  if (*len > max_)
    throw Error("frame of " + std::to_string(*len) + " bytes is over the limit of " +
                std::to_string(max_));
  if (avail.size() - p < *len) return std::nullopt;
  ByteView frame = avail.subspan(p, *len);
  pos_ += p + *len;
  return frame;
}

}  // namespace cidrun::p2p
