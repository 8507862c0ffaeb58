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
#include <cstring>

#include "util/error.h"

namespace cidrun::net {
namespace {

int ms_until(Clock::time_point deadline) {
  auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return static_cast<int>(std::clamp<long long>(left, 0, 1'000'000'000));
}

std::string ssl_errors() {
  std::string out;
  while (unsigned long e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    if (!out.empty()) out += "; ";
    out += buf;
  }
  return out;
}

int fd_of(BIO* b) {
  return static_cast<int>(reinterpret_cast<intptr_t>(BIO_get_data(b)));
}

// OpenSSL's own socket BIO writes with plain send(), which raises SIGPIPE when the peer is gone.
// Ignoring SIGPIPE process-wide is not an option (containers exec'd from us would inherit it), so
// TLS goes through this BIO, which sends with MSG_NOSIGNAL like the plain path.
int bio_write(BIO* b, const char* data, int len) {
  BIO_clear_retry_flags(b);
  ssize_t n = ::send(fd_of(b), data, static_cast<size_t>(len), MSG_NOSIGNAL);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
    BIO_set_retry_write(b);
  }
  return static_cast<int>(n);
}

int bio_read(BIO* b, char* data, int len) {
  BIO_clear_retry_flags(b);
  ssize_t n = ::recv(fd_of(b), data, static_cast<size_t>(len), 0);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
    BIO_set_retry_read(b);
  }
  return static_cast<int>(n);
}

long bio_ctrl(BIO* b, int cmd, long num, void* ptr) {
  switch (cmd) {
    case BIO_C_SET_FD:
      BIO_set_data(b, reinterpret_cast<void*>(static_cast<intptr_t>(*static_cast<int*>(ptr))));
      BIO_set_init(b, 1);
      (void)num;
      return 1;
    case BIO_C_GET_FD: {
      int fd = fd_of(b);
      if (ptr) *static_cast<int*>(ptr) = fd;
      return fd;
    }
    case BIO_CTRL_FLUSH:
      return 1;
    default:
      return 0;
  }
}

BIO* nosignal_socket_bio(int fd) {
  static BIO_METHOD* method = [] {
    BIO_METHOD* m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK | BIO_TYPE_DESCRIPTOR,
                                 "cidrun socket");
    BIO_meth_set_write(m, bio_write);
    BIO_meth_set_read(m, bio_read);
    BIO_meth_set_ctrl(m, bio_ctrl);
    return m;
  }();
  BIO* b = BIO_new(method);
  if (!b) throw Error("TLS: cannot create a BIO: " + ssl_errors());
  BIO_ctrl(b, BIO_C_SET_FD, 0, &fd);
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

}  // namespace

TlsContext::TlsContext(const TlsOptions& opts) {
  ctx_ = SSL_CTX_new(TLS_client_method());
  if (!ctx_) throw Error("TLS: cannot create a context: " + ssl_errors());
  SSL_CTX_set_min_proto_version(ctx_, TLS1_2_VERSION);
  SSL_CTX_set_verify(ctx_, SSL_VERIFY_PEER, nullptr);
  // A peer that closes without close_notify ends a close-delimited body; what we read is still
  // checked (blocks by hash, CARs by framing), so this is not a truncation hole.
  SSL_CTX_set_options(ctx_, SSL_OP_IGNORE_UNEXPECTED_EOF);
  SSL_CTX_set_mode(ctx_, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  if (SSL_CTX_set_default_verify_paths(ctx_) != 1) {
    ERR_clear_error();  // no system store is not fatal when ca_file is given
  }
  if (!opts.ca_file.empty() &&
      SSL_CTX_load_verify_locations(ctx_, opts.ca_file.c_str(), nullptr) != 1) {
    std::string e = ssl_errors();
    SSL_CTX_free(ctx_);
    throw Error("TLS: cannot load certificates from " + opts.ca_file + ": " + e);
  }
}

TlsContext::~TlsContext() {
  SSL_CTX_free(ctx_);
}

std::unique_ptr<Conn> Conn::open(const std::string& host, uint16_t port, const TlsContext* tls,
                                 Clock::time_point deadline) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_ADDRCONFIG | AI_NUMERICSERV;
  addrinfo* res = nullptr;
  // getaddrinfo has no timeout of its own; a resolver that hangs is bounded by resolv.conf's.
  int rc = ::getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &res);
  if (rc != 0) {
    throw Error("cannot resolve " + host + ": " +
                (rc == EAI_SYSTEM ? std::strerror(errno) : ::gai_strerror(rc)));
  }
  UniqueFd fd;
  std::string why = "no address";
  for (addrinfo* ai = res; ai && !fd.valid(); ai = ai->ai_next) {
    if (Clock::now() >= deadline) {
      why = "connection timed out";
      break;
    }
    fd = connect_one(ai, deadline, why);
  }
  ::freeaddrinfo(res);
  if (!fd.valid()) throw Error("cannot connect to " + host_port(host, port) + ": " + why);
  if (!tls) return std::unique_ptr<Conn>(new Conn(std::move(fd), nullptr));

  SSL* ssl = SSL_new(tls->get());
  if (!ssl) throw Error("TLS: cannot create a session: " + ssl_errors());
  std::unique_ptr<Conn> c(new Conn(std::move(fd), ssl));
  BIO* bio = nosignal_socket_bio(c->fd_.get());
  SSL_set_bio(ssl, bio, bio);
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
      if (!c->wait(e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline)) {
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
  return c;
}

Conn::~Conn() {
  if (ssl_) SSL_free(ssl_);  // also frees the BIO; the fd is closed by fd_
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
  pollfd p{fd_.get(), POLLIN, 0};
  // Readable while idle means the peer closed (EOF) or sent something unasked: not reusable.
  return ::poll(&p, 1, 0) == 0;
}

}  // namespace cidrun::net
