#include "exchange/car_stream.h"

#include <algorithm>
#include <cstring>

#include "util/error.h"
#include "util/varint.h"

namespace cidrun::car {
namespace {

// The only facts we need from the dag-cbor header: it is a map whose "version" is 1. The roots
// are ignored, as the trustless gateway spec tells clients to (they prove nothing).
void check_header(ByteView h) {
  static const uint8_t kVersionKey[] = {0x67, 'v', 'e', 'r', 's', 'i', 'o', 'n'};
  if (h.empty() || (h[0] & 0xe0) != 0xa0) throw Error("CAR header is not a CBOR map");
  auto it = std::search(h.begin(), h.end(), std::begin(kVersionKey), std::end(kVersionKey));
  if (it == h.end() || it + sizeof kVersionKey >= h.end()) throw Error("CAR header has no version");
  uint8_t v = *(it + sizeof kVersionKey);
  if (v == 0x02) throw Error("CARv2 is not accepted in a stream (CARv1 expected)");
  if (v != 0x01) throw Error("CAR header has an unsupported version");
}

void put_cbor_head(Bytes& out, uint8_t major, uint64_t n) {
  if (n < 24) {
    out.push_back(static_cast<uint8_t>(major << 5 | n));
  } else if (n < 256) {
    out.push_back(static_cast<uint8_t>(major << 5 | 24));
    out.push_back(static_cast<uint8_t>(n));
  } else {
    out.push_back(static_cast<uint8_t>(major << 5 | 25));
    out.push_back(static_cast<uint8_t>(n >> 8));
    out.push_back(static_cast<uint8_t>(n));
  }
}

}  // namespace

void StreamParser::feed(ByteView data) {
  buf_.insert(buf_.end(), data.begin(), data.end());
  parse();
  // Keep the buffer small: drop what was consumed once it is the larger part.
  if (pos_ > 0 && pos_ * 2 >= buf_.size()) {
    buf_.erase(buf_.begin(), buf_.begin() + static_cast<std::ptrdiff_t>(pos_));
    pos_ = 0;
  }
}

void StreamParser::parse() {
  for (;;) {
    ByteView rest = ByteView(buf_).subspan(pos_);
    size_t p = 0;
    auto len = get_varint(rest, p);
    if (!len) {
      // Incomplete varint (or a bad one: more than 10 bytes buffered means it can never parse).
      if (rest.size() >= 10) throw Error("CAR: malformed length varint");
      return;
    }
    if (!header_done_) {
      if (*len == 0 || *len > kMaxHeaderSize) throw Error("CAR: header length out of range");
    } else if (*len == 0 || *len > kMaxBlockSize + 256) {
      throw Error("CAR: section of " + std::to_string(*len) +
                  " bytes exceeds the block size limit");
    }
    if (rest.size() - p < *len) return;
    ByteView body = rest.subspan(p, *len);
    if (!header_done_) {
      check_header(body);
      header_done_ = true;
    } else {
      size_t cp = 0;
      Cid cid = Cid::read(body, cp);
      on_block_(cid, body.subspan(cp));
    }
    pos_ += p + *len;
  }
}

void StreamParser::finish() const {
  if (!header_done_) throw Error("CAR: stream ended before the header");
  if (pos_ != buf_.size()) throw Error("CAR: stream ended inside a section (truncated)");
}

Bytes header(const std::vector<Cid>& roots) {
  Bytes h;
  put_cbor_head(h, 5, 2);  // map(2)
  put_cbor_head(h, 3, 5);  // "roots" sorts first: dag-cbor orders keys by length
  h.insert(h.end(), {'r', 'o', 'o', 't', 's'});
  put_cbor_head(h, 4, roots.size());
  for (const auto& r : roots) {
    h.insert(h.end(), {0xd8, 0x2a});  // tag 42: a CID
    put_cbor_head(h, 2, r.bytes().size() + 1);
    h.push_back(0x00);  // the multibase identity prefix dag-cbor puts before binary CIDs
    h.insert(h.end(), r.bytes().begin(), r.bytes().end());
  }
  put_cbor_head(h, 3, 7);
  h.insert(h.end(), {'v', 'e', 'r', 's', 'i', 'o', 'n'});
  put_cbor_head(h, 0, 1);
  Bytes out;
  put_varint(out, h.size());
  out.insert(out.end(), h.begin(), h.end());
  return out;
}

Bytes section_prefix(const Cid& cid, size_t data_len) {
  Bytes out;
  put_varint(out, cid.bytes().size() + data_len);
  out.insert(out.end(), cid.bytes().begin(), cid.bytes().end());
  return out;
}

}  // namespace cidrun::car
