#include "gateway/server.h"

#include <unordered_set>

#include "gateway/car_response.h"
#include "gateway/request.h"
#include "net/http_server.h"
#include "unixfs/reader.h"
#include "util/log.h"
#include "util/sha256.h"

namespace cidrun::gateway {
namespace {

constexpr const char* kImmutable = "public, max-age=29030400, immutable";
constexpr const char* kCarType = "application/vnd.ipld.car; version=1; order=dfs; dups=n";

// Remembers which blocks path resolution read: exactly the blocks a client needs to verify the
// path (directory nodes and HAMT shards), in the order they were read.
class RecordingStore : public BlockStore {
 public:
  explicit RecordingStore(BlockStore& inner) : inner_(inner) {}
  bool has(const Cid& c) override { return inner_.has(c); }
  std::optional<Bytes> get(const Cid& c) override {
    auto b = inner_.get(c);
    if (b && seen_.insert(std::string(as_string(c.multihash()))).second) read_.push_back(c);
    return b;
  }
  std::optional<uint64_t> size(const Cid& c) override { return inner_.size(c); }
  void put_parts(const Cid&, std::span<const ByteView>) override {
    throw Error("the gateway never writes blocks");
  }
  bool remove(const Cid&) override { return false; }
  void for_each(const std::function<void(ByteView)>&) override {}
  void sync() override {}
  const std::vector<Cid>& read() const { return read_; }

 private:
  BlockStore& inner_;
  std::vector<Cid> read_;
  std::unordered_set<std::string> seen_;
};

void reject(net::HttpResponse& res, int status, const std::string& message) {
  res.set_status(status);
  res.add_header("Content-Type", "text/plain; charset=utf-8");
  res.send(message + "\n");
}

// Whether the block can be served. has() is local only; get() may fetch (serve --from wraps the
// store in a FetchingStore), except for only-if-cached requests, which must not wait for that.
bool available(BlockStore& store, const Cid& cid, bool only_if_cached) {
  if (cid.is_identity() || store.has(cid)) return true;
  if (only_if_cached) return false;
  try {
    return store.get(cid).has_value();
  } catch (const NotFound&) {
    return false;
  }
}

}  // namespace

struct Server::Impl {
  BlockStore& store;
  ServeOptions opts;
  net::HttpServer http;

  Impl(BlockStore& s, ServeOptions o)
      : store(s),
        opts(std::move(o)),
        http([this](auto& req, auto& res) { route(req, res); }, http_options(opts)) {}

  static net::HttpServerOptions http_options(const ServeOptions& o) {
    net::HttpServerOptions h;
    h.listen = o.listen;
    h.threads = o.threads;
    if (!o.quiet) {
      h.on_response = [](const net::HttpRequest& req, int status) {
        log::info(req.method + " " + req.target + " " + std::to_string(status));
      };
    }
    return h;
  }

  void route(const net::HttpRequest& req, net::HttpResponse& res) {
    res.add_header("X-Content-Type-Options", "nosniff");
    if (req.method != "GET" && req.method != "HEAD") {
      res.add_header("Allow", "GET, HEAD");
      return reject(res, 405, "method " + req.method + " not allowed: use GET or HEAD");
    }
    if (req.path.rfind("/ipfs/", 0) != 0 && req.path.rfind("/ipns/", 0) != 0) {
      return reject(res, 404, "not found: this is a trustless gateway, use /ipfs/{cid}");
    }
    try {
      handle(req, res);
    } catch (const std::exception& e) {
      if (res.started()) throw;
      log::warn("gateway: " + req.target + ": " + e.what());
      reject(res, 500, e.what());
    }
  }

  void handle(const net::HttpRequest& req, net::HttpResponse& res) {
    auto query = [&](std::string_view name) { return req.query_param(name); };
    auto parsed = parse_request(req.path, query, req.header("accept").value_or(""));
    if (auto* r = std::get_if<Rejection>(&parsed)) return reject(res, r->status, r->message);
    const TrustlessRequest& tr = std::get<TrustlessRequest>(parsed);
    bool only_if_cached =
        req.header("cache-control").value_or("").find("only-if-cached") != std::string::npos;
    int missing = only_if_cached ? 412 : 404;
    std::string root = tr.cid.str();
    // The path as sent (still percent-encoded: a decoded path may hold bytes a header cannot).
    std::string url_path = req.target.substr(0, req.target.find('?'));
    res.add_header("X-Ipfs-Path", url_path);
    res.add_header("Vary", "Accept");
    std::string if_none_match = req.header("if-none-match").value_or("");

    if (!available(store, tr.cid, only_if_cached)) {
      return reject(res, missing, "block " + root + " not found");
    }

    if (tr.format == Format::kRaw) {
      std::string etag = "\"" + root + ".raw\"";
      res.add_header("Etag", etag);
      res.add_header("X-Ipfs-Roots", root);
      res.add_header("Content-Disposition", "attachment; filename=\"" + root + ".bin\"");
      if (!tr.format_from_query) {
        res.add_header("Content-Location", "/ipfs/" + root + "?format=raw");
      }
      if (if_none_match == etag) {
        res.set_status(304);
        return res.send("");
      }
      std::optional<Bytes> b;
      if (tr.cid.is_identity())
        b = Bytes(tr.cid.digest().begin(), tr.cid.digest().end());
      else
        b = store.get(tr.cid);
      if (!b) return reject(res, missing, "block " + root + " not found");
      res.set_status(200);
      res.add_header("Cache-Control", kImmutable);
      res.add_header("Content-Type", "application/vnd.ipld.raw");
      return res.send(as_string(*b));
    }

    // CAR: resolve the path first, so that a bad path is a 404 rather than a broken stream.
    RecordingStore rec(store);
    Cid target = tr.cid;
    std::vector<Cid> path_blocks;
    if (!tr.path.empty()) {
      try {
        unixfs::Dag dag(rec);
        target = dag.resolve(tr.cid, tr.path);
      } catch (const NotFound& e) {
        return reject(res, missing, e.what());
      } catch (const Error& e) {
        return reject(res, 404, std::string("cannot resolve path: ") + e.what());
      }
      path_blocks = rec.read();
      if (!available(store, target, only_if_cached)) {
        return reject(res, missing, "block " + target.str() + " not found");
      }
    }
    // The Etag names everything that shapes the response (spec: scope and entity-bytes).
    std::string shape = tr.path + "|" + std::to_string(static_cast<int>(tr.scope));
    if (tr.entity_bytes) {
      shape += "|" + std::to_string(tr.entity_bytes->from) + ":" +
               (tr.entity_bytes->to ? std::to_string(*tr.entity_bytes->to) : "*");
    }
    std::string etag =
        "\"" + root + ".car." + to_hex(ByteView(sha256(as_bytes(shape)).data(), 6)) + "\"";
    res.add_header("Etag", etag);
    res.add_header("X-Ipfs-Roots", root);
    res.add_header("Content-Disposition", "attachment; filename=\"" + root + ".car\"");
    if (!tr.format_from_query) res.add_header("Content-Location", url_path + "?format=car");
    if (if_none_match == etag) {
      res.set_status(304);
      return res.send("");
    }
    res.set_status(200);
    res.add_header("Cache-Control", kImmutable);
    res.add_header("Content-Type", kCarType);
    res.begin_stream();
    if (res.is_head()) return res.end();
    try {
      stream_car(store, tr.cid, path_blocks, target, tr.scope, tr.entity_bytes,
                 [&](ByteView b) { return res.write(b); });
      res.end();
    } catch (const ClientGone&) {
      // Nothing to tell anyone: the client left.
    }
  }
};

Server::Server(BlockStore& store, ServeOptions opts)
    : impl_(std::make_unique<Impl>(store, std::move(opts))) {}

Server::~Server() {
  stop();
}

int Server::bind() {
  return impl_->http.bind();
}

void Server::run() {
  impl_->http.run();
}

void Server::stop() {
  impl_->http.stop();
}

}  // namespace cidrun::gateway
