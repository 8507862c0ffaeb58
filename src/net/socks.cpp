#include "net/socks.h"

#include <arpa/inet.h>

#include <algorithm>
#include <array>

#include "util/error.h"

namespace cidrun::net {
namespace {

// One handshake: the proxy, what we asked for, and the bounded reads and writes of its bytes.
class Handshake {
 public:
  Handshake(Conn& c, const Proxy& p, const std::string& host, uint16_t port,
            Clock::time_point deadline, long timeout_ms)
      : c_(c), deadline_(deadline), timeout_ms_(timeout_ms), what_("proxy " + p.display()) {
    target_ = (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" +
              std::to_string(port);
  }

  void send(const Bytes& b) {
    if (c_.write(b, deadline_) != b.size()) throw timed_out();
  }

  // Exactly n bytes of the proxy's answer.
  Bytes receive(size_t n) {
    Bytes b(n);
    size_t got = 0;
    while (got < n) {
      ptrdiff_t r = c_.read(b.data() + got, n - got, deadline_);
      if (r < 0) throw timed_out();
      if (r == 0) throw Error(what_ + " closed the connection during the SOCKS handshake");
      got += static_cast<size_t>(r);
    }
    return b;
  }

  Error fail(const std::string& why) const { return Error(what_ + ": " + why); }
  Error refused(const std::string& why) const {
    return Error(what_ + " refused CONNECT " + target_ + ": " + why);
  }

 private:
  Error timed_out() const {
    return Error(what_ + " did not finish the SOCKS handshake for " + target_ + " within " +
                 std::to_string(timeout_ms_) + " ms");
  }

  Conn& c_;
  Clock::time_point deadline_;
  long timeout_ms_;
  std::string what_;
  std::string target_;
};

void put_port(Bytes& b, uint16_t port) {
  b.push_back(static_cast<uint8_t>(port >> 8));
  b.push_back(static_cast<uint8_t>(port & 0xff));
}

// The address a request names when the origin is resolved here (or is an IP literal).
Bytes local_address(const std::string& host, bool ipv4_only, Clock::time_point deadline) {
  std::vector<Bytes> all = resolve_addresses(host, deadline);
  auto it = std::find_if(all.begin(), all.end(),
                         [&](const Bytes& a) { return !ipv4_only || a.size() == 4; });
  if (it == all.end()) throw Error("cannot resolve " + host + ": no IPv4 address (SOCKS4)");
  return *it;
}

bool is_ip_literal(const std::string& host) {
  std::array<uint8_t, 16> buf{};
  return ::inet_pton(AF_INET, host.c_str(), buf.data()) == 1 ||
         ::inet_pton(AF_INET6, host.c_str(), buf.data()) == 1;
}

std::string socks5_reason(uint8_t rep) {
  static const std::array<const char*, 9> kReasons{
      "succeeded",           "general failure",       "connection not allowed by its rules",
      "network unreachable", "host unreachable",      "connection refused",
      "TTL expired",         "command not supported", "address type not supported",
  };
  std::string why = rep < kReasons.size() ? kReasons.at(rep) : "unknown error";
  return why + " (SOCKS5 reply " + std::to_string(rep) + ")";
}

void socks5(Handshake& h, const Proxy& p, const std::string& host, uint16_t port,
            Clock::time_point deadline) {
  constexpr uint8_t kNoAuth = 0x00, kUserPass = 0x02, kNone = 0xff;
  // Resolved before a byte is sent, so that a name that does not resolve is our error, not the
  // proxy's.
  Bytes addr;
  uint8_t atyp = 0x03;
  if (!p.resolves_names() || is_ip_literal(host)) {
    addr = local_address(host, false, deadline);
    atyp = addr.size() == 4 ? 0x01 : 0x04;
  } else {
    if (host.size() > 255) throw h.fail("host name " + host + " is longer than SOCKS5 allows");
    addr.assign(host.begin(), host.end());
  }

  Bytes hello{0x05, 0x01, kNoAuth};
  if (p.has_credentials) hello = {0x05, 0x02, kNoAuth, kUserPass};
  h.send(hello);
  Bytes chosen = h.receive(2);
  if (chosen[0] != 0x05)
    throw h.fail("not a SOCKS5 proxy (its answer starts with another version)");
  if (chosen[1] == kNone) {
    throw h.fail(std::string("accepts none of our authentication methods") +
                 (p.has_credentials ? "" : " (credentials needed)"));
  }
  if (chosen[1] == kUserPass && p.has_credentials) {
    Bytes auth{0x01, static_cast<uint8_t>(p.user.size())};
    auth.insert(auth.end(), p.user.begin(), p.user.end());
    auth.push_back(static_cast<uint8_t>(p.password.size()));
    auth.insert(auth.end(), p.password.begin(), p.password.end());
    h.send(auth);
    Bytes status = h.receive(2);
    if (status[1] != 0x00) throw h.fail("rejected the credentials");
  } else if (chosen[1] != kNoAuth) {
    throw h.fail("chose authentication method " + std::to_string(chosen[1]) +
                 ", which we did not offer");
  }

  Bytes req{0x05, 0x01, 0x00, atyp};
  if (atyp == 0x03) req.push_back(static_cast<uint8_t>(addr.size()));
  req.insert(req.end(), addr.begin(), addr.end());
  put_port(req, port);
  h.send(req);
  Bytes reply = h.receive(4);
  if (reply[0] != 0x05) throw h.fail("not a SOCKS5 proxy (its answer starts with another version)");
  if (reply[1] != 0x00) throw h.refused(socks5_reason(reply[1]));
  // The address the proxy bound for us: read and dropped, so that the stream starts clean.
  size_t bound = 0;
  switch (reply[3]) {
    case 0x01:
      bound = 4;
      break;
    case 0x04:
      bound = 16;
      break;
    case 0x03:
      bound = h.receive(1)[0];
      break;
    default:
      throw h.fail("bad address type " + std::to_string(reply[3]) + " in its answer");
  }
  h.receive(bound + 2);
}

void socks4(Handshake& h, const Proxy& p, const std::string& host, uint16_t port,
            Clock::time_point deadline) {
  // SOCKS4a: an address 0.0.0.x (x != 0) says "the name follows the user id".
  bool by_name = p.resolves_names() && !is_ip_literal(host);
  Bytes req{0x04, 0x01};
  put_port(req, port);
  if (by_name) {
    req.insert(req.end(), {0, 0, 0, 1});
  } else {
    Bytes a = local_address(host, true, deadline);
    req.insert(req.end(), a.begin(), a.end());
  }
  req.insert(req.end(), p.user.begin(), p.user.end());
  req.push_back(0);
  if (by_name) {
    req.insert(req.end(), host.begin(), host.end());
    req.push_back(0);
  }
  h.send(req);
  Bytes reply = h.receive(8);
  if (reply[0] != 0x00) throw h.fail("not a SOCKS4 proxy (its answer starts with another version)");
  switch (reply[1]) {
    case 0x5a:
      return;
    case 0x5b:
      throw h.refused("rejected or failed (SOCKS4 reply 91)");
    case 0x5c:
      throw h.refused("its identd could not be reached (SOCKS4 reply 92)");
    case 0x5d:
      throw h.refused("its identd did not confirm the user id (SOCKS4 reply 93)");
    default:
      throw h.fail("unknown SOCKS4 reply " + std::to_string(reply[1]));
  }
}

}  // namespace

void socks_connect(Conn& c, const Proxy& p, const std::string& host, uint16_t port,
                   Clock::time_point deadline, long timeout_ms) {
  Handshake h(c, p, host, port, deadline, timeout_ms);
  if (p.kind == Proxy::Kind::kSocks5 || p.kind == Proxy::Kind::kSocks5h) {
    socks5(h, p, host, port, deadline);
  } else {
    socks4(h, p, host, port, deadline);
  }
}

}  // namespace cidrun::net
