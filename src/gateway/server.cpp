#include "gateway/server.h"

#include <algorithm>
#include <cctype>
#include <cstring>
#include <unordered_set>

#include "gateway/car_response.h"
#include "gateway/request.h"
#include "gateway/routing.h"
#include "net/http_server.h"
#include "unixfs/reader.h"
#include "util/fd.h"
#include "util/log.h"
#include "util/sha256.h"
#include "util/stream.h"
#include "util/stream_compression.h"

namespace cidrun::gateway {
namespace {

constexpr const char* kImmutable = "public, max-age=29030400, immutable";

std::string car_type(bool dups) {
  return std::string("application/vnd.ipld.car; version=1; order=dfs; dups=") + (dups ? "y" : "n");
}

// Remembers which blocks path resolution read: exactly the blocks a client needs to verify the
// path (directory nodes and HAMT shards), in the order they were read.
// With only_if_cached it reads local blocks only: an only-if-cached request must not wait for a
// fetch (serve --from), and a block that is not here is simply absent.
class RecordingStore : public ForwardingStore {
 public:
  RecordingStore(BlockStore& inner, bool only_if_cached)
      : ForwardingStore(inner), local_only_(only_if_cached) {}
  std::optional<Bytes> get(const Cid& c) override {
    if (local_only_ && !c.is_identity() && !inner_.has(c)) return std::nullopt;
    auto b = inner_.get(c);
    if (b && seen_.insert(std::string(as_string(c.multihash()))).second) read_.push_back(c);
    return b;
  }
  // No file: readers then use get(), where the read is noted.
  std::optional<BlockFile> open_block_file(const Cid&) override { return std::nullopt; }
  void put_parts(const Cid&, std::span<const ByteView>) override {
    throw Error("the gateway never writes blocks");
  }
  bool remove(const Cid&) override { return false; }
  void for_each(const std::function<void(ByteView)>&) override {}
  void sync() override {}
  const std::vector<Cid>& read() const { return read_; }

 private:
  bool local_only_;
  std::vector<Cid> read_;
  std::unordered_set<std::string> seen_;
};

void reject(net::HttpResponse& res, int status, const std::string& message) {
  res.set_status(status);
  // Path gateway spec: an only-if-cached miss is a 412 "without any payload".
  if (status == 412) return res.send("");
  res.add_header("Content-Type", "text/plain; charset=utf-8");
  res.send(message + "\n");
}

// If-None-Match (RFC 9110 13.1.2): "*" or a list of entity tags, compared weakly.
bool etag_matches(std::string_view header, std::string_view etag) {
  auto strip = [](std::string_view t) {
    while (!t.empty() && (t.front() == ' ' || t.front() == '\t')) t.remove_prefix(1);
    while (!t.empty() && (t.back() == ' ' || t.back() == '\t')) t.remove_suffix(1);
    if (t.substr(0, 2) == "W/") t.remove_prefix(2);
    return t;
  };
  if (strip(header) == "*") return true;
  size_t i = 0;
  while (i <= header.size()) {
    size_t j = header.find(',', i);
    if (j == std::string_view::npos) j = header.size();
    if (strip(header.substr(i, j - i)) == strip(etag)) return true;
    i = j + 1;
  }
  return false;
}

// Content-Disposition for a download (RFC 6266): attachment always (the spec: bytes a browser
// must not render), with the client's ?filename= when given. Non-ASCII names travel in
// filename* (RFC 8187) with an ASCII stand-in, as the path gateway spec describes.
std::string disposition(const std::optional<std::string>& requested, const std::string& fallback) {
  const std::string& name = requested && !requested->empty() ? *requested : fallback;
  std::string ascii;
  std::string encoded;
  bool plain = true;
  static const char* kHex = "0123456789ABCDEF";
  for (unsigned char c : name) {
    bool safe = c >= 0x20 && c < 0x7f && c != '"' && c != '\\' && c != '%';
    ascii.push_back(safe ? static_cast<char>(c) : '_');
    if (std::isalnum(c) || std::strchr("!#$&+-.^_`|~", c)) {
      encoded.push_back(static_cast<char>(c));
    } else {
      encoded += '%';
      encoded += kHex[c >> 4];
      encoded += kHex[c & 15];
    }
    if (!safe) plain = false;
  }
  std::string out = "attachment; filename=\"" + ascii + "\"";
  if (!plain) out += "; filename*=UTF-8''" + encoded;
  return out;
}

// Whether the block can be served. has() is local only; get() may fetch (serve --from wraps the
// store in a FetchingStore), except for only-if-cached requests, which must not wait for that.
// The coding to answer with, from Accept-Encoding (RFC 9110 12.5.3): zstd when accepted (it
// packs blocks as well as gzip at several times the speed), else gzip, else none. A coding
// with q=0 is refused; "*" accepts both.
Compression pick_coding(std::string_view accept) {
  bool zstd = false;
  bool gzip = false;
  bool star = false;
  while (!accept.empty()) {
    size_t comma = accept.find(',');
    std::string_view item = accept.substr(0, comma);
    accept = comma == std::string_view::npos ? std::string_view() : accept.substr(comma + 1);
    size_t semi = item.find(';');
    std::string name(item.substr(0, semi));
    std::string params(semi == std::string_view::npos ? std::string_view() : item.substr(semi));
    std::erase(name, ' ');
    std::erase(name, '\t');
    std::transform(name.begin(), name.end(), name.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    std::erase(params, ' ');
    bool refused = params.find("q=0") != std::string::npos &&
                   params.find_first_of("123456789", params.find("q=0")) == std::string::npos;
    if (refused) continue;
    if (name == "zstd") zstd = true;
    if (name == "gzip" || name == "x-gzip") gzip = true;
    if (name == "*") star = true;
  }
  if (zstd || star) return Compression::zstd;
  if (gzip) return Compression::gzip;
  return Compression::none;
}

// A ByteSink over the response's stream: a compressor writes into it.
class ResponseSink : public ByteSink {
 public:
  explicit ResponseSink(net::HttpResponse& res) : res_(res) {}
  void write(ByteView data) override {
    if (!data.empty() && !res_.write(data)) throw ClientGone();
  }

 private:
  net::HttpResponse& res_;
};

std::unique_ptr<ByteSink> compressor(ByteSink& out, Compression c) {
  // Fast levels: the point is the wire, and a server answers many clients at once.
  if (c == Compression::zstd) return std::make_unique<ZstdSink>(out, ZstdOptions{.level = 3});
  return std::make_unique<GzipSink>(out, GzipOptions{.level = 4});
}

// Smaller blocks are sent as they are: a frame's own bytes would eat most of the saving.
constexpr uint64_t kMinCodedBlock = 512;

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
  RoutingService* routing = nullptr;
  net::HttpServer http;

  Impl(BlockStore& s, net::HttpServerOptions o, bool quiet)
      : store(s),
        http([this](auto& req, auto& res) { route(req, res); }, with_logging(std::move(o), quiet)) {
  }

  static net::HttpServerOptions with_logging(net::HttpServerOptions o, bool quiet) {
    if (!quiet) {
      o.on_response = [](const net::HttpRequest& req, int status) {
        log::info(req.method + " " + req.target + " " + std::to_string(status));
      };
    }
    return o;
  }

  void route(const net::HttpRequest& req, net::HttpResponse& res) {
    res.add_header("X-Content-Type-Options", "nosniff");
    if (routing && RoutingService::wants(req)) return routing->handle(req, res);
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

  // What both response formats need of one request.
  struct Exchange {
    const net::HttpRequest& req;
    net::HttpResponse& res;
    const TrustlessRequest& tr;
    Compression coding;
    bool only_if_cached;
    int missing;       // the status for an absent block: 412 for only-if-cached, else 404
    std::string root;  // tr.cid as text
  };

  void handle(const net::HttpRequest& req, net::HttpResponse& res) {
    // Path gateway spec: a service worker may not take a whole content root.
    if (req.header("service-worker").value_or("") == "script") {
      return reject(res, 400, "registering a service worker is not allowed on this gateway");
    }
    auto query = [&](std::string_view name) { return req.query_param(name); };
    auto parsed = parse_request(req.path, query, req.header("accept").value_or(""));
    if (auto* r = std::get_if<Rejection>(&parsed)) return reject(res, r->status, r->message);
    const TrustlessRequest& tr = std::get<TrustlessRequest>(parsed);
    bool only_if_cached =
        req.header("cache-control").value_or("").find("only-if-cached") != std::string::npos;
    Exchange x{.req = req,
               .res = res,
               .tr = tr,
               .coding = pick_coding(req.header("accept-encoding").value_or("")),
               .only_if_cached = only_if_cached,
               .missing = only_if_cached ? 412 : 404,
               .root = tr.cid.str()};
    if (!available(store, tr.cid, only_if_cached)) {
      return reject(res, x.missing, "block " + x.root + " not found");
    }
    if (tr.format == Format::kRaw) return serve_raw(x);
    serve_car(x);
  }

  // The headers every answer about immutable content carries (both formats, the 304 too), then
  // the If-None-Match check: true when a 304 was sent and nothing more is to be said.
  static bool immutable_headers_or_304(const Exchange& x, const std::string& etag,
                                       const std::string& roots, const char* format) {
    // The path as sent (still percent-encoded: a decoded path may hold bytes a header cannot).
    std::string url_path = x.req.target.substr(0, x.req.target.find('?'));
    x.res.add_header("Etag", etag);
    x.res.add_header("X-Ipfs-Path", url_path);
    x.res.add_header("X-Ipfs-Roots", roots);
    x.res.add_header("Vary", "Accept, Accept-Encoding");
    x.res.add_header("Cache-Control", kImmutable);
    if (!x.tr.format_from_query) {
      // Where this exact response lives when Accept chose it: the same URL with format= added,
      // so that caches keep block, CAR and other responses apart.
      x.res.add_header(
          "Content-Location",
          url_path + "?" + (x.req.query.empty() ? "" : x.req.query + "&") + "format=" + format);
    }
    std::string if_none_match = x.req.header("if-none-match").value_or("");
    if (if_none_match.empty() || !etag_matches(if_none_match, etag)) return false;
    x.res.set_status(304);
    x.res.send("");
    return true;
  }

  // application/vnd.ipld.raw: the block, whole, as one range, or coded.
  void serve_raw(const Exchange& x) {
    net::HttpResponse& res = x.res;
    const Cid& cid = x.tr.cid;
    std::string etag = "\"" + x.root + ".raw\"";
    if (immutable_headers_or_304(x, etag, x.root, "raw")) return;
    // The block: its file (sent with sendfile), or its bytes.
    std::optional<BlockFile> file = own_block_file(store, cid);
    std::optional<Bytes> bytes;
    if (cid.is_identity()) {
      bytes = Bytes(cid.digest().begin(), cid.digest().end());
    } else if (!file) {
      bytes = store.get(cid);
      if (!bytes) return reject(res, x.missing, "block " + x.root + " not found");
    }
    uint64_t size = file ? file->size : bytes->size();
    // Range (the spec's SHOULD for raw blocks): one range, honoured unless If-Range names
    // another entity; several ranges get the whole block.
    res.add_header("Accept-Ranges", "bytes");
    HttpRange range;
    auto range_header = x.req.header("range");
    auto if_range = x.req.header("if-range");
    if (range_header && (!if_range || *if_range == etag)) {
      range = parse_http_range(*range_header, size);
    }
    if (range.kind == HttpRange::Kind::kUnsatisfiable) {
      res.set_status(416);
      res.add_header("Content-Range", "bytes */" + std::to_string(size));
      return res.send("");
    }
    res.add_header("Content-Type", "application/vnd.ipld.raw");
    res.add_header("Content-Disposition",
                   disposition(x.req.query_param("filename"), x.root + ".bin"));
    uint64_t offset = 0;
    uint64_t length = size;
    if (range.kind == HttpRange::Kind::kPart) {
      res.set_status(206);
      res.add_header("Content-Range", "bytes " + std::to_string(range.first) + "-" +
                                          std::to_string(range.last) + "/" + std::to_string(size));
      offset = range.first;
      length = range.last - range.first + 1;
    }
    // The whole block, coded when the client takes a coding and that saves something worth
    // its cost (a range is of the plain bytes: sent as they are).
    if (x.coding != Compression::none && range.kind == HttpRange::Kind::kWhole &&
        size >= kMinCodedBlock) {
      if (!bytes) {
        bytes = Bytes(size);
        if (pread_full(file->fd.get(), bytes->data(), size, file->offset, "block " + x.root) !=
            size) {
          throw Error("block " + x.root + " is shorter than its file said");
        }
      }
      MemorySink packed;
      {
        auto c = compressor(packed, x.coding);
        c->write(*bytes);
        c->finish();
      }
      if (packed.data().size() * 8 < size * 7) {
        res.add_header("Content-Encoding", compression_name(x.coding));
        return res.send(as_string(packed.data()));
      }
    }
    if (file) {
      return res.send_file(file->fd.get(), static_cast<off_t>(file->offset + offset), length);
    }
    res.send(as_string(*bytes).substr(offset, length));
  }

  // application/vnd.ipld.car: the path's blocks, then the target's in the asked scope.
  void serve_car(const Exchange& x) {
    net::HttpResponse& res = x.res;
    const TrustlessRequest& tr = x.tr;
    // Resolve the path first, so that a bad path is a 404 rather than a broken stream. Each
    // segment is resolved on its own to name every logical root (X-Ipfs-Roots).
    RecordingStore rec(store, x.only_if_cached);
    Cid target = tr.cid;
    std::string roots = x.root;
    std::vector<Cid> path_blocks;
    if (!tr.path.empty()) {
      try {
        unixfs::Dag dag(rec);
        std::string_view p = tr.path;
        while (!p.empty()) {
          size_t slash = p.find('/');
          std::string_view comp = p.substr(0, slash);
          p = slash == std::string_view::npos ? std::string_view() : p.substr(slash + 1);
          if (comp.empty() || comp == ".") continue;
          target = dag.resolve(target, comp);
          roots += "," + target.str();
        }
      } catch (const NotFound& e) {
        return reject(res, x.missing, e.what());
      } catch (const Error& e) {
        return reject(res, 404, std::string("cannot resolve path: ") + e.what());
      }
      path_blocks = rec.read();
      if (!available(store, target, x.only_if_cached)) {
        return reject(res, x.missing, "block " + target.str() + " not found");
      }
    }
    // A range that starts past the end of a file is known to select nothing before any byte is
    // sent: the spec prefers a 400 to an empty answer then.
    if (tr.entity_bytes && tr.entity_bytes->from >= 0 && target.codec() == kCodecDagPb) {
      try {
        auto st = unixfs::Dag(rec).stat(target);
        if (st.kind == unixfs::NodeKind::kFile &&
            static_cast<uint64_t>(tr.entity_bytes->from) >= st.size && st.size > 0) {
          return reject(res, 400,
                        "entity-bytes starts at " + std::to_string(tr.entity_bytes->from) +
                            ", past the end of the " + std::to_string(st.size) + "-byte file");
        }
      } catch (const Error&) {
        // Not UnixFS: entity-bytes is ignored for it (the spec), the stream says the rest.
      }
    }
    // The Etag names everything that shapes the response (spec: scope and entity-bytes).
    std::string shape =
        tr.path + "|" + std::to_string(static_cast<int>(tr.scope)) + (tr.dups ? "|dups" : "");
    if (tr.entity_bytes) {
      shape += "|" + std::to_string(tr.entity_bytes->from) + ":" +
               (tr.entity_bytes->to ? std::to_string(*tr.entity_bytes->to) : "*");
    }
    std::string etag =
        "\"" + x.root + ".car." + to_hex(ByteView(sha256(as_bytes(shape)).data(), 6)) + "\"";
    if (immutable_headers_or_304(x, etag, roots, "car")) return;
    res.add_header("Content-Type", car_type(tr.dups));
    res.add_header("Content-Disposition",
                   disposition(x.req.query_param("filename"), x.root + ".car"));
    if (x.coding != Compression::none) {
      res.add_header("Content-Encoding", compression_name(x.coding));
    }
    res.begin_stream();
    if (res.is_head()) return res.end();
    try {
      if (x.coding == Compression::none) {
        auto write = [&](ByteView a, ByteView b) { return res.write_parts({a, b}); };
        auto write_file = [&](ByteView prefix, const BlockFile& f) {
          return res.write_file(f.fd.get(), static_cast<off_t>(f.offset), f.size, prefix);
        };
        CarSink sink{write, write_file};
        stream_car(store, tr.cid, path_blocks, target, tr.scope, tr.entity_bytes, tr.dups, sink);
      } else {
        // Coded: every byte goes through the compressor (no sendfile).
        ResponseSink out(res);
        auto c = compressor(out, x.coding);
        auto write = [&](ByteView a, ByteView b) {
          c->write(a);
          c->write(b);
          return true;
        };
        CarSink sink{write, nullptr};
        stream_car(store, tr.cid, path_blocks, target, tr.scope, tr.entity_bytes, tr.dups, sink);
        c->finish();
      }
      res.end();
    } catch (const ClientGone&) {
      // Nothing to tell anyone: the client left.
    }
  }
};

Server::Server(BlockStore& store, net::HttpServerOptions http, bool quiet)
    : impl_(std::make_unique<Impl>(store, std::move(http), quiet)) {}

Server::~Server() {
  stop();
}

void Server::set_routing(RoutingService* routing) {
  impl_->routing = routing;
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
