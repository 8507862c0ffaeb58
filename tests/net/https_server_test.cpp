// The HTTP server over TLS (HttpServerOptions tls_cert/tls_key), asked by our own client trusting
// a certificate made by the openssl command at test time.
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>

#include "net/http_client.h"
#include "net/http_server.h"
#include "net/raw_http.h"
#include "util/error.h"
#include "util/fd.h"

namespace cidrun::net {
namespace {

using namespace std::chrono_literals;

// A self-signed certificate for localhost and 127.0.0.1, and its key, in a scratch directory.
struct Certificate {
  std::string dir, cert, key;
  Certificate() {
    char tmpl[] = "/tmp/cidrun-https-XXXXXX";
    dir = ::mkdtemp(tmpl);
    cert = dir + "/cert.pem";
    key = dir + "/key.pem";
    std::string cmd =
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=localhost "
        "-addext subjectAltName=DNS:localhost,IP:127.0.0.1 -days 1 -keyout " +
        key + " -out " + cert + " >/dev/null 2>&1";
    if (std::system(cmd.c_str()) != 0) throw std::runtime_error("openssl req failed");
  }
  ~Certificate() { std::filesystem::remove_all(dir); }
};

class TlsRunningServer {
 public:
  TlsRunningServer(const Certificate& c, HttpHandler h, HttpServerOptions o = {}) {
    o.listen = "127.0.0.1:0";
    o.tls_cert = c.cert;
    o.tls_key = c.key;
    server_ = std::make_unique<HttpServer>(std::move(h), std::move(o));
    port_ = server_->bind();
    thread_ = std::thread([this] { server_->run(); });
  }
  ~TlsRunningServer() {
    server_->stop();
    thread_.join();
  }
  int port() const { return port_; }
  std::string url() const { return "https://localhost:" + std::to_string(port_); }

 private:
  std::unique_ptr<HttpServer> server_;
  int port_ = 0;
  std::thread thread_;
};

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

TEST(httpsServer, ServesSmallBodiesFilesAndStreamsOnOneConnection) {
  Certificate cert;
  char tmpl[] = "/tmp/cidrun-https-file-XXXXXX";
  UniqueFd file(::mkstemp(tmpl));
  ::unlink(tmpl);
  std::string content;
  for (int i = 0; i < 700000; ++i) content.push_back(static_cast<char>('a' + i * 7 % 26));
  write_full(file.get(), content.data(), content.size(), "tmp");
  int ffd = file.get();
  TlsRunningServer s(cert, [ffd](const HttpRequest& req, HttpResponse& res) {
    if (req.path == "/file") return res.send_file(ffd, 10, 600000);
    if (req.path == "/stream") {
      res.begin_stream();
      res.write(as_bytes(std::string_view("[")));
      res.write_file(ffd, 0, 300000, as_bytes(std::string_view("<")));
      res.write_file(ffd, 300000, 400000);
      res.write(as_bytes(std::string_view("]")));
      return res.end();
    }
    res.send("hello " + req.path);
  });
  http::Client c({.ca_file = cert.cert});
  for (int round = 0; round < 2; ++round) {
    http::Response r = c.perform({.url = s.url() + "/small"});
    ASSERT_TRUE(r.ok()) << r.describe();
    EXPECT_EQ(as_string(r.body), "hello /small");
    r = c.perform({.url = s.url() + "/file"});
    ASSERT_TRUE(r.ok()) << r.describe();
    EXPECT_EQ(as_string(r.body), content.substr(10, 600000));
    r = c.perform({.url = s.url() + "/stream"});
    ASSERT_TRUE(r.ok()) << r.describe();
    EXPECT_EQ(as_string(r.body), "[<" + content + "]");
  }
  EXPECT_EQ(c.connections_opened(), 1u);  // keep-alive through TLS
  // The certificate names 127.0.0.1 too.
  http::Response r =
      c.perform({.url = "https://127.0.0.1:" + std::to_string(s.port()) + "/by-address"});
  EXPECT_TRUE(r.ok()) << r.describe();
}

TEST(httpsServer, UntrustingAndPlainClientsAreTurnedAwayAndTheServerGoesOn) {
  Certificate cert;
  HttpServerOptions o;
  o.head_timeout = 500ms;
  TlsRunningServer s(
      cert, [](const HttpRequest&, HttpResponse& res) { res.send("ok"); }, o);
  http::Response r = http::Client().perform({.url = s.url() + "/"});
  EXPECT_TRUE(contains(r.error, "certificate verify failed")) << r.error;
  // Plain HTTP to the TLS port: no answer that could be mistaken for one, the connection closes.
  auto fd = testing::connect_to(s.port());
  testing::send_text(fd.get(), "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  char buf[256];
  ssize_t n = ::recv(fd.get(), buf, sizeof buf, 0);
  EXPECT_LE(n, 0);
  // A client that connects and never says hello is dropped after the head timeout.
  auto silent = testing::connect_to(s.port());
  auto t0 = std::chrono::steady_clock::now();
  n = ::recv(silent.get(), buf, sizeof buf, 0);
  EXPECT_LE(n, 0);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 3s);
  r = http::Client({.ca_file = cert.cert}).perform({.url = s.url() + "/"});
  EXPECT_TRUE(r.ok()) << r.describe();
}

TEST(httpsServer, BadCertificatesAndKeysAreOneLineErrorsBeforeListening) {
  Certificate cert;
  Certificate other;
  std::string garbage = cert.dir + "/garbage.pem";
  std::ofstream(garbage) << "not a certificate\n";
  auto handler = [](const HttpRequest&, HttpResponse& res) { res.send("x"); };
  struct Case {
    std::string cert, key, error;
  };
  for (const auto& c : std::vector<Case>{
           {cert.dir + "/none.pem", cert.key,
            "TLS certificate " + cert.dir + "/none.pem: No such file or directory"},
           {cert.cert, cert.dir + "/none.pem",
            "TLS key " + cert.dir + "/none.pem: No such file or directory"},
           {garbage, cert.key, "TLS certificate " + garbage + ": cannot load a PEM certificate"},
           {cert.cert, garbage, "TLS key " + garbage + ": cannot load a PEM private key"},
           {cert.key, cert.key, "TLS certificate " + cert.key + ": cannot load a PEM certificate"},
           {cert.cert, other.key, "TLS key " + other.key + " does not match the certificate"},
           {cert.cert, "", "TLS needs a private key too"},
           {"", cert.key, "TLS needs a certificate too"},
       }) {
    HttpServerOptions o;
    o.listen = "127.0.0.1:0";
    o.tls_cert = c.cert;
    o.tls_key = c.key;
    try {
      HttpServer server(handler, o);
      ADD_FAILURE() << c.error << ": accepted";
    } catch (const Error& e) {
      EXPECT_TRUE(contains(e.what(), c.error)) << e.what();
      EXPECT_FALSE(contains(e.what(), "\n")) << e.what();
    }
  }
}

}  // namespace
}  // namespace cidrun::net
