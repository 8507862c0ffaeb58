// An HTTP/1.1 server on plain sockets (RFC 9112), for `cidrun serve`.
//
// Shape: one reactor thread owns the listening sockets and every idle connection (epoll, one-shot);
// a bounded pool of worker threads serves connections that have bytes to read. A worker keeps a
// connection while it has requests (keep-alive, pipelining) and gives it back to the reactor when
// it goes quiet, so idle keep-alive clients cost a file descriptor, not a thread. Handlers are
// plain blocking code: a gateway response is a loop of disk reads and socket writes.
//
// Protections: hard limits on the request head (414/431), a deadline for a whole request head
// (slowloris), an idle keep-alive timeout, a write timeout for clients that stop reading, a cap on
// open connections; SIGPIPE never fires (MSG_NOSIGNAL, a TLS BIO that uses it, SIGPIPE blocked
// around sendfile), and the process's SIGPIPE disposition is left as it is; stop() finishes
// requests in flight.
//
// TLS (tls_cert and tls_key set): each connection's handshake runs on a worker like a request
// head, parked in the reactor while it waits for the client and bounded by the head timeout.
// Bodies then go through OpenSSL (sendfile has nothing to send from: file bodies are read into a
// buffer and encrypted).
#pragma once

#include <openssl/types.h>
#include <sys/types.h>
#include <sys/uio.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "net/http_request.h"
#include "util/bytes.h"

namespace cidrun::net {

// The response side of one exchange. Exactly one of send(), send_file() or begin_stream() ...
// end() produces the response; a handler that does none gets a 500. For HEAD requests the body is
// never written (Content-Length is still what GET would send when the handler gives it).
class HttpResponse {
 public:
  // Where and how a response goes: made by the server for each request.
  struct Channel {
    int fd = -1;             // the connected socket
    SSL* ssl = nullptr;      // its TLS session, when it has one
    bool head_only = false;  // a HEAD request: the body is never written
    bool keep_alive = true;  // the connection may carry another request after this one
    int minor_version = 1;   // the request's HTTP/1.x
    std::chrono::milliseconds write_timeout{60'000};  // as HttpServerOptions::write_timeout
    // When set by the time the head goes out, the connection closes after this response.
    const std::atomic<bool>* server_stopping = nullptr;
  };
  explicit HttpResponse(const Channel& ch);
  HttpResponse(const HttpResponse&) = delete;
  HttpResponse& operator=(const HttpResponse&) = delete;

  void set_status(int status) { status_ = status; }
  int status() const { return status_; }
  // Adds a response field. Date, Content-Length, Transfer-Encoding and Connection are the
  // server's.
  void add_header(std::string_view name, std::string_view value);

  // The whole body at once (Content-Length).
  void send(std::string_view body);
  // A body of len bytes read from fd at offset, sent with sendfile(2) (zero-copy from the page
  // cache). Throws Error if the file ends early (headers are gone by then: the connection drops).
  void send_file(int fd, off_t offset, size_t len);

  // Streaming: with a length the body is exactly that many bytes, else chunked (HTTP/1.1) or
  // ended by closing the connection (HTTP/1.0).
  void begin_stream(std::optional<uint64_t> length = std::nullopt);
  // Each returns false when the client is gone or too slow; the handler should then stop. With a
  // chunked body, each call is one chunk: call with big pieces.
  bool write(ByteView data);
  // Several pieces as one write (and one chunk): a header and its data without a copy.
  bool write_parts(std::initializer_list<ByteView> parts);
  // prefix, then len bytes of fd from offset (sendfile), as one piece of the stream.
  bool write_file(int fd, off_t offset, size_t len, ByteView prefix = {});
  void end();

  bool is_head() const { return head_only_; }
  bool started() const { return state_ != State::kNew; }
  bool finished() const { return state_ == State::kDone; }
  // The connection cannot carry another request (client gone, short body, close requested).
  bool must_close() const { return failed_ || !keep_alive_; }
  // Marks the connection for closing after this response (before the head is sent).
  void close_after() { keep_alive_ = false; }

 private:
  void make_head(std::string_view framing);
  bool send_iov(::iovec* iov, int count, bool more);
  bool send_file_range(int fd, off_t offset, size_t len);
  bool tls_send_file_range(int fd, off_t offset, size_t len);
  bool fail();

  enum class State { kNew, kStreaming, kDone };
  int fd_;
  SSL* ssl_;
  bool head_only_;
  bool keep_alive_;
  int minor_version_;
  std::chrono::milliseconds write_timeout_;
  const std::atomic<bool>* stopping_;
  int status_ = 200;
  std::string headers_;
  State state_ = State::kNew;
  bool chunked_ = false;
  bool failed_ = false;
  std::optional<uint64_t> length_;
  uint64_t written_ = 0;
  std::string pending_;  // head and chunk trailers not sent yet: they go with the next bytes
};

using HttpHandler = std::function<void(const HttpRequest&, HttpResponse&)>;

struct HttpServerOptions {
  std::string listen = "127.0.0.1:8080";  // HOST:PORT, [V6]:PORT, :PORT or PORT; port 0 = any
  size_t threads = 64;                    // requests served at the same time
  size_t max_connections = 4096;          // open connections; beyond, new ones get a 503
  HttpLimits limits;
  std::chrono::milliseconds head_timeout{10'000};   // a whole request head must arrive in this
  std::chrono::milliseconds idle_timeout{30'000};   // keep-alive connection with no request
  std::chrono::milliseconds write_timeout{60'000};  // a client that reads nothing for this long
  std::chrono::milliseconds shutdown_grace{5'000};  // stop(): requests in flight get this long
  // PEM files: with both set the server speaks https only (net/tls.h loads them; the server's
  // constructor throws when they cannot be used).
  std::string tls_cert;
  std::string tls_key;
  // Called after each response: method, target, status (no logging when unset).
  std::function<void(const HttpRequest&, int status)> on_response;
};

class HttpServer {
 public:
  HttpServer(HttpHandler handler, HttpServerOptions opts);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds and listens; returns the port (useful with port 0). Throws Error when it cannot.
  int bind();
  // Serves until stop(); returns once every connection is closed.
  void run();
  // Thread-safe and async-signal-unsafe; may be called before run() or from another thread.
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// "HOST:PORT", "[V6]:PORT", ":PORT" or "PORT" -> host and port (host defaults to 127.0.0.1).
std::pair<std::string, int> parse_listen(const std::string& listen);

// "Not Found" for 404, ... ("Unknown" for codes it does not know).
std::string_view status_text(int status);

}  // namespace cidrun::net
