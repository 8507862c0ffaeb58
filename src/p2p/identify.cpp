#include "p2p/identify.h"

#include "ipld/protobuf.h"
#include "util/error.h"

namespace cidrun::p2p {
namespace {
constexpr size_t kMaxEntries = 256;
}

Bytes encode_identify(const IdentifyInfo& info) {
  Bytes out;
  if (!info.public_key.empty()) pb::put_bytes(out, 1, info.public_key);
  for (const auto& a : info.listen_addrs) pb::put_bytes(out, 2, a);
  for (const auto& p : info.protocols) pb::put_bytes(out, 3, as_bytes(p));
  if (!info.observed_addr.empty()) pb::put_bytes(out, 4, info.observed_addr);
  pb::put_bytes(out, 5, as_bytes(info.protocol_version));
  pb::put_bytes(out, 6, as_bytes(info.agent_version));
  return out;
}

IdentifyInfo decode_identify(ByteView message) {
  if (message.size() > kMaxIdentifyMessage) throw Error("identify: message too large");
  IdentifyInfo info;
  info.protocol_version.clear();
  pb::Reader r(message);
  while (!r.done()) {
    auto [field, wt] = r.tag();
    if (wt != pb::kLen) {
      r.skip(wt);
      continue;
    }
    ByteView v = r.bytes();
    switch (field) {
      case 1:
        info.public_key.assign(v.begin(), v.end());
        break;
      case 2:
        if (info.listen_addrs.size() >= kMaxEntries) throw Error("identify: too many addresses");
        info.listen_addrs.emplace_back(v.begin(), v.end());
        break;
      case 3:
        if (info.protocols.size() >= kMaxEntries) throw Error("identify: too many protocols");
        info.protocols.emplace_back(as_string(v));
        break;
      case 4:
        info.observed_addr.assign(v.begin(), v.end());
        break;
      case 5:
        info.protocol_version = std::string(as_string(v));
        break;
      case 6:
        info.agent_version = std::string(as_string(v));
        break;
      default:
        break;  // signedPeerRecord (8) and newer fields
    }
  }
  return info;
}

}  // namespace cidrun::p2p
