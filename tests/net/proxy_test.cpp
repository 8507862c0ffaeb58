// Proxy selection from the environment (curl's variables and precedence), no_proxy matching and
// proxy URL parsing.
#include "net/proxy.h"

#include <gtest/gtest.h>

#include <map>

#include "util/error.h"

namespace cidrun::net {
namespace {

ProxyConfig config(const std::map<std::string, std::string>& env) {
  return ProxyConfig::from_env([&](const char* name) -> const char* {
    auto it = env.find(name);
    return it == env.end() ? nullptr : it->second.c_str();
  });
}

// The proxy chosen for a URL, as "host:port", or "direct".
std::string route(const ProxyConfig& c, bool tls, const std::string& host, uint16_t port = 80) {
  auto p = c.for_url(tls, host, port);
  return p ? p->host + ":" + std::to_string(p->port) : "direct";
}

TEST(netProxy, HttpUsesOnlyLowercaseHttpProxyThenAllProxy) {
  EXPECT_EQ(route(config({{"http_proxy", "http://a:1"}}), false, "h"), "a:1");
  // Uppercase HTTP_PROXY can be set by a CGI request's "Proxy:" header: never read.
  EXPECT_EQ(route(config({{"HTTP_PROXY", "http://a:1"}}), false, "h"), "direct");
  EXPECT_EQ(route(config({{"HTTP_PROXY", "http://a:1"}, {"ALL_PROXY", "b:2"}}), false, "h"), "b:2");
  EXPECT_EQ(route(config({{"all_proxy", "c:3"}, {"ALL_PROXY", "b:2"}}), false, "h"), "c:3");
  EXPECT_EQ(route(config({{"http_proxy", "a:1"}, {"all_proxy", "c:3"}}), false, "h"), "a:1");
  // http_proxy does not apply to https URLs, nor https_proxy to http ones.
  EXPECT_EQ(route(config({{"http_proxy", "a:1"}}), true, "h"), "direct");
  EXPECT_EQ(route(config({{"https_proxy", "a:1"}}), false, "h"), "direct");
  // An empty variable is unset.
  EXPECT_EQ(route(config({{"http_proxy", ""}, {"all_proxy", "c:3"}}), false, "h"), "c:3");
  EXPECT_EQ(route(config({}), false, "h"), "direct");
}

TEST(netProxy, HttpsUsesHttpsProxyEitherCaseThenAllProxy) {
  EXPECT_EQ(route(config({{"https_proxy", "a:1"}}), true, "h"), "a:1");
  EXPECT_EQ(route(config({{"HTTPS_PROXY", "b:2"}}), true, "h"), "b:2");
  EXPECT_EQ(route(config({{"https_proxy", "a:1"}, {"HTTPS_PROXY", "b:2"}}), true, "h"), "a:1");
  EXPECT_EQ(route(config({{"ALL_PROXY", "c:3"}}), true, "h"), "c:3");
  EXPECT_EQ(route(config({{"HTTPS_PROXY", "b:2"}, {"all_proxy", "c:3"}}), true, "h"), "b:2");
}

TEST(netProxy, NoProxyVariablesLowercaseFirst) {
  auto c = config({{"http_proxy", "a:1"}, {"no_proxy", "x.org"}, {"NO_PROXY", "y.org"}});
  EXPECT_EQ(route(c, false, "x.org"), "direct");
  EXPECT_EQ(route(c, false, "y.org"), "a:1");
  auto upper = config({{"http_proxy", "a:1"}, {"NO_PROXY", "y.org"}});
  EXPECT_EQ(route(upper, false, "y.org"), "direct");
  // Loopback is proxied unless listed (as curl does).
  EXPECT_EQ(route(upper, false, "127.0.0.1"), "a:1");
  EXPECT_EQ(route(upper, false, "localhost"), "a:1");
}

TEST(netProxy, NoProxyNamesMatchThemselvesAndSubdomains) {
  EXPECT_TRUE(no_proxy_matches("example.com", "example.com", 80));
  EXPECT_TRUE(no_proxy_matches("example.com", "www.example.com", 80));
  EXPECT_TRUE(no_proxy_matches(".example.com", "www.example.com", 80));
  EXPECT_TRUE(no_proxy_matches(".example.com", "example.com", 80));
  EXPECT_TRUE(no_proxy_matches("Example.COM.", "a.b.example.com.", 80));
  EXPECT_FALSE(no_proxy_matches("example.com", "notexample.com", 80));
  EXPECT_FALSE(no_proxy_matches("www.example.com", "example.com", 80));
  EXPECT_FALSE(no_proxy_matches("", "example.com", 80));
  // Lists: commas and blanks, empty entries skipped.
  EXPECT_TRUE(no_proxy_matches("a.org, ,b.org c.org", "c.org", 80));
  EXPECT_TRUE(no_proxy_matches(",,a.org,,", "a.org", 80));
  EXPECT_FALSE(no_proxy_matches("a.org,b.org", "d.org", 80));
}

TEST(netProxy, NoProxyStarAloneMatchesEverything) {
  EXPECT_TRUE(no_proxy_matches("*", "anything.example", 80));
  EXPECT_TRUE(no_proxy_matches(" * ", "10.1.2.3", 80));
  // As in curl, "*" is a wildcard only on its own.
  EXPECT_FALSE(no_proxy_matches("*,a.org", "b.org", 80));
  EXPECT_FALSE(no_proxy_matches("*.a.org", "b.a.org", 80));
}

TEST(netProxy, NoProxyIpLiteralsAndCidr) {
  EXPECT_TRUE(no_proxy_matches("127.0.0.1", "127.0.0.1", 80));
  EXPECT_FALSE(no_proxy_matches("127.0.0.1", "127.0.0.2", 80));
  EXPECT_TRUE(no_proxy_matches("10.0.0.0/8", "10.200.3.4", 80));
  EXPECT_FALSE(no_proxy_matches("10.0.0.0/8", "11.0.0.1", 80));
  EXPECT_TRUE(no_proxy_matches("192.168.1.0/23", "192.168.0.9", 80));
  EXPECT_FALSE(no_proxy_matches("192.168.1.0/24", "192.168.0.9", 80));
  EXPECT_FALSE(no_proxy_matches("10.0.0.0/33", "10.0.0.1", 80));
  EXPECT_TRUE(no_proxy_matches("::1", "::1", 80));
  EXPECT_TRUE(no_proxy_matches("::1", "[::1]", 80));
  EXPECT_TRUE(no_proxy_matches("[::1]", "::1", 80));
  EXPECT_TRUE(no_proxy_matches("fd00::/8", "fd12:3456::1", 80));
  EXPECT_FALSE(no_proxy_matches("fd00::/8", "fe80::1", 80));
  // An address is not a name: no suffix matching on it, and a name entry never matches an IP.
  EXPECT_FALSE(no_proxy_matches("0.0.1", "127.0.0.1", 80));
  EXPECT_FALSE(no_proxy_matches("localhost", "127.0.0.1", 80));
  EXPECT_FALSE(no_proxy_matches("127.0.0.1", "::1", 80));
}

TEST(netProxy, NoProxyEntriesMayNameAPort) {
  EXPECT_TRUE(no_proxy_matches("a.org:8080", "a.org", 8080));
  EXPECT_FALSE(no_proxy_matches("a.org:8080", "a.org", 80));
  EXPECT_TRUE(no_proxy_matches("127.0.0.1:99", "127.0.0.1", 99));
  EXPECT_FALSE(no_proxy_matches("127.0.0.1:99", "127.0.0.1", 100));
  EXPECT_TRUE(no_proxy_matches("[::1]:99", "::1", 99));
  EXPECT_FALSE(no_proxy_matches("[::1]:99", "::1", 100));
  EXPECT_FALSE(no_proxy_matches("a.org:notaport", "a.org", 80));
}

TEST(netProxy, ProxyUrlsAndCredentials) {
  Proxy p = parse_proxy_url("http://us%40er:p%3Ass@proxy.lan:3128/", "http_proxy");
  EXPECT_EQ(p.host, "proxy.lan");
  EXPECT_EQ(p.port, 3128);
  EXPECT_EQ(p.user, "us@er");
  EXPECT_EQ(p.password, "p:ss");
  // base64("us@er:p:ss")
  EXPECT_EQ(p.authorization(), "Basic dXNAZXI6cDpzcw==");
  EXPECT_EQ(p.display(), "http://proxy.lan:3128");
  Proxy bare = parse_proxy_url("proxy.lan", "all_proxy");
  EXPECT_EQ(bare.port, 1080);  // curl's default proxy port
  EXPECT_FALSE(bare.has_credentials);
  EXPECT_EQ(bare.authorization(), "");
  Proxy v6 = parse_proxy_url("HTTP://[::1]:8888", "https_proxy");
  EXPECT_EQ(v6.host, "::1");
  EXPECT_EQ(v6.display(), "http://[::1]:8888");
  Proxy user_only = parse_proxy_url("http://alice@h:1", "http_proxy");
  EXPECT_EQ(user_only.authorization(), "Basic YWxpY2U6");
  EXPECT_FALSE(p.socks());
  EXPECT_FALSE(p.tls());
  EXPECT_TRUE(p.resolves_names());
  // https://: TLS to the proxy, then the same protocol as http://; port 443 when absent.
  Proxy s = parse_proxy_url("HTTPS://bob:pw@proxy.lan", "https_proxy");
  EXPECT_EQ(s.kind, Proxy::Kind::kHttps);
  EXPECT_TRUE(s.tls());
  EXPECT_FALSE(s.socks());
  EXPECT_TRUE(s.resolves_names());
  EXPECT_EQ(s.port, 443);
  EXPECT_EQ(s.display(), "https://proxy.lan:443");  // never the credentials
  EXPECT_EQ(s.authorization(), "Basic Ym9iOnB3");   // base64("bob:pw")
  EXPECT_EQ(parse_proxy_url("https://[::1]:8443", "all_proxy").display(), "https://[::1]:8443");
}

TEST(netProxy, SocksSchemesAsCurlSpellsThem) {
  struct Case {
    std::string url;
    Proxy::Kind kind;
    bool resolves_names;
    std::string display;
  };
  for (const auto& c : std::vector<Case>{
           {"socks5://h", Proxy::Kind::kSocks5, false, "socks5://h:1080"},
           {"SOCKS5H://[::1]:9050", Proxy::Kind::kSocks5h, true, "socks5h://[::1]:9050"},
           {"socks4://h:1", Proxy::Kind::kSocks4, false, "socks4://h:1"},
           {"socks4a://h:2", Proxy::Kind::kSocks4a, true, "socks4a://h:2"},
       }) {
    Proxy p = parse_proxy_url(c.url, "all_proxy");
    EXPECT_EQ(p.kind, c.kind) << c.url;
    EXPECT_TRUE(p.socks()) << c.url;
    EXPECT_EQ(p.resolves_names(), c.resolves_names) << c.url;
    EXPECT_EQ(p.display(), c.display);
  }
  Proxy creds = parse_proxy_url("socks5h://al%20ice:s%3Acret@h:1080", "all_proxy");
  EXPECT_EQ(creds.user, "al ice");
  EXPECT_EQ(creds.password, "s:cret");
  EXPECT_EQ(creds.display(), "socks5h://h:1080");  // never the credentials
  EXPECT_EQ(parse_proxy_url("socks4a://userid@h", "all_proxy").user, "userid");
}

TEST(netProxy, BadProxyUrlsAreOneLineErrorsWithoutTheSecret) {
  struct Case {
    std::string url;
    std::string error;
  };
  for (const auto& c : std::vector<Case>{
           {"quic://h:443", "quic:// proxies are not supported (http://, https://, socks4://"},
           {"ftp://h:21", "ftp:// proxies are not supported"},
           {"socks4://u:pw@h", "SOCKS4 has no passwords"},
           {"socks5://" + std::string(256, 'u') + ":p@h", "longer than 255 bytes"},
           {"http://h:0", "bad port 0"},
           {"http://h:99999", "bad port 99999"},
           {"http://h:", "empty port"},
           {"http://:3128", "no host"},
           {"http://ba d:1", "bad host name"},
           {"http://[::1:1", "unclosed ["},
           {"http://[nothex]:1", "bad IPv6"},
           {"http://u:%zz@h:1", "bad percent-encoding"},
           {"garbage!", "bad host name"},
       }) {
    try {
      parse_proxy_url(c.url, "https_proxy");
      ADD_FAILURE() << c.url << " accepted";
    } catch (const Error& e) {
      std::string m = e.what();
      EXPECT_NE(m.find("bad proxy https_proxy="), std::string::npos) << m;
      EXPECT_NE(m.find(c.error), std::string::npos) << m;
      EXPECT_EQ(m.find('\n'), std::string::npos) << m;
    }
  }
  try {
    parse_proxy_url("https://alice:s3cret@h:99999", "ALL_PROXY");
    ADD_FAILURE();
  } catch (const Error& e) {
    std::string m = e.what();
    EXPECT_EQ(m.find("s3cret"), std::string::npos) << m;
    EXPECT_NE(m.find("https://***@h:99999"), std::string::npos) << m;
  }
  // The error shows when the variable is used, naming it; no_proxy still wins.
  auto c = config({{"https_proxy", "ftp://h:1"}, {"no_proxy", "skip.me"}});
  EXPECT_THROW(c.for_url(true, "a.org", 443), Error);
  EXPECT_FALSE(c.for_url(true, "skip.me", 443));
  EXPECT_FALSE(c.for_url(false, "a.org", 80));
}

}  // namespace
}  // namespace cidrun::net
