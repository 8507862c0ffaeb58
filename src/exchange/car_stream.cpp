#include "exchange/car_stream.h"

#include "ipld/car.h"
#include "util/error.h"
#include "util/varint.h"

namespace cidrun::exchange {

void CarStreamParser::feed(ByteView data) {
  if (pos_ == buf_.size()) {
    // Nothing buffered: whole sections are parsed straight from the caller's bytes, and only a
    // trailing partial one is copied.
    buf_.clear();
    pos_ = 0;
    data = data.subspan(parse(data));
    buf_.assign(data.begin(), data.end());
    return;
  }
  buf_.insert(buf_.end(), data.begin(), data.end());
  pos_ += parse(ByteView(buf_).subspan(pos_));
  // Keep the buffer small: drop what was consumed once it is the larger part.
  if (pos_ > 0 && pos_ * 2 >= buf_.size()) {
    buf_.erase(buf_.begin(), buf_.begin() + static_cast<std::ptrdiff_t>(pos_));
    pos_ = 0;
  }
}

size_t CarStreamParser::parse(ByteView in) {
  size_t used = 0;
  for (;;) {
    ByteView rest = in.subspan(used);
    size_t p = 0;
    auto len = get_varint(rest, p);
    if (!len) {
      // Incomplete varint (or a bad one: more than 10 bytes buffered means it can never parse).
      if (rest.size() >= 10) throw Error("CAR: malformed length varint");
      return used;
    }
    if (!header_done_) {
      if (*len == 0 || *len > kMaxCarHeaderSize) throw Error("CAR: header length out of range");
    } else if (*len == 0 || *len > kMaxBlockSize + 256) {
      throw Error("CAR: section of " + std::to_string(*len) +
                  " bytes exceeds the block size limit");
    }
    if (rest.size() - p < *len) {
      // A partial section: make room for all of it once, not chunk by chunk. It starts at
      // rest's offset in buf_ when in is buf_'s tail, at 0 when in is the caller's bytes (buf_
      // is empty then and gets the partial section copied in). Adding buf_.size() instead
      // asked for a byte more with each byte fed, and so a new buffer and a copy of the
      // section so far each time: quadratic in a stream that arrives in small pieces.
      size_t start = buf_.empty() ? 0 : buf_.size() - rest.size();
      buf_.reserve(start + p + *len);
      return used;
    }
    ByteView body = rest.subspan(p, *len);
    if (!header_done_) {
      // Roots are not checked: the trustless gateway spec tells clients to ignore them.
      if (car::decode_header(body).version != 1)
        throw Error("CAR: only CARv1 is accepted in a stream");
      header_done_ = true;
    } else {
      size_t cp = 0;
      Cid cid = Cid::read(body, cp);
      on_block_(cid, body.subspan(cp));
    }
    used += p + *len;
  }
}

void CarStreamParser::finish() const {
  if (!header_done_) throw Error("CAR: stream ended before the header");
  if (pos_ != buf_.size()) throw Error("CAR: stream ended inside a section (truncated)");
}

Bytes car_header(const std::vector<Cid>& roots) {
  Bytes h = car::encode_header(roots);
  Bytes out;
  put_varint(out, h.size());
  out.insert(out.end(), h.begin(), h.end());
  return out;
}

Bytes car_section_prefix(const Cid& cid, size_t data_len) {
  Bytes out;
  put_varint(out, cid.bytes().size() + data_len);
  out.insert(out.end(), cid.bytes().begin(), cid.bytes().end());
  return out;
}

}  // namespace cidrun::exchange
