// Delegated routing records: JSON and NDJSON answers, and what a record means as block sources.
#include <gtest/gtest.h>

#include "exchange/routing.h"
#include "util/error.h"

namespace cidrun::exchange::routing {
namespace {

constexpr const char* kId = "12D3KooWBtg3aaRMjxwedh83aGiUkwSxDwUZkzuJcfaqUmo7R3pq";

TEST(Routing, ParsesJsonAndNdjson) {
  std::string rec =
      std::string("{\"Schema\":\"peer\",\"ID\":\"") + kId +
      "\",\"Addrs\":[\"/ip4/127.0.0.1/tcp/4001\",\"/ip4/127.0.0.1/udp/4001/quic-v1\"],"
      "\"Protocols\":[\"transport-bitswap\"]}";
  auto json = parse_providers("{\"Providers\":[" + rec + ",{\"Schema\":\"other\"}]}", false);
  ASSERT_EQ(json.size(), 1u);
  EXPECT_EQ(json[0].id, kId);
  EXPECT_EQ(json[0].addrs.size(), 2u);
  auto nd = parse_providers(rec + "\n\n" + rec + "\n", true);
  EXPECT_EQ(nd.size(), 2u);
  // Old "bitswap" records mean transport-bitswap.
  auto old = parse_providers(
      std::string("{\"Providers\":[{\"Schema\":\"bitswap\",\"ID\":\"") + kId + "\",\"Addrs\":[]}]}",
      false);
  ASSERT_EQ(old.size(), 1u);
  EXPECT_EQ(old[0].protocols, std::vector<std::string>{"transport-bitswap"});
  EXPECT_THROW(parse_providers("not json", false), Error);
  EXPECT_THROW(parse_providers("{\"a\":1}\nnot json\n", true), Error);
  EXPECT_TRUE(parse_providers("{\"Providers\":null}", false).empty());
}

TEST(Routing, ProviderSources) {
  Provider p{kId,
             {"/ip4/127.0.0.1/tcp/4001", "/ip4/127.0.0.1/udp/1/quic-v1",
              "/ip4/127.0.0.1/tcp/8080/http", "/dns4/gw.example/tcp/443/https", "garbage"},
             {"transport-bitswap", "transport-ipfs-gateway-http"}};
  auto s = provider_sources(p);
  EXPECT_EQ(s, (std::vector<std::string>{std::string("/ip4/127.0.0.1/tcp/4001/p2p/") + kId,
                                         "http://127.0.0.1:8080", "https://gw.example:443"}));
  Provider gw_only{kId,
                   {"/ip4/127.0.0.1/tcp/8080/http", "/ip4/127.0.0.1/tcp/4001"},
                   {"transport-ipfs-gateway-http"}};
  EXPECT_EQ(provider_sources(gw_only), std::vector<std::string>{"http://127.0.0.1:8080"});
  Provider bad_id{"not-a-peer", {"/ip4/127.0.0.1/tcp/4001"}, {}};
  EXPECT_TRUE(provider_sources(bad_id).empty());
  // A record round-trips through its JSON.
  auto back = parse_providers("{\"Providers\":[" + provider_json(p) + "]}", false);
  ASSERT_EQ(back.size(), 1u);
  EXPECT_EQ(back[0].addrs, p.addrs);
}

}  // namespace
}  // namespace cidrun::exchange::routing
