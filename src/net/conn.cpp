#include "net/conn.h"

#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <thread>
#include <utility>

#include "net/tls.h"
#include "util/error.h"
#include "util/thread_pool.h"

namespace cidrun::net {
namespace {

int ms_until(Clock::time_point deadline) {
  auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return static_cast<int>(std::clamp<long long>(left, 0, 1'000'000'000));
}

// TLS in TLS: the inner session's BIO moves its records through the outer session (SSL_read /
// SSL_write on it, on the same non-blocking socket). The outer session's wait becomes the
// inner's: a retry flag in the direction the outer wants, so the caller polls for that. A hard
// failure of the outer session leaves its errors queued, where the inner's caller reads them;
// the outer's end of stream is an end of stream here too.
SSL* outer_of(BIO* b) {
  return static_cast<SSL*>(BIO_get_data(b));
}

int tunnel_result(BIO* b, SSL* outer, int r) {
  switch (SSL_get_error(outer, r)) {
    case SSL_ERROR_WANT_READ:
      BIO_set_retry_read(b);
      return -1;
    case SSL_ERROR_WANT_WRITE:
      BIO_set_retry_write(b);
      return -1;
    case SSL_ERROR_ZERO_RETURN:
      errno = 0;
      return 0;
    case SSL_ERROR_SYSCALL:
      // No errno and nothing queued: the proxy closed the socket without close_notify.
      if (errno == 0 && ERR_peek_error() == 0) return 0;
      return -1;
    default:
      return -1;
  }
}

int tunnel_write(BIO* b, const char* data, int len) {
  BIO_clear_retry_flags(b);
  SSL* outer = outer_of(b);
  size_t n = 0;
  int r = SSL_write_ex(outer, data, static_cast<size_t>(len), &n);
  return r == 1 ? static_cast<int>(n) : tunnel_result(b, outer, r);
}

int tunnel_read(BIO* b, char* data, int len) {
  BIO_clear_retry_flags(b);
  SSL* outer = outer_of(b);
  size_t n = 0;
  int r = SSL_read_ex(outer, data, static_cast<size_t>(len), &n);
  return r == 1 ? static_cast<int>(n) : tunnel_result(b, outer, r);
}

long tunnel_ctrl(BIO* /*b*/, int cmd, long /*num*/, void* /*ptr*/) {
  return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

BIO* tunnel_bio(SSL* outer) {
  static BIO_METHOD* method = [] {
    BIO_METHOD* m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "cidrun tls tunnel");
    BIO_meth_set_write(m, tunnel_write);
    BIO_meth_set_read(m, tunnel_read);
    BIO_meth_set_ctrl(m, tunnel_ctrl);
    return m;
  }();
  BIO* b = BIO_new(method);
  if (!b) throw Error("TLS: cannot create a BIO: " + ssl_errors());
  BIO_set_data(b, outer);
  BIO_set_init(b, 1);
  return b;
}

std::string host_port(const std::string& host, uint16_t port) {
  return (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" +
         std::to_string(port);
}

// Connects one address; the socket is left non-blocking. Returns an invalid fd (and the reason)
// when this address did not work.
UniqueFd connect_one(const addrinfo* ai, Clock::time_point deadline, std::string& why) {
  UniqueFd fd(
      ::socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol));
  if (!fd.valid()) {
    why = std::strerror(errno);
    return {};
  }
  if (::connect(fd.get(), ai->ai_addr, ai->ai_addrlen) != 0) {
    if (errno != EINPROGRESS) {
      why = std::strerror(errno);
      return {};
    }
    pollfd p{fd.get(), POLLOUT, 0};
    int r;
    while ((r = ::poll(&p, 1, ms_until(deadline))) < 0 && errno == EINTR) {
    }
    if (r == 0) {
      why = "connection timed out";
      return {};
    }
    int err = 0;
    socklen_t len = sizeof err;
    ::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) {
      why = std::strerror(err);
      return {};
    }
  }
  // Requests are written in one piece; Nagle would only delay the small ones.
  int one = 1;
  ::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

using AddrInfo = std::unique_ptr<addrinfo, void (*)(addrinfo*)>;

// A lookup on its own thread; shared with the caller, who may stop waiting for it.
struct Lookup {
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  int rc = 0;
  int err = 0;  // errno, for EAI_SYSTEM
  addrinfo* res = nullptr;
  ~Lookup() {
    if (res) ::freeaddrinfo(res);
  }
};

// getaddrinfo with a deadline. getaddrinfo itself has none (a DNS server that does not answer
// holds it for resolv.conf's timeout times its attempts, for every name server), so a name is
// looked up on a thread of its own and the caller stops waiting at the deadline; a lookup still
// running then finishes (and frees what it found) on its own. Addresses need no thread.
AddrInfo resolve(const std::string& host, uint16_t port, Clock::time_point deadline) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
  std::string service = std::to_string(port);
  addrinfo* res = nullptr;
  if (::getaddrinfo(host.c_str(), service.c_str(), &hints, &res) == 0) {
    return {res, ::freeaddrinfo};
  }
  hints.ai_flags = AI_ADDRCONFIG | AI_NUMERICSERV;
  auto lookup = std::make_shared<Lookup>();
  auto started = Clock::now();
  signal_free_thread([lookup, host, service, hints] {
    addrinfo* found = nullptr;
    int rc = ::getaddrinfo(host.c_str(), service.c_str(), &hints, &found);
    int err = errno;
    std::lock_guard l(lookup->mu);
    lookup->rc = rc;
    lookup->err = err;
    lookup->res = found;
    lookup->done = true;
    lookup->cv.notify_all();
  }).detach();
  std::unique_lock l(lookup->mu);
  if (!lookup->cv.wait_until(l, deadline, [&] { return lookup->done; })) {
    auto waited = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started);
    throw Error("cannot resolve " + host + ": no answer within " + std::to_string(waited.count()) +
                " ms");
  }
  if (lookup->rc != 0) {
    throw Error(
        "cannot resolve " + host + ": " +
        (lookup->rc == EAI_SYSTEM ? std::strerror(lookup->err) : ::gai_strerror(lookup->rc)));
  }
  return {std::exchange(lookup->res, nullptr), ::freeaddrinfo};
}

}  // namespace

std::vector<Bytes> resolve_addresses(const std::string& host, Clock::time_point deadline) {
  AddrInfo res = resolve(host, 0, deadline);
  std::vector<Bytes> out;
  for (addrinfo* ai = res.get(); ai; ai = ai->ai_next) {
    if (ai->ai_family == AF_INET) {
      const auto* a = reinterpret_cast<const sockaddr_in*>(ai->ai_addr);
      const auto* b = reinterpret_cast<const uint8_t*>(&a->sin_addr);
      out.emplace_back(b, b + 4);
    } else if (ai->ai_family == AF_INET6) {
      const auto* a = reinterpret_cast<const sockaddr_in6*>(ai->ai_addr);
      const auto* b = reinterpret_cast<const uint8_t*>(&a->sin6_addr);
      out.emplace_back(b, b + 16);
    }
  }
  if (out.empty()) throw Error("cannot resolve " + host + ": no address");
  return out;
}

std::unique_ptr<Conn> Conn::open(const std::string& host, uint16_t port, const TlsContext* tls,
                                 Clock::time_point deadline) {
  std::unique_ptr<Conn> c = open_tcp(host, port, deadline);
  if (tls) c->start_tls(*tls, host, port, deadline);
  return c;
}

std::unique_ptr<Conn> Conn::open_tcp(const std::string& host, uint16_t port,
                                     Clock::time_point deadline) {
  AddrInfo res = resolve(host, port, deadline);
  UniqueFd fd;
  std::string why = "no address";
  for (addrinfo* ai = res.get(); ai && !fd.valid(); ai = ai->ai_next) {
    if (Clock::now() >= deadline) {
      why = "connection timed out";
      break;
    }
    fd = connect_one(ai, deadline, why);
  }
  if (!fd.valid()) throw Error("cannot connect to " + host_port(host, port) + ": " + why);
  return std::unique_ptr<Conn>(new Conn(std::move(fd), nullptr));
}

void Conn::start_tls(const TlsContext& tls, const std::string& host, uint16_t port,
                     Clock::time_point deadline) {
  if (outer_) throw Error("TLS: a connection carries at most two sessions");
  BIO* bio = ssl_ ? tunnel_bio(ssl_) : nosignal_socket_bio(fd_.get());
  SSL* ssl = SSL_new(tls.get());
  if (!ssl) {
    BIO_free(bio);
    throw Error("TLS: cannot create a session: " + ssl_errors());
  }
  SSL_set_bio(ssl, bio, bio);
  // Both are freed with the connection from here on.
  outer_ = ssl_;
  ssl_ = ssl;
  // SNI only for names (RFC 6066 forbids literal addresses); the certificate is checked
  // against either.
  bool literal = host.find(':') != std::string::npos ||
                 host.find_first_not_of("0123456789.") == std::string::npos;
  if (!literal) {
    // SSL_set_tlsext_host_name, without the macro's C cast.
    SSL_ctrl(ssl, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
             const_cast<char*>(host.c_str()));
  }
  if (SSL_set1_host(ssl, host.c_str()) != 1) {
    throw Error("TLS: cannot check the name " + host + ": " + ssl_errors());
  }
  for (;;) {
    ERR_clear_error();
    int r = SSL_connect(ssl);
    if (r == 1) break;
    int e = SSL_get_error(ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
      if (!wait(e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline)) {
        throw Error("TLS handshake with " + host_port(host, port) + " timed out");
      }
      continue;
    }
    long v = SSL_get_verify_result(ssl);
    std::string msg = "TLS handshake with " + host_port(host, port) + " failed: ";
    if (v != X509_V_OK) {
      msg += std::string("certificate verify failed: ") + X509_verify_cert_error_string(v);
    } else {
      std::string errs = ssl_errors();
      msg +=
          errs.empty() ? (e == SSL_ERROR_SYSCALL ? "connection closed" : "protocol error") : errs;
    }
    throw Error(msg);
  }
}

Conn::~Conn() {
  // The inner session first: its BIO reaches into the outer one. Each frees its own BIO; the fd
  // is closed by fd_.
  if (ssl_) SSL_free(ssl_);
  if (outer_) SSL_free(outer_);
}

bool Conn::wait(short events, Clock::time_point deadline) const {
  pollfd p{fd_.get(), events, 0};
  for (;;) {
    int r = ::poll(&p, 1, ms_until(deadline));
    if (r > 0) return true;
    if (r == 0) return false;
    if (errno != EINTR) throw_errno("poll");
  }
}

ptrdiff_t Conn::read(uint8_t* buf, size_t len, Clock::time_point deadline) {
  len = std::min<size_t>(len, 1 << 30);
  if (!ssl_) {
    for (;;) {
      ssize_t n = ::recv(fd_.get(), buf, len, 0);
      if (n >= 0) return n;
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) throw_errno("receive");
      if (!wait(POLLIN, deadline)) return -1;
    }
  }
  for (;;) {
    ERR_clear_error();
    size_t n = 0;
    int r = SSL_read_ex(ssl_, buf, len, &n);
    if (r == 1) return static_cast<ptrdiff_t>(n);
    int e = SSL_get_error(ssl_, r);
    if (e == SSL_ERROR_ZERO_RETURN) return 0;
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
      if (!wait(e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline)) return -1;
      continue;
    }
    if (e == SSL_ERROR_SYSCALL && errno != 0) throw_errno("receive");
    std::string errs = ssl_errors();
    if (e == SSL_ERROR_SYSCALL && errs.empty()) return 0;
    throw Error("TLS receive: " + (errs.empty() ? std::string("protocol error") : errs));
  }
}

size_t Conn::write(ByteView data, Clock::time_point deadline) {
  size_t done = 0;
  while (done < data.size()) {
    if (!ssl_) {
      ssize_t n = ::send(fd_.get(), data.data() + done, data.size() - done, MSG_NOSIGNAL);
      if (n >= 0) {
        done += static_cast<size_t>(n);
        continue;
      }
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) throw_errno("send");
      if (!wait(POLLOUT, deadline)) return done;
      continue;
    }
    ERR_clear_error();
    size_t n = 0;
    int r = SSL_write_ex(ssl_, data.data() + done, data.size() - done, &n);
    if (r == 1) {
      done += n;
      continue;
    }
    int e = SSL_get_error(ssl_, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
      if (!wait(e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline)) return done;
      continue;
    }
    if (e == SSL_ERROR_SYSCALL && errno != 0) throw_errno("send");
    std::string errs = ssl_errors();
    throw Error("TLS send: " + (errs.empty() ? std::string("connection closed") : errs));
  }
  return done;
}

bool Conn::still_idle() const {
  if (ssl_ && SSL_pending(ssl_) > 0) return false;
  if (outer_ && SSL_pending(outer_) > 0) return false;
  pollfd p{fd_.get(), POLLIN, 0};
  // Readable while idle means the peer closed (EOF) or sent something unasked: not reusable.
  return ::poll(&p, 1, 0) == 0;
}

}  // namespace cidrun::net
