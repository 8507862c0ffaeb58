// The one HTTP client of cidrun: libcurl's multi interface driven by one background thread, so a
// fetch can keep dozens of requests in flight over a few reused connections while callers simply
// wait on a future. Redirects are never followed (a block source that points elsewhere is a source
// we did not choose), and only http/https are allowed.
#pragma once

#include <cstdint>
#include <functional>
#include <future>
#include <memory>
#include <string>
#include <vector>

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
  long total_timeout_ms = 0;  // 0 = no limit (streams rely on the stall limit instead)
  // A transfer slower than stall_bytes per stall_secs is aborted: catches hanging peers.
  long stall_bytes = 1;
  long stall_secs = 20;
  uint64_t max_body = 0;  // 0 = unlimited; larger successful bodies are aborted
  // Consumes a 200 body as it arrives (on the client's thread, so it must not block on another
  // request); returning false aborts the transfer. Without it the body is collected in `body`.
  std::function<bool(ByteView)> on_body;
};

struct Response {
  long status = 0;
  std::string content_type;
  std::string location;  // of a redirect, which is reported, never followed
  Bytes body;            // the body (capped at 64 KiB for non-200 answers)
  std::string error;     // transport-level failure ("" when an HTTP answer arrived in full)
  bool ok() const { return error.empty() && status == 200; }
  // "HTTP 404: <first line of the body>" or the transport error, for messages.
  std::string describe() const;
};

class Client {
 public:
  Client();
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  std::future<Response> start(Request req);
  Response perform(Request req) { return start(std::move(req)).get(); }

  // The process-wide client (one connection pool for every source).
  static Client& shared();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Percent-encodes a URL component; "/" is kept so that IPFS paths stay readable.
std::string url_escape(std::string_view s);

}  // namespace cidrun::http
