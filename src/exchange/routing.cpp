#include "exchange/routing.h"

#include <nlohmann/json.hpp>

#include "net/http_client.h"
#include "p2p/multiaddr.h"
#include "util/error.h"

namespace cidrun::exchange::routing {
namespace {

using json = nlohmann::json;

bool has(const std::vector<std::string>& v, std::string_view s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

std::optional<Provider> from_json(const json& j) {
  if (!j.is_object()) return std::nullopt;
  std::string schema = j.value("Schema", "");
  if (schema != "peer" && schema != "bitswap") return std::nullopt;
  Provider p;
  if (!j.contains("ID") || !j["ID"].is_string()) return std::nullopt;
  p.id = j["ID"].get<std::string>();
  if (auto it = j.find("Addrs"); it != j.end() && it->is_array()) {
    for (const auto& a : *it) {
      if (a.is_string() && p.addrs.size() < 64) p.addrs.push_back(a.get<std::string>());
    }
  }
  if (auto it = j.find("Protocols"); it != j.end() && it->is_array()) {
    for (const auto& a : *it) {
      if (a.is_string() && p.protocols.size() < 64) p.protocols.push_back(a.get<std::string>());
    }
  }
  if (schema == "bitswap" && p.protocols.empty()) p.protocols.emplace_back(kTransportBitswap);
  return p;
}

}  // namespace

std::vector<Provider> parse_providers(std::string_view body, bool ndjson) {
  std::vector<Provider> out;
  auto add = [&](const json& j) {
    if (out.size() >= kMaxProviders) return;
    if (auto p = from_json(j)) out.push_back(std::move(*p));
  };
  if (ndjson) {
    size_t i = 0;
    while (i < body.size()) {
      size_t j = body.find('\n', i);
      if (j == std::string_view::npos) j = body.size();
      std::string_view line = body.substr(i, j - i);
      i = j + 1;
      if (line.find_first_not_of(" \r\t") == std::string_view::npos) continue;
      json v = json::parse(line, nullptr, false);
      if (v.is_discarded()) throw Error("routing: a malformed NDJSON line");
      add(v);
    }
    return out;
  }
  json v = json::parse(body, nullptr, false);
  if (v.is_discarded() || !v.is_object()) throw Error("routing: the answer is not JSON");
  if (auto it = v.find("Providers"); it != v.end() && it->is_array()) {
    for (const auto& r : *it) add(r);
  }
  return out;
}

std::string provider_json(const Provider& p) {
  json j = {{"Schema", "peer"}, {"ID", p.id}, {"Addrs", p.addrs}, {"Protocols", p.protocols}};
  return j.dump();
}

std::vector<std::string> provider_sources(const Provider& p) {
  std::vector<std::string> out;
  bool bitswap = p.protocols.empty() || has(p.protocols, kTransportBitswap);
  bool gateway = has(p.protocols, kTransportGateway);
  for (const auto& a : p.addrs) {
    // Gateways: a TCP address with /http, /https or /tls/http after it.
    std::string_view s = a;
    for (std::string_view tail : {"/tls/http", "/https", "/http"}) {
      if (!gateway || s.size() <= tail.size() || s.substr(s.size() - tail.size()) != tail) continue;
      try {
        p2p::Multiaddr m = p2p::Multiaddr::parse(s.substr(0, s.size() - tail.size()));
        if (!m.has_tcp) break;
        std::string host = m.ip6.empty() ? m.host() : "[" + m.ip6 + "]";
        out.push_back((tail == "/http" ? "http://" : "https://") + host + ":" +
                      std::to_string(m.port));
      } catch (const Error&) {
      }
      break;
    }
    if (!bitswap) continue;
    try {
      p2p::Multiaddr m = p2p::Multiaddr::parse(a);
      if (!m.has_tcp) continue;
      m.peer = p2p::PeerId::parse(p.id);
      std::string url = m.str();
      if (std::find(out.begin(), out.end(), url) == out.end()) out.push_back(url);
    } catch (const Error&) {
      // Other transports (quic, webrtc, ...) and malformed addresses are not for us.
    }
  }
  return out;
}

std::vector<Provider> find_providers(const std::string& base, const Cid& cid) {
  http::Request req;
  req.url = base + "/routing/v1/providers/" + cid.str();
  req.headers = {"Accept: application/x-ndjson, application/json"};
  req.total_timeout_ms = 30'000;
  req.max_body = 4u << 20;
  http::Response res = http::Client::shared().perform(req);
  if (res.status == 404 && res.error.empty()) return {};
  if (!res.ok()) throw Error("router " + base + ": " + res.describe());
  bool ndjson = res.content_type.find("ndjson") != std::string::npos;
  return parse_providers(as_string(res.body), ndjson);
}

}  // namespace cidrun::exchange::routing
