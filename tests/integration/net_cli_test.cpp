// pull through real HTTP, HTTPS and SOCKS5 proxies (tinyproxy, stunnel in front of it, microsocks)
// and from `serve` over TLS, through the real binary.
#include <gtest/gtest.h>

#include "integration/content_helpers.h"
#include "integration/serve_process.h"
#include "net/microsocks.h"
#include "net/stunnel.h"
#include "net/tinyproxy.h"

namespace cidrun::testing {
namespace {

size_t count(const std::string& s, const std::string& part) {
  size_t n = 0;
  for (size_t i = s.find(part); i != std::string::npos; i = s.find(part, i + 1)) ++n;
  return n;
}

// How messages name a proxy: http://host:port, without credentials.
std::string proxy_name(const std::string& url) {
  size_t at = url.find('@');
  std::string rest = at == std::string::npos ? url.substr(url.find("://") + 3) : url.substr(at + 1);
  return "http://" + rest;
}

class netCli : public ServedTreeTest {
 protected:
  netCli() : ServedTreeTest(700000) {}
  void SetUp() override {
    for (const char* v : {"http_proxy", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY",
                          "no_proxy", "NO_PROXY"}) {
      ::unsetenv(v);
    }
    ServedTreeTest::SetUp();
  }
  void TearDown() override {
    for (const char* v : {"http_proxy", "https_proxy", "no_proxy", "CIDRUN_STALL_TIMEOUT"}) {
      ::unsetenv(v);
    }
  }
};

TEST_F(netCli, PullThroughTinyproxyUsesAbsoluteFormRequests) {
  ServeProcess serve(sb.repo(), "127.0.0.1:0");
  Tinyproxy proxy({});
  // Loopback is proxied like any host (curl's rule): the proxy sees every request.
  ::setenv("http_proxy", proxy.url().c_str(), 1);
  Result r = sb.run("pull " + root + " --from " + serve.url(), sb.path("repo2"));
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(same_tree(sb.path("repo2"), sb.path("out2")));
  std::string log = proxy.log();
  EXPECT_NE(log.find("GET " + serve.url() + "/ipfs/" + root), std::string::npos) << log;
  // no_proxy takes the same gateway around the proxy.
  size_t before = count(proxy.log(), "Request (file descriptor");
  ::setenv("no_proxy", "localhost,127.0.0.1", 1);
  r = sb.run("pull " + root + " --from " + serve.url(), sb.path("repo3"));
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(same_tree(sb.path("repo3"), sb.path("out3")));
  EXPECT_EQ(count(proxy.log(), "Request (file descriptor"), before) << proxy.log();
}

// A real SOCKS5 proxy demanding credentials; the gateway named "localhost", resolved by the
// proxy (socks5h) or here (socks5).
TEST_F(netCli, PullThroughMicrosocks) {
  ServeProcess serve(sb.repo(), "127.0.0.1:0");
  Microsocks proxy("alice", "s3cret");
  std::string gateway = "http://localhost:" + serve.port();
  int n = 0;
  for (const char* scheme : {"socks5h", "socks5"}) {
    std::string url =
        std::string(scheme) + "://alice:s3cret@127.0.0.1:" + std::to_string(proxy.port());
    ::setenv("all_proxy", url.c_str(), 1);
    std::string repo = sb.path("repo-socks" + std::to_string(n)),
                out = sb.path("out-socks" + std::to_string(n));
    ++n;
    Result r = sb.run("pull " + root + " --from " + gateway, repo);
    ASSERT_EQ(r.code, 0) << scheme << ": " << r.err;
    EXPECT_TRUE(same_tree(repo, out)) << scheme;
  }
  ::setenv("all_proxy", ("socks5h://alice:wrong@127.0.0.1:" + std::to_string(proxy.port())).c_str(),
           1);
  Result r = sb.run("pull " + root + " --from " + gateway, sb.path("repo-socks-bad"));
  ::unsetenv("all_proxy");
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("proxy socks5h://127.0.0.1:" + std::to_string(proxy.port()) +
                       ": rejected the credentials"),
            std::string::npos)
      << r.err;
  EXPECT_EQ(r.err.find("wrong"), std::string::npos) << r.err;
}

TEST_F(netCli, ProxyFailuresAreOneLineNamingTheProxy) {
  ServeProcess serve(sb.repo(), "127.0.0.1:0");
  Tinyproxy proxy({}, "alice", "s3cret");
  ::setenv("CIDRUN_STALL_TIMEOUT", "1", 1);
  struct Case {
    std::string proxy_url, error;
  };
  for (const auto& c : std::vector<Case>{
           {"http://alice:s3cret@127.0.0.1:" + std::to_string(proxy.port()), ""},
           {"http://alice:wrong@127.0.0.1:" + std::to_string(proxy.port()), "HTTP 401"},
           {proxy.url(),
            "proxy " + proxy.url() + " refused the request: HTTP 407 (credentials needed)"},
           {"ftp://127.0.0.1:1080",
            "bad proxy http_proxy=ftp://127.0.0.1:1080: ftp:// proxies are not supported"},
           {"http://127.0.0.1:1", "proxy http://127.0.0.1:1: cannot connect to 127.0.0.1:1"},
           {"socks5h://127.0.0.1:1", "proxy socks5h://127.0.0.1:1: cannot connect to 127.0.0.1:1"},
       }) {
    ::setenv("http_proxy", c.proxy_url.c_str(), 1);
    std::string repo = sb.path("repo-" + std::to_string(std::hash<std::string>()(c.proxy_url)));
    Result r = sb.run("pull " + root + " --from " + serve.url(), repo);
    if (c.error.empty()) {
      EXPECT_EQ(r.code, 0) << r.err;
      continue;
    }
    EXPECT_EQ(r.code, 1) << c.proxy_url;
    EXPECT_NE(r.err.find("source failed: " + serve.url()), std::string::npos) << r.err;
    EXPECT_NE(r.err.find(c.error), std::string::npos) << r.err;
    if (c.proxy_url.rfind("http://", 0) == 0) {
      EXPECT_NE(r.err.find(proxy_name(c.proxy_url)), std::string::npos) << r.err;
    }
    EXPECT_EQ(r.err.find("s3cret"), std::string::npos) << r.err;
    EXPECT_EQ(r.err.find(":wrong@"), std::string::npos) << r.err;
    EXPECT_FALSE(fs::exists(repo + "/pins/recursive/" + root));
  }
}

// A self-signed certificate for localhost and 127.0.0.1 made by the openssl command.
struct Certificate {
  std::string cert, key;
  explicit Certificate(const Sandbox& sb) : cert(sb.path("cert.pem")), key(sb.path("key.pem")) {
    std::string cmd =
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=localhost "
        "-addext subjectAltName=DNS:localhost,IP:127.0.0.1 -days 1 -keyout " +
        shell_quote(key) + " -out " + shell_quote(cert) + " >/dev/null 2>&1";
    if (std::system(cmd.c_str()) != 0) throw std::runtime_error("openssl req failed");
  }
};

TEST_F(netCli, ServeOverTlsAndPullTrustingItsCertificate) {
  Certificate c(sb);
  ServeProcess serve(sb.repo(), "127.0.0.1:0", {"--tls-cert", c.cert, "--tls-key", c.key});
  EXPECT_EQ(serve.url().rfind("https://127.0.0.1:", 0), 0u) << serve.url();
  std::string url = "https://localhost:" + serve.port();
  ::setenv("CIDRUN_STALL_TIMEOUT", "2", 1);
  // Not trusted: the pull fails and says why.
  Result untrusted = sb.run("pull " + root + " --from " + url, sb.path("repo2"));
  EXPECT_EQ(untrusted.code, 1);
  EXPECT_NE(untrusted.err.find("certificate verify failed: self-signed certificate"),
            std::string::npos)
      << untrusted.err;
  EXPECT_FALSE(fs::exists(sb.path("repo2") + "/pins/recursive/" + root));
  // Trusted through OpenSSL's SSL_CERT_FILE: the tree arrives whole.
  ::setenv("SSL_CERT_FILE", c.cert.c_str(), 1);
  Result r = sb.run("pull " + root + " --from " + url, sb.path("repo3"));
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(same_tree(sb.path("repo3"), sb.path("out3")));
  // And through a real proxy's CONNECT tunnel (TLS still with the origin, named localhost).
  Tinyproxy proxy({std::stoi(serve.port())});
  ::setenv("https_proxy", proxy.url().c_str(), 1);
  r = sb.run("pull " + root + " --from " + url, sb.path("repo4"));
  ::unsetenv("SSL_CERT_FILE");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(same_tree(sb.path("repo4"), sb.path("out4")));
  EXPECT_NE(proxy.log().find("CONNECT localhost:" + serve.port()), std::string::npos)
      << proxy.log();
  EXPECT_EQ(serve.stop(), 0);
}

// A real https proxy: stunnel's TLS in front of tinyproxy (which wants credentials), its
// certificate naming localhost only, trusted like the TLS gateway's through SSL_CERT_FILE.
TEST_F(netCli, PullThroughAnHttpsProxy) {
  Certificate c(sb);
  std::string proxy_cert = sb.path("proxy-cert.pem"), proxy_key = sb.path("proxy-key.pem");
  std::string cmd =
      "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=localhost "
      "-addext subjectAltName=DNS:localhost -days 1 -keyout " +
      shell_quote(proxy_key) + " -out " + shell_quote(proxy_cert) + " >/dev/null 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  std::string trust = sb.path("trust.pem");
  ASSERT_EQ(std::system(("cat " + shell_quote(c.cert) + " " + shell_quote(proxy_cert) + " > " +
                         shell_quote(trust))
                            .c_str()),
            0);
  ServeProcess plain(sb.repo(), "127.0.0.1:0");
  ServeProcess tls(sb.repo(), "127.0.0.1:0", {"--tls-cert", c.cert, "--tls-key", c.key});
  Tinyproxy proxy({std::stoi(tls.port())}, "alice", "s3cret");
  Stunnel front(proxy_cert, proxy_key, proxy.port());
  std::string port = std::to_string(front.port());
  std::string good = "https://alice:s3cret@localhost:" + port;
  ::setenv("SSL_CERT_FILE", trust.c_str(), 1);
  ::setenv("CIDRUN_STALL_TIMEOUT", "2", 1);
  // An http gateway: absolute-form requests inside TLS with the proxy.
  ::setenv("http_proxy", good.c_str(), 1);
  Result r = sb.run("pull " + root + " --from " + plain.url(), sb.path("repo2"));
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(same_tree(sb.path("repo2"), sb.path("out2")));
  EXPECT_NE(proxy.log().find("GET " + plain.url() + "/ipfs/" + root), std::string::npos)
      << proxy.log();
  // An https gateway: CONNECT inside the proxy's TLS, the gateway's TLS inside that.
  ::setenv("https_proxy", good.c_str(), 1);
  std::string tls_url = "https://localhost:" + tls.port();
  r = sb.run("pull " + root + " --from " + tls_url, sb.path("repo3"));
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(same_tree(sb.path("repo3"), sb.path("out3")));
  EXPECT_NE(proxy.log().find("CONNECT localhost:" + tls.port()), std::string::npos) << proxy.log();
  // Failures: exit 1, one line naming the proxy (never the password), nothing pinned.
  struct Case {
    std::string proxy_url, error;
  };
  const std::string mismatch = "proxy https://127.0.0.1:" + port +
                               ": TLS handshake with 127.0.0.1:" + port +
                               " failed: certificate verify failed: IP address mismatch";
  for (const auto& f : std::vector<Case>{
           {"https://alice:wrong@localhost:" + port,
            "proxy https://localhost:" + port + " refused CONNECT localhost:" + tls.port() +
                ": HTTP 401 Unauthorized"},
           {"https://localhost:" + port, "proxy https://localhost:" + port +
                                             " refused CONNECT localhost:" + tls.port() +
                                             ": HTTP 407"},
           {"https://alice:s3cret@127.0.0.1:" + port, mismatch},
       }) {
    ::setenv("https_proxy", f.proxy_url.c_str(), 1);
    std::string repo = sb.path("repo-" + std::to_string(std::hash<std::string>()(f.proxy_url)));
    r = sb.run("pull " + root + " --from " + tls_url, repo);
    EXPECT_EQ(r.code, 1) << f.proxy_url;
    EXPECT_NE(r.err.find(f.error), std::string::npos) << r.err;
    EXPECT_EQ(r.err.find("s3cret"), std::string::npos) << r.err;
    EXPECT_EQ(r.err.find("wrong"), std::string::npos) << r.err;
    EXPECT_FALSE(fs::exists(repo + "/pins/recursive/" + root));
  }
  ::unsetenv("SSL_CERT_FILE");
  EXPECT_EQ(plain.stop(), 0);
  EXPECT_EQ(tls.stop(), 0);
}

TEST_F(netCli, ServeRefusesBadTlsFilesBeforeListening) {
  Certificate c(sb);
  std::ofstream(sb.path("junk.pem")) << "junk\n";
  struct Case {
    std::string flags, error;
  };
  for (const auto& k : std::vector<Case>{
           {"--tls-cert " + sb.path("none.pem") + " --tls-key " + c.key,
            "cidrun: error: TLS certificate " + sb.path("none.pem") +
                ": No such file or directory\n"},
           {"--tls-cert " + sb.path("junk.pem") + " --tls-key " + c.key,
            "cidrun: error: TLS certificate " + sb.path("junk.pem") +
                ": cannot load a PEM certificate"},
           {"--tls-cert " + c.cert + " --tls-key " + c.cert,
            "cidrun: error: TLS key " + c.cert + ": cannot load a PEM private key"},
           {"--tls-cert " + c.cert, "cidrun: error: --tls-cert needs --tls-key\n"},
       }) {
    Result r = sb.run("serve --listen 127.0.0.1:0 -q " + k.flags);
    EXPECT_EQ(r.code, 1) << k.flags;
    EXPECT_EQ(r.out, "") << k.flags;  // never got as far as listening
    EXPECT_EQ(r.err.rfind(k.error, 0), 0u) << r.err;
    EXPECT_EQ(count(r.err, "\n"), 1u) << r.err;
  }
}

// getaddrinfo has no deadline of its own. In a network and mount namespace of its own, the pull
// gets a resolv.conf whose name server (on loopback) takes every query and answers none, with a
// 30 s resolver timeout: the connect timeout (5 s) must end the wait, with one line naming the
// host.
TEST_F(netCli, NameResolutionGivesUpAtTheConnectTimeout) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root (network and mount namespaces)";
  std::ofstream(sb.path("resolv.conf")) << "nameserver 127.0.0.1\noptions timeout:30 attempts:1\n";
  std::string script =
      "set -e; ip link set lo up; "
      // An address besides loopback, so that AI_ADDRCONFIG asks for IPv4 at all.
      "ip addr add 10.77.0.1/32 dev lo; mount --bind " +
      shell_quote(sb.path("resolv.conf")) +
      " /etc/resolv.conf; "
      "python3 -c 'import socket,time; s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); "
      "s.bind((\"127.0.0.1\",53)); time.sleep(300)' & dns=$!; sleep 1; "
      "s=$(date +%s%N); set +e; " +
      std::string(CIDRUN_BINARY) + " --debug --repo-dir " + shell_quote(sb.path("repo2")) +
      " pull " + root + " --from http://gateway.example:8080 >" + shell_quote(sb.path("pull.out")) +
      " 2>" + shell_quote(sb.path("pull.err")) + "; echo $? >" + shell_quote(sb.path("pull.rc")) +
      "; echo $((($(date +%s%N)-s)/1000000)) >" + shell_quote(sb.path("pull.ms")) + "; kill $dns";
  ASSERT_EQ(std::system(("unshare -mn sh -c " + shell_quote(script)).c_str()), 0);
  EXPECT_EQ(slurp(sb.path("pull.rc")), "1\n");
  std::string err = slurp(sb.path("pull.err"));
  EXPECT_NE(err.find("http://gateway.example:8080/ipfs/" + root), std::string::npos) << err;
  EXPECT_NE(err.find("cannot resolve gateway.example: no answer within 5"), std::string::npos)
      << err;
  // Every attempt (a warning, then a debug line each) was cut at 5 s, never left to the
  // resolver's 30.
  long attempts = static_cast<long>(count(err, "source failed"));
  EXPECT_GE(attempts, 2) << err;
  EXPECT_LT(std::stol(slurp(sb.path("pull.ms"))), attempts * 5000 + 10000) << err;
}

}  // namespace
}  // namespace cidrun::testing
