#include "p2p/yamux.h"

#include "util/error.h"

namespace cidrun::p2p::yamux {

void put_header(Bytes& out, const Header& h) {
  uint8_t b[kHeaderSize] = {0,
                            static_cast<uint8_t>(h.type),
                            static_cast<uint8_t>(h.flags >> 8),
                            static_cast<uint8_t>(h.flags),
                            static_cast<uint8_t>(h.stream >> 24),
                            static_cast<uint8_t>(h.stream >> 16),
                            static_cast<uint8_t>(h.stream >> 8),
                            static_cast<uint8_t>(h.stream),
                            static_cast<uint8_t>(h.length >> 24),
                            static_cast<uint8_t>(h.length >> 16),
                            static_cast<uint8_t>(h.length >> 8),
                            static_cast<uint8_t>(h.length)};
  out.insert(out.end(), b, b + kHeaderSize);
}

Header parse_header(const uint8_t* b) {
  if (b[0] != 0) throw Error("yamux: unknown version " + std::to_string(b[0]));
  if (b[1] > static_cast<uint8_t>(Type::kGoAway))
    throw Error("yamux: unknown frame type " + std::to_string(b[1]));
  Header h;
  h.type = static_cast<Type>(b[1]);
  h.flags = static_cast<uint16_t>((b[2] << 8) | b[3]);
  h.stream = (uint32_t{b[4]} << 24) | (uint32_t{b[5]} << 16) | (uint32_t{b[6]} << 8) | b[7];
  h.length = (uint32_t{b[8]} << 24) | (uint32_t{b[9]} << 16) | (uint32_t{b[10]} << 8) | b[11];
  return h;
}

}  // namespace cidrun::p2p::yamux
