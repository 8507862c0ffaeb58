// What `serve` does with a client's bytes before any block is read: the request head
// (net::parse_request_head, with the server's limits), then the gateway's reading of it
// (gateway::parse_request over the decoded path, query and Accept; Range; entity-bytes).
// Invariants: a head that parses is parsed the same from its own bytes, and every prefix of it
// is "incomplete", never an error (the server feeds what it has read so far); the byte intervals
// a Range or an entity-bytes selects lie inside the entity.
#include <variant>

#include "fuzz.h"
#include "gateway/request.h"
#include "net/http_request.h"

using namespace cidrun;

namespace {

void gateway_reads(const net::HttpRequest& req, uint64_t size) {
  auto query = [&](std::string_view name) { return req.query_param(name); };
  auto parsed = gateway::parse_request(req.path, query, req.header("accept").value_or(""));
  if (auto* tr = std::get_if<gateway::TrustlessRequest>(&parsed); tr && tr->entity_bytes) {
    if (auto r = gateway::resolve_range(*tr->entity_bytes, size)) {
      FUZZ_CHECK(r->first <= r->second && r->second < size);
    }
  }
  if (auto range = req.header("range")) {
    auto r = gateway::parse_http_range(*range, size);
    if (r.kind == gateway::HttpRange::Kind::kPart) {
      FUZZ_CHECK(r.first <= r.last && r.last < size);
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view buf = fuzz::text_of(data, size);
  net::HttpLimits limits;
  auto result = net::parse_request_head(buf, limits);
  auto* ok = std::get_if<net::HttpParsed>(&result);
  if (!ok) return 0;
  const net::HttpRequest& req = ok->request;
  FUZZ_CHECK(ok->head_bytes > 0 && ok->head_bytes <= size);
  auto again = net::parse_request_head(buf.substr(0, ok->head_bytes), limits);
  auto* same = std::get_if<net::HttpParsed>(&again);
  FUZZ_CHECK(same && same->head_bytes == ok->head_bytes);
  FUZZ_CHECK(same->request.method == req.method && same->request.target == req.target &&
             same->request.headers == req.headers);
  for (size_t cut : {ok->head_bytes / 3, ok->head_bytes / 2, ok->head_bytes - 1}) {
    FUZZ_CHECK(std::holds_alternative<std::monostate>(
        net::parse_request_head(buf.substr(0, cut), limits)));
  }
  (void)req.keep_alive();
  // Entity sizes at the edges: empty, small, and claims near 2^64 (a node may claim any size).
  for (uint64_t entity :
       {uint64_t{0}, uint64_t{1}, uint64_t{1000}, UINT64_MAX / 2 + 1, UINT64_MAX}) {
    gateway_reads(req, entity);
  }
  return 0;
}
