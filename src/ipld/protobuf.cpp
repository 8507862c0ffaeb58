#include "ipld/protobuf.h"

#include "util/error.h"

namespace cidrun::pb {

std::pair<uint32_t, WireType> Reader::tag() {
  uint64_t t = varint();
  uint64_t field = t >> 3;
  auto wt = static_cast<WireType>(t & 7);
  if (field == 0 || field > 0x1fffffff) throw Error("protobuf: invalid field number");
  if (wt != kVarint && wt != kFixed64 && wt != kLen && wt != kFixed32) {
    throw Error("protobuf: unsupported wire type " + std::to_string(static_cast<int>(wt)));
  }
  return {static_cast<uint32_t>(field), wt};
}

uint64_t Reader::varint() {
  // Protobuf allows non-minimal varints; dag-pb's stricter rules are checked by its decoder.
  auto v = get_varint(data_, pos_, /*minimal=*/false);
  if (!v) throw Error("protobuf: malformed varint");
  return *v;
}

ByteView Reader::bytes() {
  uint64_t len = varint();
  if (len > data_.size() - pos_) throw Error("protobuf: length exceeds message");
  ByteView out = data_.subspan(pos_, len);
  pos_ += len;
  return out;
}

uint32_t Reader::fixed32() {
  if (data_.size() - pos_ < 4) throw Error("protobuf: truncated fixed32");
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= static_cast<uint32_t>(data_[pos_ + i]) << (8 * i);
  pos_ += 4;
  return v;
}

uint64_t Reader::fixed64() {
  if (data_.size() - pos_ < 8) throw Error("protobuf: truncated fixed64");
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v |= static_cast<uint64_t>(data_[pos_ + i]) << (8 * i);
  pos_ += 8;
  return v;
}

void Reader::skip(WireType wt) {
  switch (wt) {
    case kVarint:
      varint();
      break;
    case kFixed64:
      fixed64();
      break;
    case kLen:
      bytes();
      break;
    case kFixed32:
      fixed32();
      break;
  }
}

}  // namespace cidrun::pb
