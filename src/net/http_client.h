// The one HTTP client of cidrun: HTTP/1.1 over our own sockets (net/conn.h), https through
// OpenSSL with the peer's certificate checked against the system store and the host name.
// A request runs on the caller's thread (perform) or on a thread of its own (start); connections
// are kept alive and reused per host, with a bound on how many one host may take. Redirects are
// reported, never followed (a block source that points elsewhere is a source we did not choose),
// and only http/https URLs are accepted. Proxies come from the environment (net/proxy.h: curl's
// variables and rules): http URLs go to the proxy in absolute form, https URLs through a CONNECT
// tunnel in which TLS runs with the origin, its name checked, never the proxy's. An https://
// proxy gets TLS of its own first (its certificate checked against its name, with the same trust
// as origins), and all of that runs inside it.
#pragma once

#include <cstdint>
#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "net/proxy.h"
#include "util/bytes.h"

namespace cidrun::http {

struct Request {
  std::string method = "GET";  // GET, HEAD or POST
  std::string url;
  std::vector<std::string> headers;  // "Name: value"
  // POST body as one multipart/form-data file part named "file", produced by upload (returns 0 at
  // the end, or throws to abort). Sent with chunked encoding: the size need not be known.
  std::function<size_t(uint8_t* buf, size_t len)> upload;
  long connect_timeout_ms = 5000;
  // The final response head (after any 1xx) must arrive within this once the request is sent: a
  // peer that accepts and never answers, or answers one header line at a time, or with endless
  // interim responses, moves bytes and so never trips the stall limit.
  long head_timeout_ms = 30'000;
  long total_timeout_ms = 0;  // 0 = no limit (streams rely on the stall limit instead)
  // A transfer that moves fewer than stall_bytes in stall_secs (either way) is aborted: catches
  // hanging and dripping peers.
  long stall_bytes = 1;
  long stall_secs = 20;
  uint64_t max_body = 0;  // 0 = unlimited; larger successful bodies are aborted
  // Consumes a 200 body as it arrives, on the thread that runs the request; returning false (or
  // throwing) aborts the transfer. Without it the body is collected in `body`.
  std::function<bool(ByteView)> on_body;
  // Where to collect a 200 body instead of Response::body (the body is then its first
  // Response::body_size bytes): a buffer that one caller reuses for request after request. It is
  // grown when too small and never shrunk, so its memory is neither zero-filled (as resizing a
  // fresh vector does) nor faulted in again for each body.
  Bytes* body_buffer = nullptr;
};

struct Response {
  long status = 0;
  std::string content_type;
  std::string location;  // of a redirect, which is reported, never followed
  // The coding the body came in (Content-Encoding: zstd or gzip, when the request's
  // Accept-Encoding allowed one); the body is always delivered decoded.
  std::string content_encoding;
  Bytes body;              // the body (capped at 64 KiB for non-200 answers)
  uint64_t body_size = 0;  // a collected 200 body's size (in body or Request::body_buffer)
  std::string error;       // transport-level failure ("" when an HTTP answer arrived in full)
  std::string proxy;       // the proxy the request went through ("" when direct), for messages
  bool ok() const { return error.empty() && status == 200; }
  // "HTTP 404: <first line of the body>" or the transport error, for messages; an answer that
  // came through a proxy says so (the proxy may be the one that answered).
  std::string describe() const;
};

struct ClientOptions {
  // PEM certificates trusted for https besides the system store (tests, private gateways); https
  // proxies are checked with the same trust.
  std::string ca_file;
  size_t max_connections_per_host = 64;  // requests beyond it wait for a connection
  size_t max_idle_per_host = 32;         // kept-alive connections parked for reuse
  // The proxies to use; unset: read from the environment when the client is made.
  std::optional<net::ProxyConfig> proxy;
};

class Client {
 public:
  explicit Client(ClientOptions opts = {});
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Runs the request on the calling thread. Never throws for network or HTTP failures: they are
  // in Response::error / status.
  Response perform(const Request& req);
  // Runs the request on a thread of its own.
  std::future<Response> start(Request req);

  // The process-wide client (one connection pool for every source).
  static Client& shared();

  // Connections opened so far (for tests of keep-alive reuse).
  uint64_t connections_opened() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Percent-encodes a URL component; "/" is kept so that IPFS paths stay readable.
std::string url_escape(std::string_view s);

}  // namespace cidrun::http
