#include "p2p/multiaddr.h"

#include <arpa/inet.h>

#include "util/error.h"
#include "util/varint.h"

namespace cidrun::p2p {
namespace {

// Codes from the multicodec table.
constexpr uint64_t kIp4 = 0x04, kTcp = 0x06, kIp6 = 0x29, kDns = 0x35, kDns4 = 0x36, kDns6 = 0x37,
                   kP2p = 0x01a5;
constexpr size_t kMaxDnsName = 253;

std::vector<std::string_view> split(std::string_view text) {
  std::vector<std::string_view> parts;
  if (text.empty() || text[0] != '/') throw Error("does not start with '/'");
  size_t i = 1;
  while (i <= text.size()) {
    size_t j = text.find('/', i);
    if (j == std::string_view::npos) j = text.size();
    parts.push_back(text.substr(i, j - i));
    i = j + 1;
  }
  if (!parts.empty() && parts.back().empty()) parts.pop_back();  // a trailing slash
  return parts;
}

uint16_t parse_port(std::string_view s) {
  if (s.empty() || s.size() > 5) throw Error("bad TCP port '" + std::string(s) + "'");
  uint32_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') throw Error("bad TCP port '" + std::string(s) + "'");
    v = v * 10 + static_cast<uint32_t>(c - '0');
  }
  if (v > 65535) throw Error("TCP port " + std::string(s) + " out of range");
  return static_cast<uint16_t>(v);
}

}  // namespace

Multiaddr Multiaddr::parse(std::string_view text) {
  try {
    auto parts = split(text);
    Multiaddr m;
    size_t i = 0;
    auto need = [&](std::string_view proto) -> std::string_view {
      if (i + 1 >= parts.size()) throw Error("/" + std::string(proto) + " needs a value");
      return parts[++i];
    };
    bool host = false;
    for (; i < parts.size(); ++i) {
      std::string_view p = parts[i];
      if (p == "ip4" || p == "ip6") {
        std::string v(need(p));
        uint8_t buf[16];
        if (inet_pton(p == "ip4" ? AF_INET : AF_INET6, v.c_str(), buf) != 1)
          throw Error("bad /" + std::string(p) + " address '" + v + "'");
        (p == "ip4" ? m.ip4 : m.ip6) = v;
        if (host) throw Error("two host parts");
        host = true;
      } else if (p == "dns" || p == "dns4" || p == "dns6") {
        m.dns = std::string(need(p));
        if (m.dns.empty() || m.dns.size() > kMaxDnsName) throw Error("bad DNS name");
        m.dns_code = p == "dns" ? kDns : p == "dns4" ? kDns4 : kDns6;
        if (host) throw Error("two host parts");
        host = true;
      } else if (p == "tcp") {
        if (!host || m.has_tcp) throw Error("/tcp must follow one host part");
        m.port = parse_port(need(p));
        m.has_tcp = true;
      } else if (p == "p2p" || p == "ipfs") {
        if (m.peer) throw Error("two /p2p parts");
        m.peer = PeerId::parse(need(p));
        if (i + 1 != parts.size()) throw Error("/p2p must come last");
      } else {
        throw Error("unsupported protocol /" + std::string(p));
      }
    }
    if (!host && !m.peer) throw Error("no address");
    return m;
  } catch (const Error& e) {
    throw Error("bad multiaddr '" + std::string(text) + "': " + e.what());
  }
}

Multiaddr Multiaddr::from_bytes(ByteView b) {
  Multiaddr m;
  size_t pos = 0;
  auto fail = [](const std::string& why) { return Error("bad binary multiaddr: " + why); };
  bool host = false;
  while (pos < b.size()) {
    auto code = get_varint(b, pos);
    if (!code) throw fail("truncated code");
    if (*code == kIp4 || *code == kIp6) {
      size_t n = *code == kIp4 ? 4 : 16;
      if (b.size() - pos < n) throw fail("truncated address");
      char buf[INET6_ADDRSTRLEN];
      inet_ntop(n == 4 ? AF_INET : AF_INET6, b.data() + pos, buf, sizeof buf);
      (n == 4 ? m.ip4 : m.ip6) = buf;
      pos += n;
      if (host) throw fail("two host parts");
      host = true;
    } else if (*code == kTcp) {
      if (b.size() - pos < 2) throw fail("truncated port");
      m.port = static_cast<uint16_t>((b[pos] << 8) | b[pos + 1]);
      m.has_tcp = true;
      pos += 2;
    } else if (*code == kDns || *code == kDns4 || *code == kDns6 || *code == kP2p) {
      auto len = get_varint(b, pos);
      if (!len || *len > b.size() - pos) throw fail("truncated value");
      ByteView v = b.subspan(pos, *len);
      pos += *len;
      if (*code == kP2p) {
        m.peer = PeerId::from_bytes(v);
      } else {
        if (v.empty() || v.size() > kMaxDnsName) throw fail("bad DNS name");
        m.dns = std::string(as_string(v));
        m.dns_code = *code;
        if (host) throw fail("two host parts");
        host = true;
      }
    } else {
      throw fail("unsupported protocol code " + std::to_string(*code));
    }
  }
  return m;
}

std::string Multiaddr::str() const {
  std::string s;
  if (!ip4.empty()) s += "/ip4/" + ip4;
  if (!ip6.empty()) s += "/ip6/" + ip6;
  if (!dns.empty()) {
    s += dns_code == kDns4 ? "/dns4/" : dns_code == kDns6 ? "/dns6/" : "/dns/";
    s += dns;
  }
  if (has_tcp) s += "/tcp/" + std::to_string(port);
  if (peer) s += "/p2p/" + peer->str();
  return s;
}

Bytes Multiaddr::bytes() const {
  Bytes out;
  uint8_t buf[16];
  if (!ip4.empty()) {
    put_varint(out, kIp4);
    inet_pton(AF_INET, ip4.c_str(), buf);
    out.insert(out.end(), buf, buf + 4);
  }
  if (!ip6.empty()) {
    put_varint(out, kIp6);
    inet_pton(AF_INET6, ip6.c_str(), buf);
    out.insert(out.end(), buf, buf + 16);
  }
  if (!dns.empty()) {
    put_varint(out, dns_code ? dns_code : kDns);
    put_varint(out, dns.size());
    out.insert(out.end(), dns.begin(), dns.end());
  }
  if (has_tcp) {
    put_varint(out, kTcp);
    out.push_back(static_cast<uint8_t>(port >> 8));
    out.push_back(static_cast<uint8_t>(port));
  }
  if (peer) {
    put_varint(out, kP2p);
    put_varint(out, peer->bytes().size());
    out.insert(out.end(), peer->bytes().begin(), peer->bytes().end());
  }
  return out;
}

std::string Multiaddr::host() const {
  if (!ip4.empty()) return ip4;
  if (!ip6.empty()) return ip6;
  return dns;
}

bool names_peer(std::string_view text) {
  return text.size() > 1 && text[0] == '/' &&
         (text.find("/p2p/") != std::string_view::npos ||
          text.find("/ipfs/") != std::string_view::npos);
}

}  // namespace cidrun::p2p
