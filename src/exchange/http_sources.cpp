// The two HTTP sources: a Trustless Gateway and a kubo RPC API. Both answer single blocks and
// whole-DAG CAR streams; they differ only in URLs, methods and how "not found" is spelled.
#include <cstdlib>
#include <string>

#include "exchange/block_pipeline.h"
#include "exchange/car_stream.h"
#include "exchange/sources.h"
#include "net/http_client.h"
#include "net/proxy.h"

namespace cidrun::exchange {
namespace {

// A single block must arrive within this time; streams are bounded by the stall limit instead:
// a peer that sends nothing for kStallSecs is dropped. CIDRUN_STALL_TIMEOUT (seconds) overrides
// both, for slow links (larger) and for tests of hanging peers (smaller).
constexpr long kBlockTimeoutMs = 60'000;
constexpr long kStallSecs = 15;
constexpr long kMinStreamBytesPerWindow = 16 * 1024;  // ~1 KiB/s over a stall window

long stall_secs() {
  if (const char* e = std::getenv("CIDRUN_STALL_TIMEOUT"); e && *e) {
    long v = std::atol(e);
    if (v > 0) return v;
  }
  return kStallSecs;
}

long block_timeout_ms() {
  if (const char* e = std::getenv("CIDRUN_STALL_TIMEOUT"); e && *e && std::atol(e) > 0) {
    return std::atol(e) * 4000;
  }
  return kBlockTimeoutMs;
}

const char* scope_name(DagScope s) {
  switch (s) {
    case DagScope::kBlock:
      return "block";
    case DagScope::kEntity:
      return "entity";
    case DagScope::kAll:
      return "all";
  }
  return "all";
}

// Whether to ask a gateway for coded (compressed) answers: worth it over a wide-area link (a
// root's files shrink to about half), not where bytes move faster than zstd codes them
// (codes_by_default). CIDRUN_COMPRESS=on|off overrides the choice (on: also over loopback, e.g.
// behind a link emulator).
bool wants_coding(std::string_view base) {
  if (const char* e = std::getenv("CIDRUN_COMPRESS"); e && *e) {
    std::string_view v(e);
    if (v == "on" || v == "1") return true;
    if (v == "off" || v == "0") return false;
  }
  return codes_by_default(base);
}

constexpr const char* kAcceptCodings = "Accept-Encoding: zstd, gzip";

class HttpSource : public BlockSource {
 public:
  HttpSource(std::string url, std::string base, bool kubo)
      : url_(std::move(url)),
        base_(std::move(base)),
        kubo_(kubo),
        coding_(!kubo_ && wants_coding(base_)) {}

  const std::string& url() const override { return url_; }
  bool can_stream_car() const override { return true; }
  bool codes() const override { return coding_; }

  std::optional<Bytes> get(const Cid& cid) override {
    Bytes b;
    auto v = get_into(cid, b);
    if (!v) return std::nullopt;
    b.resize(v->size());  // the body fills b from its start
    return b;
  }

  std::optional<ByteView> get_into(const Cid& cid, Bytes& scratch) override {
    http::Request req;
    if (kubo_) {
      req.method = "POST";
      req.url = base_ + "/api/v0/block/get?arg=" + cid.str();
    } else {
      // Both ?format= and Accept, as the spec asks of clients (some gateways only read one).
      req.url = base_ + "/ipfs/" + cid.str() + "?format=raw";
      req.headers.emplace_back("Accept: application/vnd.ipld.raw");
      if (coding_) req.headers.emplace_back(kAcceptCodings);
    }
    req.total_timeout_ms = block_timeout_ms();
    req.stall_secs = stall_secs();
    // A block's answer starts at once from any gateway that has it.
    req.head_timeout_ms = stall_secs() * 1000;
    // One byte over the limit is enough to know the answer is too big.
    req.max_body = kMaxBlockSize + 1;
    req.body_buffer = &scratch;
    http::Response r = http::Client::shared().perform(req);
    if (is_not_found(r)) return std::nullopt;
    if (!r.ok()) throw SourceError(url_ + ": block " + cid.str() + ": " + r.describe());
    ByteView data(scratch.data(), r.body_size);
    verify_block(url_, cid, data);
    return data;
  }

  bool get_car(const Cid& root, DagScope scope, const CarBlockHandler& on_block) override {
    http::Request req;
    if (kubo_) {
      // dag/export has no scope: it is always the whole DAG, which covers every scope.
      req.method = "POST";
      req.url = base_ + "/api/v0/dag/export?arg=" + root.str();
    } else {
      req.url = base_ + "/ipfs/" + root.str() + "?format=car&dag-scope=" + scope_name(scope);
      req.headers.emplace_back("Accept: application/vnd.ipld.car; version=1; order=dfs; dups=n");
      if (coding_) req.headers.emplace_back(kAcceptCodings);
    }
    req.stall_secs = stall_secs();
    // A gateway may have to find the root before it answers; the head still has a deadline. The
    // body must keep a rate a useful source has: a peer that drips a byte now and then would
    // otherwise hold the stream (and the pull) open for as long as it likes.
    req.head_timeout_ms = 2 * stall_secs() * 1000;
    req.stall_bytes = kMinStreamBytesPerWindow;
    // Blocks are verified (big leaves on the thread pool) as the stream is read. A bad block
    // (SourceError) or the handler's own exception (a local disk error, the caller stopping) is
    // rethrown as it was; a malformed stream is the source's fault: a SourceError.
    BlockPipeline pipeline(url_, on_block);
    std::exception_ptr parse_failure;
    CarStreamParser parser([&](const Cid& cid, ByteView data) { pipeline.submit(cid, data); });
    req.on_body = [&](ByteView chunk) {
      try {
        parser.feed(chunk);
        return true;
      } catch (...) {
        parse_failure = std::current_exception();
      }
      return false;
    };
    http::Response r = http::Client::shared().perform(req);
    pipeline.finish();
    if (parse_failure) {
      try {
        std::rethrow_exception(parse_failure);
      } catch (const SourceError&) {
        throw;
      } catch (const std::exception& e) {
        throw SourceError(url_ + ": CAR of " + root.str() + ": " + e.what());
      }
    }
    if (is_not_found(r)) return false;
    if (!r.ok()) throw SourceError(url_ + ": CAR of " + root.str() + ": " + r.describe());
    try {
      parser.finish();
    } catch (const Error& e) {
      throw SourceError(url_ + ": CAR of " + root.str() + ": " + e.what());
    }
    return true;
  }

 private:
  bool is_not_found(const http::Response& r) const {
    if (!r.error.empty()) return false;
    if (r.status == 404 || r.status == 410) return true;
    // kubo answers a missing block with 500 and a JSON message (offline: "not found locally").
    if (kubo_ && r.status == 500) {
      std::string_view body = as_string(r.body);
      return body.find("not found") != std::string_view::npos ||
             body.find("ERR_NOT_FOUND") != std::string_view::npos;
    }
    return false;
  }

  std::string url_;
  std::string base_;
  bool kubo_;
  bool coding_;
};

}  // namespace

bool codes_by_default(std::string_view url) {
  // This machine and the local networks, in no_proxy's syntax (names with their subdomains, CIDR
  // blocks), matched by the same code that decides what bypasses a proxy.
  static constexpr std::string_view kLocal =
      "localhost,127.0.0.0/8,10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,169.254.0.0/16,::1,"
      "fc00::/7,fe80::/10";
  size_t scheme = url.find("://");
  std::string_view host = scheme == std::string_view::npos ? url : url.substr(scheme + 3);
  host = host.substr(0, host.find('/'));
  if (size_t at = host.rfind('@'); at != std::string_view::npos) host = host.substr(at + 1);
  // The port off: "[v6]:port" keeps its brackets (no_proxy_matches takes them), "host:port".
  host =
      host.starts_with("[") ? host.substr(0, host.find(']') + 1) : host.substr(0, host.find(':'));
  return !net::no_proxy_matches(kLocal, host, 0);
}

std::unique_ptr<BlockSource> make_gateway_source(std::string url, std::string base) {
  return std::make_unique<HttpSource>(std::move(url), std::move(base), false);
}

std::unique_ptr<BlockSource> make_kubo_source(std::string url, std::string base) {
  return std::make_unique<HttpSource>(std::move(url), std::move(base), true);
}

}  // namespace cidrun::exchange
