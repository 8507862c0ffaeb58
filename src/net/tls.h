// OpenSSL contexts: the client's (peers verified against the system store) and the server's
// (a PEM certificate chain and its key, for `serve --tls-cert/--tls-key`).
#pragma once

#include <openssl/types.h>

#include <string>

namespace cidrun::net {

// The queued OpenSSL errors as one line (and the queue emptied).
std::string ssl_errors();

// A socket BIO for a TLS session on fd (not owning it) that sends with MSG_NOSIGNAL. OpenSSL's
// own socket BIO writes with plain send(), which raises SIGPIPE when the peer is gone, and
// ignoring SIGPIPE process-wide is not an option: containers exec'd from us would inherit it.
// Client and server sessions both use it. Throws Error when OpenSSL cannot make one.
BIO* nosignal_socket_bio(int fd);

// How https peers are checked. The system store (OpenSSL's default paths, which honour
// SSL_CERT_FILE and SSL_CERT_DIR) is always trusted; ca_file adds PEM certificates to it.
struct TlsOptions {
  std::string ca_file;
};

// An SSL_CTX that verifies the peer's chain and is shared by every TLS connection of a client.
class TlsContext {
 public:
  explicit TlsContext(const TlsOptions& opts);
  ~TlsContext();
  TlsContext(const TlsContext&) = delete;
  TlsContext& operator=(const TlsContext&) = delete;
  SSL_CTX* get() const { return ctx_; }

 private:
  SSL_CTX* ctx_ = nullptr;
};

// A server's SSL_CTX: the certificate chain (leaf first) and private key from PEM files.
// Throws Error (one line naming the file) when either cannot be loaded or they do not match.
class TlsServerContext {
 public:
  TlsServerContext(const std::string& cert_file, const std::string& key_file);
  ~TlsServerContext();
  TlsServerContext(const TlsServerContext&) = delete;
  TlsServerContext& operator=(const TlsServerContext&) = delete;
  SSL_CTX* get() const { return ctx_; }

 private:
  SSL_CTX* ctx_ = nullptr;
};

}  // namespace cidrun::net
