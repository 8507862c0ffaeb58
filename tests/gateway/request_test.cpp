// Request parsing and content negotiation of the trustless gateway, per the spec's rules.
#include "gateway/request.h"

#include <gtest/gtest.h>

#include <map>

namespace cidrun::gateway {
namespace {

const char* kCid = "bafkreicysg23kiwv34eg2d7qweipxwosdo2py4ldv42nbauguluen5v6am";

std::variant<TrustlessRequest, Rejection> parse(const std::string& path,
                                                std::map<std::string, std::string> q,
                                                const std::string& accept) {
  return parse_request(
      path,
      [&](std::string_view n) -> std::optional<std::string> {
        auto it = q.find(std::string(n));
        if (it == q.end()) return std::nullopt;
        return it->second;
      },
      accept);
}

int status_of(const std::variant<TrustlessRequest, Rejection>& v) {
  if (auto* r = std::get_if<Rejection>(&v)) return r->status;
  return 200;
}

TEST(gatewayRequest, FormatQueryBeatsAccept) {
  auto v = parse(std::string("/ipfs/") + kCid, {{"format", "car"}}, "application/vnd.ipld.raw");
  ASSERT_EQ(status_of(v), 200);
  EXPECT_EQ(std::get<TrustlessRequest>(v).format, Format::kCar);
  EXPECT_TRUE(std::get<TrustlessRequest>(v).format_from_query);
}

TEST(gatewayRequest, AcceptChoosesRawOrCar) {
  auto raw = parse(std::string("/ipfs/") + kCid, {}, "application/vnd.ipld.raw");
  EXPECT_EQ(std::get<TrustlessRequest>(raw).format, Format::kRaw);
  auto car = parse(std::string("/ipfs/") + kCid, {},
                   "text/html, application/vnd.ipld.car; version=1; order=dfs; dups=y");
  EXPECT_EQ(std::get<TrustlessRequest>(car).format, Format::kCar);
}

TEST(gatewayRequest, StrictTrustlessRefusesRequestsWithoutAFormat) {
  EXPECT_EQ(status_of(parse(std::string("/ipfs/") + kCid, {}, "")), 400);
  EXPECT_EQ(status_of(parse(std::string("/ipfs/") + kCid, {}, "*/*")), 400);
}

TEST(gatewayRequest, UnservableAcceptIs406) {
  EXPECT_EQ(status_of(parse(std::string("/ipfs/") + kCid, {}, "text/html")), 406);
  EXPECT_EQ(
      status_of(parse(std::string("/ipfs/") + kCid, {}, "application/vnd.ipld.car; version=2")),
      406);
  EXPECT_EQ(status_of(parse(std::string("/ipfs/") + kCid, {}, "application/vnd.ipld.raw;q=0")),
            406);
}

TEST(gatewayRequest, BadInputsAre400) {
  EXPECT_EQ(status_of(parse("/ipfs/notacid", {{"format", "raw"}}, "")), 400);
  EXPECT_EQ(status_of(parse(std::string("/ipfs/") + kCid + "/a", {{"format", "raw"}}, "")), 400);
  EXPECT_EQ(status_of(parse(std::string("/ipfs/") + kCid, {{"format", "tar"}}, "")), 400);
  EXPECT_EQ(
      status_of(parse(std::string("/ipfs/") + kCid, {{"format", "car"}, {"dag-scope", "x"}}, "")),
      400);
  EXPECT_EQ(
      status_of(parse(std::string("/ipfs/") + kCid, {{"format", "car"}, {"car-version", "2"}}, "")),
      400);
  EXPECT_EQ(status_of(parse(std::string("/ipfs/") + kCid,
                            {{"format", "car"}, {"entity-bytes", "5:1"}}, "")),
            400);
  EXPECT_EQ(status_of(parse(std::string("/ipfs/") + kCid + "/../x", {{"format", "car"}}, "")), 400);
  EXPECT_EQ(status_of(parse("/ipns/k51", {{"format", "car"}}, "")), 501);
}

TEST(gatewayRequest, CarPathScopeAndEntityBytes) {
  auto v = parse(std::string("/ipfs/") + kCid + "/a/b/",
                 {{"format", "car"}, {"entity-bytes", "-1024:*"}}, "");
  ASSERT_EQ(status_of(v), 200);
  const auto& r = std::get<TrustlessRequest>(v);
  EXPECT_EQ(r.path, "a/b");
  EXPECT_EQ(r.scope, exchange::DagScope::kEntity);  // entity-bytes implies entity
  EXPECT_EQ(r.entity_bytes->from, -1024);
  EXPECT_FALSE(r.entity_bytes->to);
}

TEST(gatewayRequest, EntityBytesRangesResolveLikeTheSpecSays) {
  auto r = [](const char* t, uint64_t size) { return resolve_range(*parse_entity_bytes(t), size); };
  EXPECT_EQ(r("0:*", 100), std::make_pair(uint64_t{0}, uint64_t{99}));
  EXPECT_EQ(r("-10:*", 100), std::make_pair(uint64_t{90}, uint64_t{99}));
  EXPECT_EQ(r("10:-10", 100), std::make_pair(uint64_t{10}, uint64_t{90}));
  EXPECT_EQ(r("50:500", 100), std::make_pair(uint64_t{50}, uint64_t{99}));
  EXPECT_FALSE(r("200:*", 100));   // fully outside: the root block alone
  EXPECT_FALSE(r("0:-101", 100));  // ends before the start
  EXPECT_EQ(r("0:-100", 100), std::make_pair(uint64_t{0}, uint64_t{0}));
  EXPECT_EQ(r("-1000:*", 100), std::make_pair(uint64_t{0}, uint64_t{99}));
  EXPECT_FALSE(parse_entity_bytes("a:b"));
  EXPECT_FALSE(parse_entity_bytes("5"));
}

// A node may claim any filesize, and positions go down to INT64_MIN: no signed overflow (UBSan
// found one here) and the sizes above 2^63 still resolve.
TEST(gatewayRequest, EntityBytesAtTheLimitsOfTheIntegers) {
  auto r = [](const char* t, uint64_t size) { return resolve_range(*parse_entity_bytes(t), size); };
  constexpr uint64_t kMax = UINT64_MAX;
  EXPECT_EQ(r("-9223372036854775808:*", kMax),
            std::make_pair(kMax - (uint64_t{1} << 63), kMax - 1));
  EXPECT_EQ(r("0:*", kMax), std::make_pair(uint64_t{0}, kMax - 1));
  EXPECT_EQ(r("0:-9223372036854775808", kMax),
            std::make_pair(uint64_t{0}, kMax - (uint64_t{1} << 63)));
  EXPECT_EQ(r("9223372036854775807:*", kMax), std::make_pair(uint64_t{INT64_MAX}, kMax - 1));
  EXPECT_FALSE(r("-9223372036854775808:-9223372036854775808", 100));
  EXPECT_EQ(r("-9223372036854775808:*", 100), std::make_pair(uint64_t{0}, uint64_t{99}));
}

TEST(gatewayRequest, AcceptWeightsAndCarParameters) {
  std::string path = std::string("/ipfs/") + kCid;
  // The highest q wins, whatever the order; ties keep the order.
  auto car = parse(path, {}, "application/vnd.ipld.raw;q=0.5, application/vnd.ipld.car;q=0.9");
  EXPECT_EQ(std::get<TrustlessRequest>(car).format, Format::kCar);
  auto raw = parse(path, {}, "application/vnd.ipld.raw, application/vnd.ipld.car");
  EXPECT_EQ(std::get<TrustlessRequest>(raw).format, Format::kRaw);
  // An unservable CAR variant falls through to the next acceptable range.
  auto next = parse(path, {}, "application/vnd.ipld.car;order=foo, application/vnd.ipld.raw;q=0.1");
  EXPECT_EQ(std::get<TrustlessRequest>(next).format, Format::kRaw);
  EXPECT_EQ(status_of(parse(path, {}, "application/vnd.ipld.car; dups=maybe")), 406);
  // dups from Accept, and car-dups over it.
  EXPECT_TRUE(std::get<TrustlessRequest>(parse(path, {}, "application/vnd.ipld.car; dups=y")).dups);
  EXPECT_FALSE(std::get<TrustlessRequest>(parse(path, {}, "application/vnd.ipld.car")).dups);
  EXPECT_FALSE(std::get<TrustlessRequest>(
                   parse(path, {{"car-dups", "n"}}, "application/vnd.ipld.car; dups=y"))
                   .dups);
  EXPECT_TRUE(std::get<TrustlessRequest>(
                  parse(path, {{"format", "car"}}, "application/vnd.ipld.car; dups=y"))
                  .dups);
  EXPECT_EQ(status_of(parse(path, {{"format", "car"}, {"car-dups", "x"}}, "")), 400);
}

TEST(gatewayRequest, HttpRangeOneRangeOfBytes) {
  using K = HttpRange::Kind;
  auto part = [](std::string_view h, uint64_t size) {
    HttpRange r = parse_http_range(h, size);
    if (r.kind == K::kWhole) return std::string("whole");
    if (r.kind == K::kUnsatisfiable) return std::string("416");
    return std::to_string(r.first) + "-" + std::to_string(r.last);
  };
  EXPECT_EQ(part("bytes=0-9", 100), "0-9");
  EXPECT_EQ(part("bytes=10-", 100), "10-99");
  EXPECT_EQ(part("bytes=-10", 100), "90-99");
  EXPECT_EQ(part("bytes=-1000", 100), "0-99");  // more than there is: all of it
  EXPECT_EQ(part("bytes=50-1000", 100), "50-99");
  EXPECT_EQ(part("bytes=99-99", 100), "99-99");
  EXPECT_EQ(part("Bytes=1-2 ", 100), "1-2");
  EXPECT_EQ(part("bytes = 1-2", 100), "whole");  // no blanks around "=" in the grammar
  EXPECT_EQ(part("bytes=5-99999999999999999999999", 100), "5-99");
  // Unsatisfiable: starts at or past the end, an empty suffix, anything of an empty body.
  EXPECT_EQ(part("bytes=100-", 100), "416");
  EXPECT_EQ(part("bytes=100-200", 100), "416");
  EXPECT_EQ(part("bytes=99999999999999999999999-", 100), "416");
  EXPECT_EQ(part("bytes=-0", 100), "416");
  EXPECT_EQ(part("bytes=0-", 0), "416");
  EXPECT_EQ(part("bytes=-5", 0), "416");
  // Several ranges, other units and malformed fields: the whole body.
  EXPECT_EQ(part("bytes=0-1,5-6", 100), "whole");
  EXPECT_EQ(part("items=0-1", 100), "whole");
  EXPECT_EQ(part("bytes=9-3", 100), "whole");
  EXPECT_EQ(part("bytes=a-b", 100), "whole");
  EXPECT_EQ(part("bytes=-", 100), "whole");
  EXPECT_EQ(part("bytes=5", 100), "whole");
  EXPECT_EQ(part("bytes=--5", 100), "whole");
  EXPECT_EQ(part("", 100), "whole");
}

}  // namespace
}  // namespace cidrun::gateway
