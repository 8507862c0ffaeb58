#include "net/http_server.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <ctime>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "net/tls.h"
#include "util/error.h"
#include "util/fd.h"
#include "util/log.h"

namespace cidrun::net {
namespace {

using Clock = std::chrono::steady_clock;

// How long a worker waits for a client to take an error answer before closing anyway.
constexpr std::chrono::milliseconds kWorkerSendWait{1000};

// The Date field (RFC 9110 6.6.1), formatted once per second per thread.
const std::string& http_date() {
  thread_local time_t cached_at = 0;
  thread_local std::string cached;
  time_t now = ::time(nullptr);
  if (now != cached_at) {
    struct tm tm {};
    ::gmtime_r(&now, &tm);
    char buf[64];
    size_t n = ::strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    cached.assign(buf, n);
    cached_at = now;
  }
  return cached;
}

int poll_ms(std::chrono::milliseconds d) {
  return static_cast<int>(std::max<int64_t>(0, std::min<int64_t>(d.count(), 1 << 30)));
}

// Waits until fd is ready for events (POLLIN or POLLOUT); false on timeout or error.
bool wait_for(int fd, short events, std::chrono::milliseconds timeout) {
  pollfd p{fd, events, 0};
  for (;;) {
    int r = ::poll(&p, 1, poll_ms(timeout));
    if (r < 0 && errno == EINTR) continue;
    return r > 0 && (p.revents & events) && !(p.revents & (POLLERR | POLLNVAL));
  }
}

bool wait_writable(int fd, std::chrono::milliseconds timeout) {
  return wait_for(fd, POLLOUT, timeout);
}

// Writes all of data through TLS; false when the client is gone, broke the session or took
// nothing for `timeout`. A failed session is marked so that closing it sends nothing more.
bool tls_send(SSL* ssl, int fd, const void* data, size_t len, std::chrono::milliseconds timeout) {
  const auto* p = static_cast<const uint8_t*>(data);
  while (len > 0) {
    ERR_clear_error();
    size_t n = 0;
    int r = SSL_write_ex(ssl, p, len, &n);
    if (r == 1) {
      p += n;
      len -= n;
      continue;
    }
    int e = SSL_get_error(ssl, r);
    if ((e == SSL_ERROR_WANT_WRITE && wait_for(fd, POLLOUT, timeout)) ||
        (e == SSL_ERROR_WANT_READ && wait_for(fd, POLLIN, timeout))) {
      continue;
    }
    ERR_clear_error();
    SSL_set_quiet_shutdown(ssl, 1);
    return false;
  }
  return true;
}

bool send_all(int fd, std::string_view data, std::chrono::milliseconds timeout) {
  while (!data.empty()) {
    ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n > 0) {
      data.remove_prefix(static_cast<size_t>(n));
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else if (n < 0 && errno == EAGAIN) {
      if (!wait_writable(fd, timeout)) return false;
    } else {
      return false;
    }
  }
  return true;
}

std::string hex(uint64_t v) {
  char buf[20];
  int n = std::snprintf(buf, sizeof buf, "%llx", static_cast<unsigned long long>(v));
  return std::string(buf, static_cast<size_t>(n));
}

}  // namespace

std::string_view status_text(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 204:
      return "No Content";
    case 206:
      return "Partial Content";
    case 301:
      return "Moved Permanently";
    case 304:
      return "Not Modified";
    case 400:
      return "Bad Request";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 406:
      return "Not Acceptable";
    case 408:
      return "Request Timeout";
    case 410:
      return "Gone";
    case 411:
      return "Length Required";
    case 412:
      return "Precondition Failed";
    case 413:
      return "Content Too Large";
    case 414:
      return "URI Too Long";
    case 416:
      return "Range Not Satisfiable";
    case 429:
      return "Too Many Requests";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    case 505:
      return "HTTP Version Not Supported";
    default:
      return "Unknown";
  }
}

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
    if (listen.find(':') != colon)
      throw Error("--listen " + listen + ": write IPv6 as [ADDR]:PORT");
    if (colon > 0) host = listen.substr(0, colon);
    port = listen.substr(colon + 1);
  }
  int p = -1;
  if (!port.empty() && port.size() <= 5 &&
      port.find_first_not_of("0123456789") == std::string::npos) {
    p = std::stoi(port);
  }
  if (p < 0 || p > 65535) throw Error("--listen " + listen + ": invalid port");
  if (host.empty()) throw Error("--listen " + listen + ": empty host");
  return {host, p};
}

// ---- HttpResponse -------------------------------------------------------------------------

HttpResponse::HttpResponse(const Channel& ch)
    : fd_(ch.fd),
      ssl_(ch.ssl),
      head_only_(ch.head_only),
      keep_alive_(ch.keep_alive),
      minor_version_(ch.minor_version),
      write_timeout_(ch.write_timeout),
      stopping_(ch.server_stopping) {}

void HttpResponse::add_header(std::string_view name, std::string_view value) {
  if (started()) throw Error("HTTP response: header after the head was sent");
  for (char c : value) {
    // A CR or LF in a value would let the value write headers of its own.
    if (c == '\r' || c == '\n' || c == '\0') throw Error("HTTP response: bad header value");
  }
  headers_.append(name).append(": ").append(value).append("\r\n");
}

void HttpResponse::make_head(std::string_view framing) {
  if (started()) throw Error("HTTP response: sent twice");
  if (stopping_ && *stopping_) keep_alive_ = false;
  std::string& h = pending_;
  h.reserve(256 + headers_.size());
  h.append("HTTP/1.1 ").append(std::to_string(status_)).append(" ");
  h.append(status_text(status_)).append("\r\nDate: ").append(http_date()).append("\r\n");
  h.append(headers_);
  h.append(framing);
  if (!keep_alive_) {
    h.append("Connection: close\r\n");
  } else if (minor_version_ == 0) {
    h.append("Connection: keep-alive\r\n");
  }
  h.append("\r\n");
  state_ = State::kStreaming;
}

bool HttpResponse::fail() {
  failed_ = true;
  keep_alive_ = false;
  return false;
}

bool HttpResponse::send_iov(iovec* iov, int count, bool more) {
  if (failed_) return false;
  if (ssl_) {
    // Small pieces (a head and a short body) go as one TLS record: one write, one packet.
    size_t total = 0;
    for (int i = 0; i < count; ++i) total += iov[i].iov_len;
    if (count > 1 && total <= 16 * 1024) {
      thread_local std::string gather;
      gather.clear();
      for (int i = 0; i < count; ++i)
        gather.append(static_cast<char*>(iov[i].iov_base), iov[i].iov_len);
      return tls_send(ssl_, fd_, gather.data(), gather.size(), write_timeout_) || fail();
    }
    for (int i = 0; i < count; ++i) {
      if (!tls_send(ssl_, fd_, iov[i].iov_base, iov[i].iov_len, write_timeout_)) return fail();
    }
    return true;
  }
  // Skip empty pieces so that a fully written vector is simply count == 0.
  while (count > 0) {
    msghdr m{};
    m.msg_iov = iov;
    m.msg_iovlen = static_cast<size_t>(count);
    ssize_t n = ::sendmsg(fd_, &m, MSG_NOSIGNAL | (more ? MSG_MORE : 0));
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) {
        if (!wait_writable(fd_, write_timeout_)) return fail();
        continue;
      }
      return fail();
    }
    auto left = static_cast<size_t>(n);
    while (count > 0 && left >= iov->iov_len) {
      left -= iov->iov_len;
      ++iov;
      --count;
    }
    if (count > 0) {
      iov->iov_base = static_cast<char*>(iov->iov_base) + left;
      iov->iov_len -= left;
    }
  }
  return true;
}

bool HttpResponse::tls_send_file_range(int fd, off_t offset, size_t len) {
  thread_local std::vector<uint8_t> buf(256 * 1024);
  while (len > 0) {
    ssize_t n = ::pread(fd, buf.data(), std::min(len, buf.size()), offset);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      log::warn("HTTP response: file ended " + std::to_string(len) + " bytes early");
      return fail();
    }
    if (!tls_send(ssl_, fd_, buf.data(), static_cast<size_t>(n), write_timeout_)) return fail();
    offset += n;
    len -= static_cast<size_t>(n);
  }
  return true;
}

namespace {

// sendfile(2) without SIGPIPE. It has no MSG_NOSIGNAL, and ignoring SIGPIPE process-wide is not an
// option (containers exec'd from us would inherit it). So SIGPIPE is blocked on this thread for
// the call, and one the call raised (the client left mid-file: EPIPE) is taken off the thread's
// pending signals before the old mask comes back. A thread that blocked SIGPIPE itself keeps
// its mask and whatever is pending (nothing of it is ours to take).
ssize_t sendfile_nosignal(int out, int in, off_t* offset, size_t count) {
  sigset_t pipe_only, old;
  sigemptyset(&pipe_only);
  sigaddset(&pipe_only, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe_only, &old);
  bool blocked_before = sigismember(&old, SIGPIPE) == 1;
  ssize_t n = ::sendfile(out, in, offset, count);
  int err = errno;
  if (n < 0 && err == EPIPE && !blocked_before) {
    timespec none{};
    while (sigtimedwait(&pipe_only, nullptr, &none) < 0 && errno == EINTR) {
    }
  }
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  errno = err;
  return n;
}

}  // namespace

bool HttpResponse::send_file_range(int fd, off_t offset, size_t len) {
  if (ssl_) return tls_send_file_range(fd, offset, len);
  while (len > 0) {
    ssize_t n = sendfile_nosignal(fd_, fd, &offset, std::min<size_t>(len, 1 << 30));
    if (n > 0) {
      len -= static_cast<size_t>(n);
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else if (n < 0 && errno == EAGAIN) {
      if (!wait_writable(fd_, write_timeout_)) return fail();
    } else if (n == 0) {
      log::warn("HTTP response: file ended " + std::to_string(len) + " bytes early");
      return fail();
    } else {
      return fail();
    }
  }
  return true;
}

void HttpResponse::send(std::string_view body) {
  // 204 and 304 have no content, and no Content-Length that could be mistaken for one.
  if (status_ == 204 || status_ == 304) {
    body = {};
    make_head("");
  } else {
    make_head("Content-Length: " + std::to_string(body.size()) + "\r\n");
  }
  iovec iov[2] = {{pending_.data(), pending_.size()},
                  {const_cast<char*>(body.data()), head_only_ ? 0 : body.size()}};
  send_iov(iov, 2, false);
  pending_.clear();
  state_ = State::kDone;
}

void HttpResponse::send_file(int fd, off_t offset, size_t len) {
  make_head("Content-Length: " + std::to_string(len) + "\r\n");
  bool body = !head_only_ && len > 0;
  iovec iov[1] = {{pending_.data(), pending_.size()}};
  // MSG_MORE holds the head back so that it leaves in the same segment as the file's first bytes.
  if (send_iov(iov, 1, body) && body) send_file_range(fd, offset, len);
  pending_.clear();
  state_ = State::kDone;
}

void HttpResponse::begin_stream(std::optional<uint64_t> length) {
  length_ = length;
  if (length) {
    make_head("Content-Length: " + std::to_string(*length) + "\r\n");
  } else if (minor_version_ >= 1) {
    chunked_ = true;
    make_head("Transfer-Encoding: chunked\r\n");
  } else {
    keep_alive_ = false;  // an HTTP/1.0 body without a length ends with the connection
    make_head("");
  }
}

bool HttpResponse::write_parts(std::initializer_list<ByteView> parts) {
  if (state_ != State::kStreaming) throw Error("HTTP response: write outside a stream");
  if (failed_) return false;
  if (head_only_) return true;
  uint64_t size = 0;
  for (auto p : parts) size += p.size();
  if (size == 0) return true;
  if (length_ && written_ + size > *length_) throw Error("HTTP response: body exceeds its length");
  iovec iov[8];
  int n = 0;
  std::string chunk_line;
  if (chunked_) {
    chunk_line = hex(size) + "\r\n";
    pending_.append(chunk_line);
  }
  iov[n++] = {pending_.data(), pending_.size()};
  for (auto p : parts) {
    if (n == 7) throw Error("HTTP response: too many parts");
    iov[n++] = {const_cast<uint8_t*>(p.data()), p.size()};
  }
  bool ok = send_iov(iov, n, false);
  pending_.clear();
  // The chunk's CRLF goes out with the next chunk (or the last-chunk): one write saved per chunk.
  if (chunked_) pending_ = "\r\n";
  written_ += size;
  return ok;
}

bool HttpResponse::write(ByteView data) {
  return write_parts({data});
}

bool HttpResponse::write_file(int fd, off_t offset, size_t len, ByteView prefix) {
  if (state_ != State::kStreaming) throw Error("HTTP response: write outside a stream");
  if (failed_) return false;
  if (head_only_) return true;
  if (len == 0) return write(prefix);
  uint64_t size = prefix.size() + len;
  if (length_ && written_ + size > *length_) throw Error("HTTP response: body exceeds its length");
  if (chunked_) pending_.append(hex(size) + "\r\n");
  iovec iov[2] = {{pending_.data(), pending_.size()},
                  {const_cast<uint8_t*>(prefix.data()), prefix.size()}};
  // MSG_MORE: the chunk line and the prefix leave with the file's first bytes.
  bool ok = send_iov(iov, 2, true) && send_file_range(fd, offset, len);
  pending_.clear();
  if (chunked_) pending_ = "\r\n";
  written_ += size;
  return ok;
}

void HttpResponse::end() {
  if (state_ == State::kDone) return;
  if (state_ == State::kNew) throw Error("HTTP response: end() without a response");
  if (!failed_) {
    if (chunked_ && !head_only_) pending_.append("0\r\n\r\n");
    if (!pending_.empty()) {
      iovec iov[1] = {{pending_.data(), pending_.size()}};
      send_iov(iov, 1, false);
    }
    // A body shorter than its Content-Length leaves the client waiting: close instead.
    if (length_ && !head_only_ && written_ != *length_) fail();
  }
  pending_.clear();
  state_ = State::kDone;
}

// ---- HttpServer ---------------------------------------------------------------------------

struct HttpServer::Impl {
  struct Conn {
    explicit Conn(int socket) : fd(socket) {}
    ~Conn() {
      if (!ssl) return;
      // close_notify, unless the session failed (then OpenSSL must not write any more).
      if (handshaken) SSL_shutdown(ssl);
      SSL_free(ssl);
      ERR_clear_error();
    }
    Conn(const Conn&) = delete;
    Conn& operator=(const Conn&) = delete;
    UniqueFd fd;
    SSL* ssl = nullptr;                             // with TLS: the session over fd
    bool handshaken = false;                        // with TLS: the handshake is done
    std::string in;                                 // bytes read and not yet consumed
    std::optional<Clock::time_point> head_started;  // first byte of the request being read
    Clock::time_point deadline;                     // while idle in the reactor
    // Answered with an error and half-closed: the reactor drains what the client still sends
    // until it closes or the deadline passes (see linger).
    bool lingering = false;
    size_t drained = 0;
  };

  HttpHandler handler;
  HttpServerOptions opts;
  std::unique_ptr<TlsServerContext> tls;
  UniqueFd listen_fd;
  UniqueFd epoll_fd;
  UniqueFd wake_fd;
  std::atomic<bool> stopping{false};
  std::optional<Clock::time_point> accept_paused_until;  // reactor only
  std::atomic<bool> ran{false};

  std::mutex mu;  // guards idle, all, queue, and epoll registration of idle connections
  std::condition_variable work_cv;
  std::condition_variable done_cv;
  std::unordered_set<Conn*> idle;  // owned by the reactor
  // Every connection, owned here; the reactor and workers pass them around by pointer (the
  // epoll data holds one), and destroy() ends one.
  std::unordered_map<Conn*, std::unique_ptr<Conn>> all;
  std::deque<Conn*> queue;
  bool workers_exit = false;

  Impl(HttpHandler h, HttpServerOptions o) : handler(std::move(h)), opts(std::move(o)) {
    if (!opts.tls_cert.empty() || !opts.tls_key.empty()) {
      if (opts.tls_cert.empty()) throw Error("TLS needs a certificate too, not only a key");
      if (opts.tls_key.empty()) throw Error("TLS needs a private key too, not only a certificate");
      tls = std::make_unique<TlsServerContext>(opts.tls_cert, opts.tls_key);
    }
    // Made here, not in run(), so that stop() from another thread never races their creation.
    epoll_fd.reset(::epoll_create1(EPOLL_CLOEXEC));
    if (!epoll_fd.valid()) throw_errno("epoll_create1");
    wake_fd.reset(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
    if (!wake_fd.valid()) throw_errno("eventfd");
  }

  void wake() {
    uint64_t one = 1;
    [[maybe_unused]] auto n = ::write(wake_fd.get(), &one, sizeof one);
  }

  // Closes a connection that nobody else holds.
  void destroy(Conn* c) {
    std::unique_ptr<Conn> gone;
    {
      std::lock_guard lock(mu);
      auto it = all.find(c);
      if (it != all.end()) {
        gone = std::move(it->second);
        all.erase(it);
      }
    }
    done_cv.notify_all();
    // Closed here, outside the lock: UniqueFd closes the socket (which drops it from the epoll
    // set) and ~Conn ends its TLS session.
    gone.reset();
  }

  // Hands a quiet connection back to the reactor until it is readable or its deadline passes.
  void park(Conn* c) {
    std::unique_lock lock(mu);
    if (stopping) {
      lock.unlock();
      return destroy(c);
    }
    if (!c->lingering) {
      c->deadline =
          c->head_started ? *c->head_started + opts.head_timeout : Clock::now() + opts.idle_timeout;
    }
    idle.insert(c);
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLRDHUP | EPOLLONESHOT;
    ev.data.ptr = c;
    if (::epoll_ctl(epoll_fd.get(), EPOLL_CTL_MOD, c->fd.get(), &ev) != 0 &&
        ::epoll_ctl(epoll_fd.get(), EPOLL_CTL_ADD, c->fd.get(), &ev) != 0) {
      idle.erase(c);
      lock.unlock();
      destroy(c);
    }
  }

  // Writes all of data to c (through TLS when c has it).
  bool send_to(Conn* c, std::string_view data, std::chrono::milliseconds timeout) {
    if (c->ssl) return tls_send(c->ssl, c->fd.get(), data.data(), data.size(), timeout);
    return send_all(c->fd.get(), data, timeout);
  }

  // What a read from a connection found.
  enum class Received {
    kData,        // n bytes
    kEnd,         // the client closed its side
    kNothingYet,  // nothing to read now
    kFailed,      // the connection (or its TLS session) failed
  };
  // Reads what c has into buf; sets n for kData.
  Received receive(Conn* c, char* buf, size_t len, size_t& n) {
    if (!c->ssl) {
      for (;;) {
        ssize_t r = ::recv(c->fd.get(), buf, len, 0);
        if (r > 0) {
          n = static_cast<size_t>(r);
          return Received::kData;
        }
        if (r == 0) return Received::kEnd;
        if (errno == EINTR) continue;
        return errno == EAGAIN ? Received::kNothingYet : Received::kFailed;
      }
    }
    for (;;) {
      ERR_clear_error();
      int r = SSL_read_ex(c->ssl, buf, len, &n);
      if (r == 1) return n > 0 ? Received::kData : Received::kEnd;
      int e = SSL_get_error(c->ssl, r);
      if (e == SSL_ERROR_WANT_READ) return Received::kNothingYet;
      if (e == SSL_ERROR_WANT_WRITE && wait_writable(c->fd.get(), opts.write_timeout)) continue;
      if (e == SSL_ERROR_ZERO_RETURN) return Received::kEnd;
      ERR_clear_error();
      SSL_set_quiet_shutdown(c->ssl, 1);
      return Received::kFailed;
    }
  }

  enum class Handshake { kDone, kWaiting, kFailed };
  // Advances c's TLS handshake as far as the client's bytes allow.
  Handshake handshake(Conn* c) {
    for (;;) {
      ERR_clear_error();
      int r = SSL_accept(c->ssl);
      if (r == 1) {
        c->handshaken = true;
        return Handshake::kDone;
      }
      int e = SSL_get_error(c->ssl, r);
      if (e == SSL_ERROR_WANT_READ) return Handshake::kWaiting;
      if (e == SSL_ERROR_WANT_WRITE && wait_writable(c->fd.get(), opts.write_timeout)) continue;
      // A client that does not trust us, or speaks plain HTTP here: nothing to answer it with.
      log::debug("TLS handshake failed: " + ssl_errors());
      SSL_set_quiet_shutdown(c->ssl, 1);
      return Handshake::kFailed;
    }
  }

  // An error response for a request that could not be parsed: the connection is closed after it,
  // since where the next request starts is unknown. send_wait bounds the wait for the socket to
  // take the answer: zero on the reactor thread, which never waits for one client.
  void reject(Conn* c, int status, const std::string& message,
              std::chrono::milliseconds send_wait) {
    if (c->ssl && !c->handshaken) return destroy(c);  // no session to answer in
    std::string body = message + "\n";
    std::string resp = "HTTP/1.1 " + std::to_string(status) + " " +
                       std::string(status_text(status)) + "\r\nDate: " + http_date() +
                       "\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: " +
                       std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
    send_to(c, resp, send_wait);
    linger(c);
  }

  // Closing with unread input makes the kernel send a RST, which can destroy the response
  // before the client reads it: half-close, then let the reactor drain what still comes for a
  // moment before closing. Nobody waits for that: a worker is free at once, and the reactor
  // reads the connection only when it is readable (many clients timed out at once once cost
  // 200 ms each, one after another, on the reactor thread).
  void linger(Conn* c) {
    if (c->ssl && c->handshaken) {
      SSL_shutdown(c->ssl);
      c->handshaken = false;  // close_notify is out: not again when c is destroyed
    }
    ::shutdown(c->fd.get(), SHUT_WR);
    c->lingering = true;
    c->deadline = Clock::now() + kLinger;
    park(c);
  }

  // On the reactor: reads and drops what a lingering connection sent; closes it at its end, or
  // once it has sent too much.
  void drain(Conn* c) {
    char buf[16 * 1024];
    for (;;) {
      ssize_t n = ::recv(c->fd.get(), buf, sizeof buf, MSG_DONTWAIT);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && errno == EAGAIN) return park(c);
      if (n <= 0) return destroy(c);
      c->drained += static_cast<size_t>(n);
      if (c->drained > kMaxDrained) return destroy(c);
    }
  }

  static constexpr std::chrono::milliseconds kLinger{200};
  static constexpr size_t kMaxDrained = 1 << 20;

  // Serves requests on c while it has them; then parks or closes it.
  void serve(Conn* c) {
    char buf[16 * 1024];
    for (;;) {
      if (stopping) return destroy(c);
      if (c->head_started && Clock::now() > *c->head_started + opts.head_timeout) {
        return reject(c, 408, "request not received in time", kWorkerSendWait);
      }
      if (c->ssl && !c->handshaken) {
        Handshake h = handshake(c);
        if (h == Handshake::kWaiting) return park(c);
        if (h == Handshake::kFailed) return destroy(c);
      }
      if (!c->in.empty()) {
        auto parsed = parse_request_head(c->in, opts.limits);
        if (auto* e = std::get_if<HttpParseError>(&parsed)) {
          return reject(c, e->status, e->message, kWorkerSendWait);
        }
        if (auto* p = std::get_if<HttpParsed>(&parsed)) {
          size_t total = p->head_bytes + p->request.content_length;
          if (c->in.size() >= total) {
            p->request.body = c->in.substr(p->head_bytes, p->request.content_length);
            c->in.erase(0, total);
            c->head_started.reset();
            if (!c->in.empty()) c->head_started = Clock::now();
            if (!respond(c, p->request)) return destroy(c);
            continue;
          }
        }
      }
      size_t n = 0;
      switch (receive(c, buf, sizeof buf, n)) {
        case Received::kData:
          if (!c->head_started) c->head_started = Clock::now();
          c->in.append(buf, n);
          continue;
        case Received::kNothingYet:
          return park(c);
        case Received::kEnd:
        case Received::kFailed:
          return destroy(c);  // the client is gone
      }
    }
  }

  // One request, one response; false when the connection must close.
  bool respond(Conn* c, const HttpRequest& req) {
    const HttpResponse::Channel channel{.fd = c->fd.get(),
                                        .ssl = c->ssl,
                                        .head_only = req.is_head(),
                                        .keep_alive = req.keep_alive() && !stopping,
                                        .minor_version = req.minor_version,
                                        .write_timeout = opts.write_timeout,
                                        .server_stopping = &stopping};
    HttpResponse res(channel);
    try {
      handler(req, res);
      if (!res.started()) {
        res.set_status(500);
        res.send("handler sent no response\n");
      }
      res.end();
    } catch (const std::exception& e) {
      if (!res.started()) {
        HttpResponse err(channel);
        err.set_status(500);
        err.add_header("Content-Type", "text/plain; charset=utf-8");
        err.send(std::string(e.what()) + "\n");
        if (opts.on_response) opts.on_response(req, 500);
        return !err.must_close();
      }
      // The head is gone: the only honest signal left is a body cut short.
      log::warn(req.method + " " + req.target + ": response aborted: " + e.what());
      return false;
    }
    if (opts.on_response) opts.on_response(req, res.status());
    return !res.must_close();
  }

  void work() {
    for (;;) {
      Conn* c = nullptr;
      {
        std::unique_lock lock(mu);
        work_cv.wait(lock, [&] { return workers_exit || !queue.empty(); });
        if (queue.empty()) return;
        c = queue.front();
        queue.pop_front();
      }
      serve(c);
    }
  }

  void accept_all() {
    for (;;) {
      int fd = ::accept4(listen_fd.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) {
        if (errno == EINTR || errno == ECONNABORTED) continue;
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
          // Out of descriptors: the pending connection stays readable, and a level-triggered
          // listener would spin. Stop listening for a moment; closing connections frees some.
          log::warn("accept: " + std::string(std::strerror(errno)) + " (pausing new connections)");
          ::epoll_ctl(epoll_fd.get(), EPOLL_CTL_DEL, listen_fd.get(), nullptr);
          accept_paused_until = Clock::now() + std::chrono::milliseconds(100);
        } else if (errno != EAGAIN) {
          log::warn("accept: " + std::string(std::strerror(errno)));
        }
        return;
      }
      int one = 1;
      ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      auto owned = std::make_unique<Conn>(fd);
      Conn* c = owned.get();
      if (tls) {
        c->ssl = SSL_new(tls->get());
        if (!c->ssl) {
          log::warn("TLS: cannot start a session: " + ssl_errors());
          continue;
        }
        try {
          BIO* bio = nosignal_socket_bio(fd);
          SSL_set_bio(c->ssl, bio, bio);  // the session owns the BIO now
        } catch (const Error& e) {
          log::warn(e.what());
          continue;
        }
        // The handshake and the first request head share the head timeout.
        c->head_started = Clock::now();
      }
      std::unique_lock lock(mu);
      if (all.size() >= opts.max_connections) {
        lock.unlock();
        if (tls) continue;  // a plain-text 503 would mean nothing inside TLS
        static constexpr std::string_view busy =
            "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nRetry-After: 1\r\n"
            "Connection: close\r\n\r\n";
        [[maybe_unused]] auto n = ::send(fd, busy.data(), busy.size(), MSG_NOSIGNAL);
        continue;
      }
      all.emplace(c, std::move(owned));
      // A connection that says nothing gets the head timeout, not the (longer) idle one.
      c->deadline = Clock::now() + opts.head_timeout;
      idle.insert(c);
      epoll_event ev{};
      ev.events = EPOLLIN | EPOLLRDHUP | EPOLLONESHOT;
      ev.data.ptr = c;
      if (::epoll_ctl(epoll_fd.get(), EPOLL_CTL_ADD, fd, &ev) != 0) {
        idle.erase(c);
        all.erase(c);  // closes it
      }
    }
  }

  void expire_idle() {
    auto now = Clock::now();
    std::vector<Conn*> expired;
    {
      std::lock_guard lock(mu);
      for (Conn* c : idle) {
        if (stopping || c->deadline <= now) expired.push_back(c);
      }
      for (Conn* c : expired) idle.erase(c);
    }
    // A connection mid-head gets a 408; an idle keep-alive one is just closed (RFC 9112 9.5),
    // and so is one whose lingering is over.
    for (Conn* c : expired) {
      if (!stopping && c->head_started && !c->lingering) {
        reject(c, 408, "request not received in time", std::chrono::milliseconds(0));
      } else {
        destroy(c);
      }
    }
  }

  void reactor() {
    epoll_event events[128];
    auto next_sweep = Clock::now();
    std::optional<Clock::time_point> stop_deadline;
    bool forced = false;
    for (;;) {
      int n = ::epoll_wait(epoll_fd.get(), events, 128, 100);
      if (n < 0 && errno != EINTR) throw_errno("epoll_wait");
      for (int i = 0; i < n; ++i) {
        void* p = events[i].data.ptr;
        if (p == &listen_fd) {
          if (!stopping) accept_all();
        } else if (p == &wake_fd) {
          uint64_t v;
          [[maybe_unused]] auto r = ::read(wake_fd.get(), &v, sizeof v);
        } else {
          auto* c = static_cast<Conn*>(p);
          std::unique_lock lock(mu);
          if (!idle.erase(c)) continue;
          if (c->lingering) {
            lock.unlock();
            drain(c);
            continue;
          }
          queue.push_back(c);
          work_cv.notify_one();
        }
      }
      auto now = Clock::now();
      if (stopping && !stop_deadline) {
        ::epoll_ctl(epoll_fd.get(), EPOLL_CTL_DEL, listen_fd.get(), nullptr);
        listen_fd.reset();
        stop_deadline = now + opts.shutdown_grace;
        next_sweep = now;
      }
      if (accept_paused_until && now >= *accept_paused_until && !stopping) {
        accept_paused_until.reset();
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.ptr = &listen_fd;
        ::epoll_ctl(epoll_fd.get(), EPOLL_CTL_ADD, listen_fd.get(), &ev);
      }
      if (now >= next_sweep) {
        expire_idle();
        next_sweep = now + std::chrono::milliseconds(stopping ? 50 : 500);
      }
      if (stopping) {
        std::unique_lock lock(mu);
        if (all.empty()) break;
        if (!forced && now >= *stop_deadline) {
          // Requests still streaming after the grace period: cut them off.
          forced = true;
          for (const auto& entry : all) ::shutdown(entry.first->fd.get(), SHUT_RDWR);
        }
      }
    }
  }
};

HttpServer::HttpServer(HttpHandler handler, HttpServerOptions opts)
    : impl_(std::make_unique<Impl>(std::move(handler), std::move(opts))) {}

HttpServer::~HttpServer() {
  stop();
}

int HttpServer::bind() {
  auto [host, port] = parse_listen(impl_->opts.listen);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  addrinfo* res = nullptr;
  int rc = ::getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &res);
  if (rc != 0) throw Error("listen on " + impl_->opts.listen + ": " + ::gai_strerror(rc));
  std::unique_ptr<addrinfo, void (*)(addrinfo*)> guard(res, ::freeaddrinfo);
  int err = 0;
  for (addrinfo* a = res; a; a = a->ai_next) {
    UniqueFd fd(::socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!fd.valid()) {
      err = errno;
      continue;
    }
    int one = 1;
    ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (::bind(fd.get(), a->ai_addr, a->ai_addrlen) != 0 || ::listen(fd.get(), 1024) != 0) {
      err = errno;
      continue;
    }
    sockaddr_storage bound{};
    socklen_t len = sizeof bound;
    ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&bound), &len);
    int got = bound.ss_family == AF_INET6
                  ? ntohs(reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port)
                  : ntohs(reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
    impl_->listen_fd = std::move(fd);
    return got;
  }
  throw_errno("listen on " + impl_->opts.listen, err ? err : EADDRNOTAVAIL);
}

void HttpServer::run() {
  Impl& s = *impl_;
  if (!s.listen_fd.valid()) throw Error("HTTP server: run() before bind()");
  if (s.ran.exchange(true)) throw Error("HTTP server: run() twice");
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.ptr = &s.listen_fd;
  if (::epoll_ctl(s.epoll_fd.get(), EPOLL_CTL_ADD, s.listen_fd.get(), &ev) != 0) {
    throw_errno("epoll_ctl listen");
  }
  ev.data.ptr = &s.wake_fd;
  if (::epoll_ctl(s.epoll_fd.get(), EPOLL_CTL_ADD, s.wake_fd.get(), &ev) != 0) {
    throw_errno("epoll_ctl wake");
  }
  std::vector<std::thread> workers;
  for (size_t i = 0; i < std::max<size_t>(1, s.opts.threads); ++i) {
    workers.emplace_back([&s] { s.work(); });
  }
  auto finish = [&] {
    {
      std::lock_guard lock(s.mu);
      s.workers_exit = true;
    }
    s.work_cv.notify_all();
    for (auto& t : workers) t.join();
  };
  try {
    s.reactor();
  } catch (...) {
    s.stopping = true;
    finish();
    throw;
  }
  finish();
}

void HttpServer::stop() {
  impl_->stopping = true;
  impl_->wake();
}

}  // namespace cidrun::net
