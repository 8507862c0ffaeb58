#include "net/tls.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "util/error.h"

namespace cidrun::net {
namespace {

// The most telling reason of the queued errors (the last one), without OpenSSL's codes.
std::string last_reason() {
  unsigned long last = 0;
  while (unsigned long e = ERR_get_error()) last = e;
  if (last == 0) return "unknown error";
  const char* r = ERR_reason_error_string(last);
  return r ? r : "unknown error";
}

// A file OpenSSL would fail on with a vague message: say what is wrong with it first.
void check_readable(const std::string& what, const std::string& file) {
  if (file.empty()) throw Error(what + ": no file given");
  if (::access(file.c_str(), R_OK) != 0) throw_errno(what + " " + file);
}

int fd_of(BIO* b) {
  return static_cast<int>(reinterpret_cast<intptr_t>(BIO_get_data(b)));
}

// Sends with MSG_NOSIGNAL (tls.h, nosignal_socket_bio, says why).
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

}  // namespace

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

TlsServerContext::TlsServerContext(const std::string& cert_file, const std::string& key_file) {
  check_readable("TLS certificate", cert_file);
  check_readable("TLS key", key_file);
  ctx_ = SSL_CTX_new(TLS_server_method());
  if (!ctx_) throw Error("TLS: cannot create a context: " + ssl_errors());
  auto fail = [&](const std::string& msg) {
    SSL_CTX_free(ctx_);
    ctx_ = nullptr;
    throw Error(msg);
  };
  SSL_CTX_set_min_proto_version(ctx_, TLS1_2_VERSION);
  // Responses are written from buffers that move between retries, in pieces.
  SSL_CTX_set_mode(ctx_, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  SSL_CTX_set_options(ctx_, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
  if (SSL_CTX_use_certificate_chain_file(ctx_, cert_file.c_str()) != 1) {
    fail("TLS certificate " + cert_file + ": cannot load a PEM certificate: " + last_reason());
  }
  if (SSL_CTX_use_PrivateKey_file(ctx_, key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
    // OpenSSL checks the pair as it loads the key: a mismatch is not a loading problem.
    bool mismatch = ERR_GET_REASON(ERR_peek_last_error()) == X509_R_KEY_VALUES_MISMATCH;
    if (mismatch) {
      ERR_clear_error();
      fail("TLS key " + key_file + " does not match the certificate in " + cert_file);
    }
    fail("TLS key " + key_file + ": cannot load a PEM private key: " + last_reason());
  }
  if (SSL_CTX_check_private_key(ctx_) != 1) {
    fail("TLS key " + key_file + " does not match the certificate in " + cert_file);
  }
}

TlsServerContext::~TlsServerContext() {
  SSL_CTX_free(ctx_);
}

}  // namespace cidrun::net
