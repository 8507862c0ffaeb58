// Which HTTP proxy a request goes through, from the environment, with curl's rules:
//   http:// URLs   http_proxy (lowercase only: under CGI, HTTP_PROXY is set from a request's
//                  "Proxy:" header, so the uppercase name cannot be trusted), else all_proxy,
//                  else ALL_PROXY;
//   https:// URLs  https_proxy, else HTTPS_PROXY, else all_proxy, else ALL_PROXY;
//   no_proxy (else NO_PROXY) lists hosts that are reached directly.
// An empty variable counts as unset. Loopback names and addresses are proxied like any other
// host unless no_proxy lists them (curl does the same; Go's client does not).
//
// no_proxy: entries separated by commas and/or blanks. "*" alone matches every host. A name
// matches itself and its subdomains ("example.com" and ".example.com" both match example.com and
// www.example.com, never notexample.com; case and a trailing dot do not matter). An IP literal
// matches the same address, and with "/bits" a CIDR block (IPv6 entries may be bracketed).
// Unlike curl, an entry may end in ":PORT" to match only that port (as Go's client allows).
//
// Proxy URLs: [SCHEME://][user[:password]@]host[:port], port 1080 when absent (curl's default;
// 443 for https://); the user and password are percent-decoded. Schemes, as curl spells them:
//   http://     (the default) absolute-form requests, CONNECT tunnels for https; credentials go
//               as Proxy-Authorization: Basic
//   https://    the same, inside TLS with the proxy: its certificate is checked against the
//               proxy's name with the trust origins get (the system store and the client's CA
//               file). An https origin's TLS then runs inside that session (TLS in TLS), checked
//               against the origin's name.
//   socks5://   SOCKS5 (RFC 1928), the origin's name resolved here; socks5h:// lets the proxy
//               resolve it. Credentials use RFC 1929's username/password method.
//   socks4://   SOCKS4, resolved here (IPv4 only); socks4a:// lets the proxy resolve it. The user
//               goes as SOCKS4's user id (SOCKS4 has no password: one given is an error).
// Any other scheme is refused with an error that names the variable.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace cidrun::net {

struct Proxy {
  enum class Kind { kHttp, kHttps, kSocks4, kSocks4a, kSocks5, kSocks5h };
  Kind kind = Kind::kHttp;
  std::string host;  // IPv6 without brackets
  uint16_t port = 1080;
  std::string user;      // decoded; empty when the URL has no userinfo
  std::string password;  // decoded
  bool has_credentials = false;
  // "SCHEME://host:port": the proxy as messages name it (never the credentials).
  std::string display() const;
  // The Proxy-Authorization field's value ("Basic ..."), "" without credentials.
  std::string authorization() const;
  bool socks() const { return kind != Kind::kHttp && kind != Kind::kHttps; }
  // Whether the connection to the proxy itself is TLS (https://).
  bool tls() const { return kind == Kind::kHttps; }
  // Whether the proxy resolves the origin's name (socks4a, socks5h; http proxies always do).
  bool resolves_names() const { return kind != Kind::kSocks4 && kind != Kind::kSocks5; }
};

// Parses a proxy URL; `source` (e.g. "https_proxy") names where it came from in errors. Throws
// Error with one line naming the proxy (its credentials masked) when the URL is unusable.
Proxy parse_proxy_url(std::string_view url, std::string_view source);

// Whether no_proxy (its syntax above) says host:port is reached without a proxy. host is a name
// or an IP literal (IPv6 with or without brackets).
bool no_proxy_matches(std::string_view no_proxy, std::string_view host, uint16_t port);

// The proxy settings of a process, read once.
class ProxyConfig {
 public:
  using Getenv = std::function<const char*(const char*)>;
  // Reads the variables through getenv (tests pass their own).
  static ProxyConfig from_env(const Getenv& getenv);
  static ProxyConfig from_env();
  // No proxy at all.
  ProxyConfig() = default;

  // The proxy for a request to host:port (tls: an https URL), or nullopt to connect directly.
  // Throws Error (naming the variable and the proxy) when the variable that applies is unusable.
  std::optional<Proxy> for_url(bool tls, std::string_view host, uint16_t port) const;

 private:
  struct Setting {
    std::string name;  // the variable it came from
    std::string value;
  };
  std::optional<Setting> http_;
  std::optional<Setting> https_;
  std::string no_proxy_;
};

}  // namespace cidrun::net
