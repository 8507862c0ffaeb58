#include "gateway/server.h"

#include <httplib.h>

#include <unordered_set>

#include "gateway/car_response.h"
#include "gateway/request.h"
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

void reject(httplib::Response& res, int status, const std::string& message) {
  res.status = status;
  res.set_content(message + "\n", "text/plain; charset=utf-8");
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

std::pair<std::string, int> parse_listen(const std::string& listen) {
  std::string host = "127.0.0.1";
  std::string port = listen;
  if (!listen.empty() && listen.front() == '[') {
    auto close = listen.find(']');
    if (close == std::string::npos || close + 1 >= listen.size() || listen[close + 1] != ':') {
      throw Error("--listen " + listen + ": expected [IPv6]:PORT");
    }
    host = listen.substr(1, close - 1);
    port = listen.substr(close + 2);
  } else if (auto colon = listen.rfind(':'); colon != std::string::npos) {
    if (colon > 0) host = listen.substr(0, colon);
    port = listen.substr(colon + 1);
  }
  int p = -1;
  try {
    size_t used = 0;
    p = std::stoi(port, &used);
    if (used != port.size()) p = -1;
  } catch (const std::exception&) {
  }
  if (p < 0 || p > 65535) throw Error("--listen " + listen + ": invalid port");
  return {host, p};
}

struct Server::Impl {
  BlockStore& store;
  ServeOptions opts;
  httplib::Server http;
  std::string host;
  int port = 0;

  Impl(BlockStore& s, ServeOptions o) : store(s), opts(std::move(o)) {}

  void handle(const httplib::Request& req, httplib::Response& res) {
    res.set_header("X-Content-Type-Options", "nosniff");
    auto query = [&](std::string_view name) -> std::optional<std::string> {
      std::string n(name);
      if (!req.has_param(n.c_str())) return std::nullopt;
      return req.get_param_value(n.c_str());
    };
    auto parsed = parse_request(req.path, query, req.get_header_value("Accept"));
    if (auto* r = std::get_if<Rejection>(&parsed)) return reject(res, r->status, r->message);
    const TrustlessRequest& tr = std::get<TrustlessRequest>(parsed);
    bool only_if_cached =
        req.get_header_value("Cache-Control").find("only-if-cached") != std::string::npos;
    int missing = only_if_cached ? 412 : 404;
    std::string root = tr.cid.str();
    res.set_header("X-Ipfs-Path", req.path);
    res.set_header("Vary", "Accept");

    if (!available(store, tr.cid, only_if_cached)) {
      return reject(res, missing, "block " + root + " not found");
    }

    if (tr.format == Format::kRaw) {
      std::string etag = "\"" + root + ".raw\"";
      res.set_header("Etag", etag);
      res.set_header("X-Ipfs-Roots", root);
      res.set_header("Content-Disposition", "attachment; filename=\"" + root + ".bin\"");
      if (!tr.format_from_query)
        res.set_header("Content-Location", "/ipfs/" + root + "?format=raw");
      if (req.get_header_value("If-None-Match") == etag) {
        res.status = 304;
        return;
      }
      std::optional<Bytes> b;
      if (tr.cid.is_identity())
        b = Bytes(tr.cid.digest().begin(), tr.cid.digest().end());
      else
        b = store.get(tr.cid);
      if (!b) return reject(res, missing, "block " + root + " not found");
      res.status = 200;
      res.set_header("Cache-Control", kImmutable);
      res.set_content(std::string(as_string(*b)), "application/vnd.ipld.raw");
      return;
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
    res.set_header("Etag", etag);
    res.set_header("X-Ipfs-Roots", root);
    res.set_header("Content-Disposition", "attachment; filename=\"" + root + ".car\"");
    if (!tr.format_from_query) res.set_header("Content-Location", req.path + "?format=car");
    if (req.get_header_value("If-None-Match") == etag) {
      res.status = 304;
      return;
    }
    res.status = 200;
    res.set_header("Cache-Control", kImmutable);
    if (req.method == "HEAD") {
      res.set_header("Content-Type", kCarType);
      return;
    }
    BlockStore* s = &store;
    Cid car_root = tr.cid;
    auto scope = tr.scope;
    auto range = tr.entity_bytes;
    res.set_chunked_content_provider(kCarType, [s, car_root, path_blocks, target, scope, range](
                                                   size_t, httplib::DataSink& sink) {
      try {
        stream_car(*s, car_root, path_blocks, target, scope, range, [&](ByteView b) {
          return sink.write(reinterpret_cast<const char*>(b.data()), b.size());
        });
        sink.done();
        return true;
      } catch (const ClientGone&) {
        return false;
      } catch (const std::exception& e) {
        // Headers are gone already: the only honest signal left is an incomplete stream.
        log::warn("CAR " + car_root.str() + " aborted: " + e.what());
        return false;
      }
    });
  }
};

Server::Server(BlockStore& store, ServeOptions opts)
    : impl_(std::make_unique<Impl>(store, std::move(opts))) {
  auto& http = impl_->http;
  size_t threads = impl_->opts.threads;
  http.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  // A client that stops reading for this long is dropped: a slow peer cannot pin a thread forever.
  http.set_read_timeout(30, 0);
  http.set_write_timeout(60, 0);
  http.set_keep_alive_max_count(1000);
  // An idle keep-alive connection holds a pool thread, and stop() waits for it: keep it short
  // (a fetching client sends its next request at once anyway).
  http.set_keep_alive_timeout(1);
  http.set_payload_max_length(64 * 1024);  // requests carry no bodies
  auto handler = [this](const httplib::Request& req, httplib::Response& res) {
    try {
      impl_->handle(req, res);
    } catch (const std::exception& e) {
      log::warn("gateway: " + req.path + ": " + e.what());
      reject(res, 500, e.what());
    }
  };
  http.Get(R"(/ip[fn]s/.*)", handler);
  http.Get(R"(.*)", [](const httplib::Request&, httplib::Response& res) {
    reject(res, 404, "not found: this is a trustless gateway, use /ipfs/{cid}");
  });
  if (!impl_->opts.quiet) {
    http.set_logger([](const httplib::Request& req, const httplib::Response& res) {
      log::info(req.method + " " + req.target + " " + std::to_string(res.status));
    });
  }
}

Server::~Server() {
  stop();
}

int Server::bind() {
  auto [host, port] = parse_listen(impl_->opts.listen);
  impl_->host = host;
  if (port == 0) {
    impl_->port = impl_->http.bind_to_any_port(host);
  } else if (impl_->http.bind_to_port(host, port)) {
    impl_->port = port;
  } else {
    impl_->port = -1;
  }
  if (impl_->port <= 0) throw Error("cannot listen on " + impl_->opts.listen);
  return impl_->port;
}

void Server::run() {
  impl_->http.listen_after_bind();
}

void Server::stop() {
  if (impl_->http.is_running()) impl_->http.stop();
}

}  // namespace cidrun::gateway
