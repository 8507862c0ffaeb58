// The Delegated Routing V1 HTTP API served by `cidrun serve`
// (https://specs.ipfs.tech/routing/http-routing-v1/): GET /routing/v1/providers/{cid} names this
// node for the blocks its store holds, every configured peer (a group of nodes that use this one
// as their router), and the providers that announced the CID with PUT /routing/v1/providers.
// Answers are JSON, or NDJSON when the client accepts application/x-ndjson.
//
// Announcements are hints, not trusted: clients verify every block they then fetch. They are
// bounded (records per CID, CIDs in all) and expire.
#pragma once

#include <chrono>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "exchange/routing.h"
#include "net/http_server.h"
#include "store/blockstore.h"

namespace cidrun::gateway {

class RoutingService {
 public:
  explicit RoutingService(BlockStore& store) : store_(store) {}
  void set_self(exchange::routing::Provider self);
  void add_peer(exchange::routing::Provider peer);

  // Whether the request is for this service (a /routing/v1/ path).
  static bool wants(const net::HttpRequest& req);
  void handle(const net::HttpRequest& req, net::HttpResponse& res);

 private:
  static constexpr size_t kMaxAnnouncedCids = 100'000;
  static constexpr size_t kMaxRecordsPerCid = 32;
  struct Announced {
    exchange::routing::Provider provider;
    std::chrono::steady_clock::time_point expires;
  };
  void find(const std::string& cid_text, bool ndjson, net::HttpResponse& res);
  void announce(const net::HttpRequest& req, net::HttpResponse& res);

  BlockStore& store_;
  std::mutex mu_;
  std::vector<exchange::routing::Provider> self_, peers_;
  std::map<std::string, std::vector<Announced>> announced_;  // by multihash
};

}  // namespace cidrun::gateway
