#include "gateway/routing.h"

#include <nlohmann/json.hpp>

#include "p2p/peer_id.h"
#include "util/error.h"

namespace cidrun::gateway {
namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;
constexpr auto kAnnouncementTtl = std::chrono::hours(24);
constexpr std::string_view kPrefix = "/routing/v1/providers";

void send_error(net::HttpResponse& res, int status, const std::string& msg) {
  res.set_status(status);
  res.add_header("Content-Type", "text/plain; charset=utf-8");
  res.send(msg + "\n");
}

std::string key_of(const Cid& c) {
  return std::string(as_string(c.multihash()));
}

}  // namespace

void RoutingService::set_self(exchange::routing::Provider self) {
  std::lock_guard l(mu_);
  self_ = {std::move(self)};
}

void RoutingService::add_peer(exchange::routing::Provider peer) {
  std::lock_guard l(mu_);
  peers_.push_back(std::move(peer));
}

bool RoutingService::wants(const net::HttpRequest& req) {
  return req.path.rfind("/routing/v1/", 0) == 0;
}

void RoutingService::handle(const net::HttpRequest& req, net::HttpResponse& res) {
  std::string_view path = req.path;
  if (path.rfind(kPrefix, 0) != 0)
    return send_error(res, 501, "only /routing/v1/providers is served here");
  std::string_view rest = path.substr(kPrefix.size());
  if (req.method == "PUT" && (rest.empty() || rest == "/")) return announce(req, res);
  if (req.method != "GET" && req.method != "HEAD") {
    res.add_header("Allow", "GET, HEAD, PUT");
    return send_error(res, 405, "method " + req.method + " not allowed");
  }
  if (rest.size() < 2 || rest[0] != '/') return send_error(res, 400, "missing CID");
  bool ndjson = req.header("accept").value_or("").find("application/x-ndjson") != std::string::npos;
  find(std::string(rest.substr(1)), ndjson, res);
}

void RoutingService::find(const std::string& cid_text, bool ndjson, net::HttpResponse& res) {
  Cid cid;
  try {
    cid = Cid::parse(cid_text);
  } catch (const Error& e) {
    return send_error(res, 400, std::string("bad CID: ") + e.what());
  }
  std::vector<exchange::routing::Provider> out;
  bool here = false;
  try {
    here = store_.has(cid);
  } catch (const Error&) {
  }
  {
    std::lock_guard l(mu_);
    if (here) out = self_;
    out.insert(out.end(), peers_.begin(), peers_.end());
    auto it = announced_.find(key_of(cid));
    if (it != announced_.end()) {
      auto now = Clock::now();
      std::erase_if(it->second, [&](const Announced& a) { return a.expires <= now; });
      for (const auto& a : it->second) out.push_back(a.provider);
      if (it->second.empty()) announced_.erase(it);
    }
  }
  // The same peer named twice (configured and announced) is named once.
  std::vector<exchange::routing::Provider> unique;
  for (auto& p : out) {
    bool dup =
        std::any_of(unique.begin(), unique.end(), [&](const auto& u) { return u.id == p.id; });
    if (!dup) unique.push_back(std::move(p));
  }
  res.add_header("Cache-Control", "public, max-age=15");
  res.add_header("Vary", "Accept");
  std::string body;
  if (ndjson) {
    res.add_header("Content-Type", "application/x-ndjson");
    for (const auto& p : unique) body += exchange::routing::provider_json(p) + "\n";
  } else {
    res.add_header("Content-Type", "application/json");
    body = "{\"Providers\":[";
    for (size_t i = 0; i < unique.size(); ++i) {
      if (i) body += ",";
      body += exchange::routing::provider_json(unique[i]);
    }
    body += "]}";
  }
  res.send(body);
}

// IPIP-378's announcement records: {"Providers":[{"Schema":"announcement","Payload":{"CID":[..],
// "ID":"12D3...","Addrs":[..],"Protocols":[..]}}]}.
void RoutingService::announce(const net::HttpRequest& req, net::HttpResponse& res) {
  json body = json::parse(req.body, nullptr, false);
  if (body.is_discarded() || !body.is_object() || !body.contains("Providers") ||
      !body["Providers"].is_array())
    return send_error(res, 400, "expected {\"Providers\": [...]}");
  json results = json::array();
  size_t accepted = 0;
  for (const auto& rec : body["Providers"]) {
    if (!rec.is_object() || rec.value("Schema", "") != "announcement" || !rec.contains("Payload")) {
      results.push_back({{"Schema", "unknown"}});
      continue;
    }
    const json& p = rec["Payload"];
    json peer = {{"Schema", "peer"},
                 {"ID", p.value("ID", "")},
                 {"Addrs", p.value("Addrs", json::array())},
                 {"Protocols", p.value("Protocols", json::array())}};
    std::vector<exchange::routing::Provider> parsed;
    try {
      parsed = exchange::routing::parse_providers(json{{"Providers", {peer}}}.dump(), false);
      if (!parsed.empty()) p2p::PeerId::parse(parsed[0].id);  // throws for a bad ID
    } catch (const Error& e) {
      return send_error(res, 400, std::string("bad announcement: ") + e.what());
    }
    if (parsed.empty() || !p.contains("CID") || !p["CID"].is_array())
      return send_error(res, 400, "an announcement needs ID and CID");
    std::lock_guard l(mu_);
    for (const auto& c : p["CID"]) {
      if (!c.is_string()) continue;
      Cid cid;
      try {
        cid = Cid::parse(c.get<std::string>());
      } catch (const Error& e) {
        return send_error(res, 400, std::string("bad CID in announcement: ") + e.what());
      }
      std::string k = key_of(cid);
      if (!announced_.count(k) && announced_.size() >= kMaxAnnouncedCids) continue;
      auto& list = announced_[k];
      std::erase_if(list, [&](const Announced& a) { return a.provider.id == parsed[0].id; });
      if (list.size() >= kMaxRecordsPerCid) list.erase(list.begin());
      list.push_back({parsed[0], Clock::now() + kAnnouncementTtl});
      ++accepted;
    }
    results.push_back(
        {{"Schema", "announcement-response"},
         {"AdvisoryTTL",
          std::chrono::duration_cast<std::chrono::nanoseconds>(kAnnouncementTtl).count()}});
  }
  res.add_header("Content-Type", "application/json");
  res.send(json{{"ProvideResults", results}}.dump());
}

}  // namespace cidrun::gateway
