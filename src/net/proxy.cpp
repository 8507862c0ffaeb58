#include "net/proxy.h"

#include <arpa/inet.h>
#include <openssl/evp.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <utility>
#include <vector>

#include "net/http_request.h"
#include "util/error.h"

namespace cidrun::net {
namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

// The URL with its userinfo (if any) replaced by "***", for messages.
std::string masked(std::string_view url) {
  size_t start = url.find("://");
  start = start == std::string_view::npos ? 0 : start + 3;
  size_t end = url.find_first_of("/?#", start);
  std::string_view authority = url.substr(start, end == std::string_view::npos ? end : end - start);
  size_t at = authority.rfind('@');
  if (at == std::string_view::npos) return std::string(url);
  return std::string(url.substr(0, start)) + "***" + std::string(url.substr(start + at));
}

std::optional<uint16_t> parse_port(std::string_view s) {
  unsigned v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || p != s.data() + s.size() || v == 0 || v > 65535) {
    return std::nullopt;
  }
  return static_cast<uint16_t>(v);
}

bool valid_name(std::string_view host) {
  return !host.empty() && std::all_of(host.begin(), host.end(), [](unsigned char c) {
    return std::isalnum(c) || c == '-' || c == '.' || c == '_';
  });
}

// A 16-byte address (IPv4 in the first 4 bytes) and its family, when s is an IP literal.
struct Ip {
  int family = 0;
  std::array<uint8_t, 16> bytes{};
};

std::optional<Ip> parse_ip(std::string_view s) {
  if (s.size() >= 2 && s.front() == '[' && s.back() == ']') s = s.substr(1, s.size() - 2);
  if (s.empty() || s.size() >= 64) return std::nullopt;
  std::string z(s);
  Ip ip;
  if (::inet_pton(AF_INET, z.c_str(), ip.bytes.data()) == 1) {
    ip.family = AF_INET;
    return ip;
  }
  if (::inet_pton(AF_INET6, z.c_str(), ip.bytes.data()) == 1) {
    ip.family = AF_INET6;
    return ip;
  }
  return std::nullopt;
}

bool same_prefix(const Ip& a, const Ip& b, unsigned bits) {
  size_t full = bits / 8;
  if (std::memcmp(a.bytes.data(), b.bytes.data(), full) != 0) return false;
  unsigned rest = bits % 8;
  if (rest == 0) return true;
  auto mask = static_cast<uint8_t>(0xff << (8 - rest));
  return ((a.bytes[full] ^ b.bytes[full]) & mask) == 0;
}

// One no_proxy entry against an IP host: the same address, or inside entry's CIDR block.
bool ip_entry_matches(std::string_view entry, const Ip& host) {
  size_t slash = entry.find('/');
  auto ip = parse_ip(entry.substr(0, slash));
  if (!ip || ip->family != host.family) return false;
  unsigned max_bits = host.family == AF_INET ? 32 : 128;
  unsigned bits = max_bits;
  if (slash != std::string_view::npos) {
    std::string_view b = entry.substr(slash + 1);
    auto [p, ec] = std::from_chars(b.data(), b.data() + b.size(), bits);
    if (b.empty() || ec != std::errc() || p != b.data() + b.size() || bits > max_bits) {
      return false;
    }
  }
  return same_prefix(*ip, host, bits);
}

// One no_proxy entry against a host name: itself or a subdomain of it.
bool name_entry_matches(std::string_view entry, std::string_view name) {
  if (!entry.empty() && entry.back() == '.') entry.remove_suffix(1);
  if (!entry.empty() && entry.front() == '.') entry.remove_prefix(1);
  if (entry.empty() || entry.size() > name.size()) return false;
  std::string e = lower(entry);
  if (e.size() == name.size()) return e == name;
  return name[name.size() - e.size() - 1] == '.' && name.substr(name.size() - e.size()) == e;
}

}  // namespace

std::string Proxy::display() const {
  std::string h = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  const char* scheme = "http";
  switch (kind) {
    case Kind::kHttp:
      break;
    case Kind::kHttps:
      scheme = "https";
      break;
    case Kind::kSocks4:
      scheme = "socks4";
      break;
    case Kind::kSocks4a:
      scheme = "socks4a";
      break;
    case Kind::kSocks5:
      scheme = "socks5";
      break;
    case Kind::kSocks5h:
      scheme = "socks5h";
      break;
  }
  return std::string(scheme) + "://" + h + ":" + std::to_string(port);
}

std::string Proxy::authorization() const {
  if (!has_credentials) return "";
  std::string plain = user + ":" + password;
  std::vector<unsigned char> out(4 * ((plain.size() + 2) / 3) + 1);
  int n = EVP_EncodeBlock(out.data(), reinterpret_cast<const unsigned char*>(plain.data()),
                          static_cast<int>(plain.size()));
  return "Basic " + std::string(reinterpret_cast<const char*>(out.data()), static_cast<size_t>(n));
}

Proxy parse_proxy_url(std::string_view url, std::string_view source) {
  auto fail = [&](const std::string& why) -> Error {
    return Error("bad proxy " + std::string(source) + "=" + masked(url) + ": " + why);
  };
  std::string_view rest = url;
  Proxy p;
  if (size_t sep = rest.find("://"); sep != std::string_view::npos) {
    static const std::array<std::pair<std::string_view, Proxy::Kind>, 6> kSchemes{{
        {"http", Proxy::Kind::kHttp},
        {"https", Proxy::Kind::kHttps},
        {"socks4", Proxy::Kind::kSocks4},
        {"socks4a", Proxy::Kind::kSocks4a},
        {"socks5", Proxy::Kind::kSocks5},
        {"socks5h", Proxy::Kind::kSocks5h},
    }};
    std::string scheme = lower(rest.substr(0, sep));
    auto known = std::find_if(kSchemes.begin(), kSchemes.end(),
                              [&](const auto& k) { return k.first == scheme; });
    if (known == kSchemes.end()) {
      throw fail(scheme +
                 ":// proxies are not supported (http://, https://, socks4://, socks4a://, "
                 "socks5:// and socks5h:// are)");
    }
    p.kind = known->second;
    if (p.kind == Proxy::Kind::kHttps) p.port = 443;  // curl's default for https proxies
    rest.remove_prefix(sep + 3);
  }
  // A path after the authority ("http://proxy:3128/") means nothing for a proxy: dropped.
  std::string_view authority = rest.substr(0, rest.find_first_of("/?#"));
  if (size_t at = authority.rfind('@'); at != std::string_view::npos) {
    std::string_view userinfo = authority.substr(0, at);
    authority.remove_prefix(at + 1);
    size_t colon = userinfo.find(':');
    auto user = percent_decode(userinfo.substr(0, colon));
    auto password = colon == std::string_view::npos ? std::optional<std::string>("")
                                                    : percent_decode(userinfo.substr(colon + 1));
    if (!user || !password) throw fail("bad percent-encoding in the credentials");
    p.user = *user;
    p.password = *password;
    p.has_credentials = true;
  }
  std::string_view port;
  if (!authority.empty() && authority.front() == '[') {
    size_t close = authority.find(']');
    if (close == std::string_view::npos) throw fail("unclosed [ in the host");
    std::string_view literal = authority.substr(1, close - 1);
    auto ip = parse_ip(literal);
    if (!ip || ip->family != AF_INET6) throw fail("bad IPv6 address");
    p.host = std::string(literal);
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') throw fail("junk after the IPv6 address");
      port = after.substr(1);
      if (port.empty()) throw fail("empty port");
    }
  } else {
    size_t colon = authority.find(':');
    p.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) {
      port = authority.substr(colon + 1);
      if (port.empty()) throw fail("empty port");
    }
    if (p.host.empty()) throw fail("no host");
    if (!valid_name(p.host)) throw fail("bad host name");
  }
  if (!port.empty()) {
    auto v = parse_port(port);
    if (!v) throw fail("bad port " + std::string(port));
    p.port = *v;
  }
  bool socks4 = p.kind == Proxy::Kind::kSocks4 || p.kind == Proxy::Kind::kSocks4a;
  if (socks4 && !p.password.empty()) throw fail("SOCKS4 has no passwords (only a user id)");
  // RFC 1929 carries each in one length byte.
  if (p.user.size() > 255 || p.password.size() > 255)
    throw fail("user name or password longer than 255 bytes");
  return p;
}

bool no_proxy_matches(std::string_view no_proxy, std::string_view host, uint16_t port) {
  auto blank = [](char c) { return c == ' ' || c == '\t'; };
  std::string_view all = no_proxy;
  while (!all.empty() && blank(all.front())) all.remove_prefix(1);
  while (!all.empty() && blank(all.back())) all.remove_suffix(1);
  if (all == "*") return true;
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  if (host.empty()) return false;
  std::optional<Ip> ip = parse_ip(host);
  std::string name;
  if (!ip) {
    name = lower(host);
    if (name.back() == '.') name.pop_back();
  }
  size_t i = 0;
  while (i < no_proxy.size()) {
    size_t j = i;
    while (j < no_proxy.size() && no_proxy[j] != ',' && !blank(no_proxy[j])) ++j;
    std::string_view entry = no_proxy.substr(i, j - i);
    i = j + 1;
    if (entry.empty()) continue;
    // An optional ":PORT": after "]" for bracketed IPv6, else when the entry has one colon only
    // (a bare IPv6 address has several and never carries a port).
    std::optional<uint16_t> want_port;
    if (entry.front() == '[') {
      size_t close = entry.find(']');
      if (close == std::string_view::npos) continue;
      if (close + 1 < entry.size()) {
        if (entry[close + 1] != ':') continue;
        want_port = parse_port(entry.substr(close + 2));
        if (!want_port) continue;
      }
      entry = entry.substr(1, close - 1);
    } else if (size_t colon = entry.find(':');
               colon != std::string_view::npos &&
               entry.find(':', colon + 1) == std::string_view::npos) {
      want_port = parse_port(entry.substr(colon + 1));
      if (!want_port) continue;
      entry = entry.substr(0, colon);
    }
    if (want_port && *want_port != port) continue;
    if (ip ? ip_entry_matches(entry, *ip) : name_entry_matches(entry, name)) return true;
  }
  return false;
}

ProxyConfig ProxyConfig::from_env(const Getenv& getenv) {
  auto first = [&](std::initializer_list<const char*> names) -> std::optional<Setting> {
    for (const char* n : names) {
      const char* v = getenv(n);
      if (v && *v) return Setting{n, v};
    }
    return std::nullopt;
  };
  ProxyConfig c;
  c.http_ = first({"http_proxy", "all_proxy", "ALL_PROXY"});
  c.https_ = first({"https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"});
  if (auto n = first({"no_proxy", "NO_PROXY"})) c.no_proxy_ = n->value;
  return c;
}

ProxyConfig ProxyConfig::from_env() {
  return from_env([](const char* name) { return std::getenv(name); });
}

std::optional<Proxy> ProxyConfig::for_url(bool tls, std::string_view host, uint16_t port) const {
  const auto& setting = tls ? https_ : http_;
  if (!setting || no_proxy_matches(no_proxy_, host, port)) return std::nullopt;
  return parse_proxy_url(setting->value, setting->name);
}

}  // namespace cidrun::net
