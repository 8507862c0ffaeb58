// One client connection: TCP (non-blocking, every wait bounded by a deadline) with optional TLS
// through OpenSSL, one session or two nested (TLS to an https proxy, and inside it TLS with the
// origin). The HTTP client (http_client.h) is its only user; nothing here knows HTTP.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "net/tls.h"
#include "util/bytes.h"
#include "util/fd.h"

namespace cidrun::net {

using Clock = std::chrono::steady_clock;

class Conn {
 public:
  // Resolves host, connects to the first address that answers before `deadline`, and for tls
  // completes a verified handshake (SNI and the certificate's name checked against host).
  // Throws Error naming the host and what failed.
  static std::unique_ptr<Conn> open(const std::string& host, uint16_t port, const TlsContext* tls,
                                    Clock::time_point deadline);
  // The TCP part of open(): a plain connection (to an origin or to a proxy).
  static std::unique_ptr<Conn> open_tcp(const std::string& host, uint16_t port,
                                        Clock::time_point deadline);
  // Turns a plain connection into TLS with host:port (through a proxy's CONNECT tunnel, host is
  // the origin: SNI and the certificate check name it, never the proxy). On a connection that is
  // TLS already (to an https proxy) the new session runs inside the first one, its records
  // carried as the first's application data; reads and writes then go through both. A third
  // session is refused.
  void start_tls(const TlsContext& tls, const std::string& host, uint16_t port,
                 Clock::time_point deadline);
  ~Conn();
  Conn(const Conn&) = delete;
  Conn& operator=(const Conn&) = delete;

  // Reads what is available (waiting until `deadline`): the count read, 0 at the peer's end of
  // stream, or -1 when the deadline passed first. Throws Error on a reset or a TLS failure.
  ptrdiff_t read(uint8_t* buf, size_t len, Clock::time_point deadline);
  // Writes as much as the socket takes before `deadline`; 0 when the deadline passed first.
  // Throws Error when the peer is gone (reset, broken pipe).
  size_t write(ByteView data, Clock::time_point deadline);

  // True when an idle kept-alive connection can carry another request: the peer has neither
  // closed it nor sent anything unasked.
  bool still_idle() const;

 private:
  Conn(UniqueFd fd, SSL* ssl) : fd_(std::move(fd)), ssl_(ssl) {}
  // Waits until the socket is readable (or writable); false when the deadline passed.
  bool wait(short events, Clock::time_point deadline) const;

  UniqueFd fd_;
  SSL* ssl_ = nullptr;    // the session reads and writes go through (the innermost)
  SSL* outer_ = nullptr;  // with two sessions: the one to the proxy, which carries ssl_
};

// host's addresses (host a name or an IP literal), resolved before `deadline` as Conn::open
// resolves: each 4 bytes (IPv4) or 16 (IPv6), in the resolver's order. Throws Error as open().
std::vector<Bytes> resolve_addresses(const std::string& host, Clock::time_point deadline);

}  // namespace cidrun::net
