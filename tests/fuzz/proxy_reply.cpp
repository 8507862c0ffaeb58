// What a proxy answers before the origin's bytes: SOCKS4/4a and SOCKS5/5h replies (RFC 1928,
// with RFC 1929's username/password step) and an HTTP proxy's answer to CONNECT, each read by
// http::Client over a real socket (fuzz/loopback_peer.h plays the proxy; whatever follows its
// replies is the origin's response). The first input byte picks the proxy's kind; the rest is
// what it sends.
#include <optional>

#include "fuzz.h"
#include "loopback_peer.h"
#include "net/http_client.h"
#include "net/proxy.h"
#include "util/error.h"

using namespace cidrun;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static fuzz::LoopbackPeer peer;
  if (size == 0) return 0;
  static constexpr const char* kSchemes[] = {"socks4://",  "socks4a://", "socks5://",
                                             "socks5h://", "http://",    "socks5://user:pw@"};
  uint8_t pick = data[0] % 6;
  peer.answer_with(fuzz::text_of(data + 1, size - 1));
  std::string proxy_url = std::string(kSchemes[pick]) + "127.0.0.1:" + std::to_string(peer.port());
  net::ProxyConfig proxies = net::ProxyConfig::from_env([&](const char* name) -> const char* {
    return std::string_view(name) == "all_proxy" ? proxy_url.c_str() : nullptr;
  });
  // The https case keeps one client: building its TLS context (the system's trust store) took
  // most of each run, and the CONNECT answer, parsed before any TLS, is what is fuzzed here.
  std::optional<http::Client> fresh_client;
  auto tunnel_client = [&]() -> http::Client& {
    static http::Client c(http::ClientOptions{.proxy = proxies});  // made on the first pick 4
    return c;
  };
  http::Client& client =
      pick == 4 ? tunnel_client() : fresh_client.emplace(http::ClientOptions{.proxy = proxies});
  http::Request q;
  // An http proxy is asked for a tunnel only for https: the CONNECT answer is what is parsed
  // (TLS with the origin then fails on whatever follows).
  q.url = pick == 4 ? "https://origin.example:443/x" : "http://127.0.0.2:8080/ipfs/x";
  q.connect_timeout_ms = 2000;
  q.head_timeout_ms = 2000;
  q.total_timeout_ms = 4000;
  q.max_body = 64 * 1024;
  http::Response r = client.perform(q);
  (void)r.describe();
  return 0;
}
