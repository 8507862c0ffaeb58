// The HTTP/1.1 client against servers that answer well and badly (tests/net/fake_http.h
// hands each test the raw socket), and https against an in-process OpenSSL server whose
// self-signed certificate is made at test time.
#include "net/http_client.h"

#include <gtest/gtest.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <thread>
#include <utility>
#include <vector>

#include "net/fake_http.h"
#include "net/microsocks.h"
#include "net/stunnel.h"
#include "net/tinyproxy.h"
#include "util/error.h"
#include "util/stream.h"
#include "util/stream_compression.h"

namespace cidrun::http {
namespace {

using testing::FakeHttp;
using testing::HttpHead;
using testing::send_all;
using testing::send_response;

Response get(const std::string& url, Request q = {}) {
  q.url = url;
  return Client().perform(q);
}

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

// Reads one request head (and nothing more) from fd; "" when the peer closed.
std::string read_head(int fd) {
  std::string buf;
  char c;
  while (buf.find("\r\n\r\n") == std::string::npos) {
    if (::recv(fd, &c, 1, 0) != 1) return "";
    buf += c;
  }
  return buf;
}

// Decodes a chunked request body from fd, starting with the bytes already read.
std::string read_chunked_body(int fd, std::string pending) {
  std::string out;
  auto byte = [&] {
    char c;
    if (!pending.empty()) {
      c = pending[0];
      pending.erase(0, 1);
    } else if (::recv(fd, &c, 1, 0) != 1) {
      throw std::runtime_error("eof");
    }
    return c;
  };
  auto line = [&] {
    std::string l;
    while (l.size() < 2 || l.substr(l.size() - 2) != "\r\n") l += byte();
    return l.substr(0, l.size() - 2);
  };
  for (;;) {
    size_t n = std::stoul(line(), nullptr, 16);
    if (n == 0) {
      line();
      return out;
    }
    for (size_t i = 0; i < n; ++i) out += byte();
    line();
  }
}

TEST(netHttpClient, ContentLengthBodyAndHeaders) {
  FakeHttp s([](const HttpHead& h, int fd) {
    EXPECT_TRUE(h.has("Host: 127.0.0.1:")) << h.head;
    EXPECT_TRUE(h.has("Accept: application/x-test")) << h.head;
    send_response(fd, 200, "application/x-test", "hello world");
  });
  Request q;
  q.headers = {"Accept: application/x-test"};
  Response r = get(s.url() + "/a/b?c=d", q);
  EXPECT_TRUE(r.ok()) << r.describe();
  EXPECT_EQ(as_string(r.body), "hello world");
  EXPECT_EQ(r.content_type, "application/x-test");
}

TEST(netHttpClient, ChunkedBodyWithExtensionsAndTrailers) {
  FakeHttp s([](const HttpHead&, int fd) {
    send_all(fd,
             "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
             "5;ext=1\r\nhello\r\n1\r\n \r\nA\r\n0123456789\r\n0\r\nX-Trailer: t\r\n\r\n");
  });
  Response r = get(s.url());
  EXPECT_TRUE(r.ok()) << r.describe();
  EXPECT_EQ(as_string(r.body), "hello 0123456789");
}

TEST(netHttpClient, BodyUntilCloseWithoutLength) {
  FakeHttp s([](const HttpHead&, int fd) {
    send_all(fd, "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nall of it");
  });
  Response r = get(s.url());
  EXPECT_TRUE(r.ok()) << r.describe();
  EXPECT_EQ(as_string(r.body), "all of it");
}

TEST(netHttpClient, TruncatedBodiesAreErrors) {
  FakeHttp sized([](const HttpHead&, int fd) {
    send_all(fd, "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" + std::string(500, 'x'));
  });
  Response r = get(sized.url());
  EXPECT_FALSE(r.ok());
  EXPECT_TRUE(contains(r.error, "closed after 500 of 1000")) << r.error;

  FakeHttp chunked([](const HttpHead&, int fd) {
    send_all(fd, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10\r\nonly-eight");
  });
  r = get(chunked.url());
  EXPECT_FALSE(r.ok());
  EXPECT_TRUE(contains(r.error, "inside a chunk")) << r.error;

  FakeHttp no_last_chunk([](const HttpHead&, int fd) {
    send_all(fd, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n");
  });
  r = get(no_last_chunk.url());
  EXPECT_FALSE(r.ok());
  EXPECT_TRUE(contains(r.error, "chunk size")) << r.error;

  // The same truncation through the streaming path.
  Request q;
  size_t seen = 0;
  q.on_body = [&](ByteView b) {
    seen += b.size();
    return true;
  };
  r = get(sized.url(), q);
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(seen, 500u);
}

TEST(netHttpClient, BadChunkFramingIsRejected) {
  for (std::string body :
       {"zz\r\nhello\r\n0\r\n\r\n", "-5\r\nhello\r\n0\r\n\r\n", "\r\nhello\r\n0\r\n\r\n",
        "fffffffffffffffff\r\nx\r\n0\r\n\r\n", "3\r\nhello\r\n0\r\n\r\n"}) {
    FakeHttp s([&](const HttpHead&, int fd) {
      send_all(fd, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + body);
    });
    Response r = get(s.url());
    EXPECT_FALSE(r.ok()) << body;
    EXPECT_TRUE(contains(r.error, "chunk")) << r.error;
  }
}

TEST(netHttpClient, MalformedHeadsAreRejected) {
  struct Case {
    std::string head;
    std::string error;
  };
  for (const auto& c : std::vector<Case>{
           {"HTTP/1.1 200 OK\r\nX-Big: " + std::string(100 * 1024, 'a') + "\r\n\r\n",
            "larger than 64 KiB"},
           {"HTTP/2 200\r\n\r\n", "malformed status line"},
           {"HTTP/1.1 2x0 OK\r\n\r\n", "malformed status line"},
           {"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n", "malformed header"},
           {"HTTP/1.1 200 OK\r\nContent-Length: 12abc\r\n\r\n", "bad Content-Length"},
           {"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
            "conflicting Content-Length"},
           {"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", "Transfer-Encoding"},
           {"HTTP/1.1 200 OK\r\nX: a\r\n folded\r\n\r\n", "folded"},
       }) {
    FakeHttp s([&](const HttpHead&, int fd) { send_all(fd, c.head); });
    Response r = get(s.url());
    EXPECT_FALSE(r.ok()) << c.head.substr(0, 60);
    EXPECT_TRUE(contains(r.error, c.error)) << r.error;
  }
}

TEST(netHttpClient, HangingAndDrippingServersAreCut) {
  FakeHttp* self = nullptr;
  FakeHttp hanging([&](const HttpHead&, int) { self->hang(); });
  self = &hanging;
  Request q;
  q.stall_secs = 1;
  auto t0 = std::chrono::steady_clock::now();
  Response r = get(hanging.url(), q);
  EXPECT_TRUE(contains(r.error, "stalled")) << r.error;
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5));

  // A total deadline cuts a peer that keeps sending, just too long.
  FakeHttp endless([&](const HttpHead&, int fd) {
    send_all(fd, "HTTP/1.1 200 OK\r\nContent-Length: 100000000\r\n\r\n");
    for (int i = 0; i < 100 && !endless.stopping(); ++i) {
      if (!send_all(fd, "x")) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  });
  Request t;
  t.total_timeout_ms = 700;
  r = get(endless.url(), t);
  EXPECT_TRUE(contains(r.error, "timed out after 700 ms")) << r.error;

  // Fewer than stall_bytes per window: too slow, even though bytes keep coming.
  Request slow;
  slow.stall_secs = 1;
  slow.stall_bytes = 1000;
  r = get(endless.url(), slow);
  EXPECT_TRUE(contains(r.error, "too slow")) << r.error;
}

// Issue 15: peers that keep bytes moving without ever answering held `pull` open forever: endless
// 100 Continue heads, or a head dripped one line at a time. The final head has a deadline.
TEST(netHttpClient, AnswersThatNeverArriveHitTheHeadDeadline) {
  FakeHttp continues([&](const HttpHead&, int fd) {
    for (int i = 0; i < 1000 && !continues.stopping(); ++i) {
      if (!send_all(fd, "HTTP/1.1 100 Continue\r\n\r\n")) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  });
  Request q;
  q.stall_secs = 1;
  auto t0 = std::chrono::steady_clock::now();
  Response r = get(continues.url(), q);
  EXPECT_TRUE(contains(r.error, "interim (1xx) responses")) << r.error;
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5));

  FakeHttp dripping([&](const HttpHead&, int fd) {
    send_all(fd, "HTTP/1.1 200 OK\r\n");
    for (int i = 0; i < 100 && !dripping.stopping(); ++i) {
      if (!send_all(fd, "X-Drip: " + std::to_string(i) + "\r\n")) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  });
  Request d;
  d.stall_secs = 1;
  d.head_timeout_ms = 800;
  t0 = std::chrono::steady_clock::now();
  r = get(dripping.url(), d);
  EXPECT_TRUE(contains(r.error, "no response within 800 ms")) << r.error;
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5));

  // The deadline is for the head only: a body may take longer.
  FakeHttp slow_body([&](const HttpHead&, int fd) {
    send_all(fd, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n");
    for (int i = 0; i < 10; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      if (!send_all(fd, "x")) return;
    }
  });
  Request b;
  b.head_timeout_ms = 300;
  r = get(slow_body.url(), b);
  EXPECT_TRUE(r.ok()) << r.describe();
  EXPECT_EQ(as_string(r.body), "xxxxxxxxxx");
}

TEST(netHttpClient, ConnectionResetAndRefusedAreErrors) {
  FakeHttp s([](const HttpHead&, int fd) {
    send_all(fd, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nabc");
    linger l{1, 0};  // the server's close then resets the connection
    ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
  });
  Response r = get(s.url());
  EXPECT_FALSE(r.ok());
  EXPECT_FALSE(r.error.empty());

  int port;
  {
    FakeHttp gone([](const HttpHead&, int) {});
    port = gone.port();
  }
  r = get("http://127.0.0.1:" + std::to_string(port) + "/");
  EXPECT_TRUE(contains(r.error, "cannot connect")) << r.error;
  r = get("ftp://127.0.0.1/");
  EXPECT_TRUE(contains(r.error, "only http")) << r.error;
  r = get("http://user:pw@127.0.0.1/");
  EXPECT_TRUE(contains(r.error, "credentials")) << r.error;
  r = get("http://127.0.0.1:99999/");
  EXPECT_TRUE(contains(r.error, "bad port")) << r.error;
}

// Answers every request on the connection, keeping it open, until the client closes it.
void serve_keepalive(const HttpHead& first, int fd, std::atomic<int>& requests, int limit = 1000) {
  std::string head = first.head;
  for (int i = 0; i < limit; ++i) {
    ++requests;
    std::string target = head.substr(head.find(' ') + 1);
    target = target.substr(0, target.find(' '));
    std::string body = "you asked " + target;
    send_all(fd, "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" +
                     body);
    head = read_head(fd);
    if (head.empty()) return;
  }
}

TEST(netHttpClient, KeepAliveConnectionsAreReused) {
  std::atomic<int> requests{0};
  FakeHttp s([&](const HttpHead& h, int fd) { serve_keepalive(h, fd, requests); });
  Client c;
  for (int i = 0; i < 5; ++i) {
    Request q;
    q.url = s.url() + "/" + std::to_string(i);
    Response r = c.perform(q);
    ASSERT_TRUE(r.ok()) << r.describe();
    EXPECT_EQ(as_string(r.body), "you asked /" + std::to_string(i));
  }
  EXPECT_EQ(requests, 5);
  EXPECT_EQ(c.connections_opened(), 1u);
  // A connection the server closed while idle is noticed, and the request goes out on a new one.
  std::atomic<int> second{0};
  FakeHttp once([&](const HttpHead& h, int fd) { serve_keepalive(h, fd, second, 1); });
  Client c2;
  for (int i = 0; i < 3; ++i) {
    Request q;
    q.url = once.url() + "/x";
    Response r = c2.perform(q);
    ASSERT_TRUE(r.ok()) << r.describe();
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(c2.connections_opened(), 3u);
}

TEST(netHttpClient, ParallelRequestsAreBoundedPerHost) {
  std::atomic<int> requests{0}, open{0}, peak{0};
  FakeHttp s([&](const HttpHead& h, int fd) {
    int now = ++open;
    int p = peak;
    while (now > p && !peak.compare_exchange_weak(p, now)) {
    }
    serve_keepalive(h, fd, requests);
    --open;
  });
  Client c({.max_connections_per_host = 3});
  std::vector<std::future<Response>> f;
  for (int i = 0; i < 30; ++i) {
    Request q;
    q.url = s.url() + "/" + std::to_string(i);
    f.push_back(c.start(std::move(q)));
  }
  for (auto& x : f) EXPECT_TRUE(x.get().ok());
  EXPECT_EQ(requests, 30);
  EXPECT_LE(c.connections_opened(), 3u);
}

TEST(netHttpClient, BodyLimitsAndNonSuccessBodies) {
  FakeHttp big([](const HttpHead&, int fd) {
    send_response(fd, 200, "application/octet-stream", std::string(5000, 'x'));
  });
  Request q;
  q.max_body = 4000;
  Response r = get(big.url(), q);
  EXPECT_TRUE(contains(r.error, "larger than 4000 bytes")) << r.error;
  FakeHttp big_chunked([](const HttpHead&, int fd) {
    send_all(fd, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
    for (int i = 0; i < 10; ++i) send_all(fd, "3e8\r\n" + std::string(1000, 'y') + "\r\n");
    send_all(fd, "0\r\n\r\n");
  });
  r = get(big_chunked.url(), q);
  EXPECT_TRUE(contains(r.error, "larger than 4000 bytes")) << r.error;
  // An error page is kept only for the message, capped.
  FakeHttp error_page([](const HttpHead&, int fd) {
    send_response(fd, 500, "text/plain", "boom\n" + std::string(200000, 'z'));
  });
  r = get(error_page.url());
  EXPECT_TRUE(r.error.empty()) << r.error;
  EXPECT_EQ(r.status, 500);
  EXPECT_EQ(r.body.size(), 64u * 1024);
  EXPECT_EQ(r.describe(), "HTTP 500: boom");
}

// A caller's reused buffer: 200 bodies (sized or chunked) land at its start and body_size says
// how long they are; the buffer only grows; error bodies still go to Response::body.
TEST(netHttpClient, BodiesIntoAReusedBuffer) {
  std::string big(300000, '\0');
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 31 % 253);
  FakeHttp s([&](const HttpHead& h, int fd) {
    if (h.has("GET /big ")) {
      send_response(fd, 200, "application/octet-stream", big);
    } else if (h.has("GET /small ")) {
      send_response(fd, 200, "text/plain", "tiny");
    } else if (h.has("GET /chunked ")) {
      send_all(fd,
               "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
               "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n");
    } else if (h.has("GET /short ")) {
      send_all(fd, "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" + std::string(500, 'x'));
    } else {
      send_response(fd, 404, "text/plain", "no such thing");
    }
  });
  Bytes buf;
  Request q;
  q.body_buffer = &buf;
  Response r = get(s.url() + "/big", q);
  ASSERT_TRUE(r.ok()) << r.describe();
  EXPECT_TRUE(r.body.empty());
  ASSERT_EQ(r.body_size, big.size());
  EXPECT_EQ(as_string(ByteView(buf.data(), r.body_size)), big);
  const uint8_t* memory = buf.data();
  r = get(s.url() + "/small", q);
  ASSERT_TRUE(r.ok()) << r.describe();
  EXPECT_EQ(as_string(ByteView(buf.data(), r.body_size)), "tiny");
  EXPECT_EQ(buf.size(), big.size());  // not shrunk: the same memory serves the next body
  EXPECT_EQ(buf.data(), memory);
  r = get(s.url() + "/chunked", q);
  ASSERT_TRUE(r.ok()) << r.describe();
  EXPECT_EQ(as_string(ByteView(buf.data(), r.body_size)), "hello world");
  r = get(s.url() + "/short", q);
  EXPECT_FALSE(r.ok());
  EXPECT_TRUE(contains(r.error, "closed after 500 of 1000")) << r.error;
  r = get(s.url() + "/missing", q);
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(as_string(r.body), "no such thing");
  EXPECT_EQ(r.body_size, 0u);
  // The body limit holds for the buffer too.
  q.max_body = 1000;
  r = get(s.url() + "/big", q);
  EXPECT_TRUE(contains(r.error, "larger than 1000 bytes")) << r.error;
}

TEST(netHttpClient, RedirectsAreReportedNotFollowed) {
  std::atomic<int> elsewhere_hits{0};
  FakeHttp elsewhere([&](const HttpHead&, int fd) {
    ++elsewhere_hits;
    send_response(fd, 200, "text/plain", "x");
  });
  FakeHttp s([&](const HttpHead&, int fd) {
    send_response(fd, 302, "text/plain", "", "Location: " + elsewhere.url() + "/x\r\n");
  });
  Response r = get(s.url());
  EXPECT_EQ(r.status, 302);
  EXPECT_EQ(r.location, elsewhere.url() + "/x");
  EXPECT_TRUE(contains(r.describe(), "redirect to " + elsewhere.url())) << r.describe();
  EXPECT_EQ(elsewhere_hits, 0);
}

TEST(netHttpClient, StreamingReceiverCanStopTheTransfer) {
  FakeHttp s([](const HttpHead&, int fd) {
    send_response(fd, 200, "application/octet-stream", std::string(1 << 20, 'x'));
  });
  Request q;
  size_t seen = 0;
  q.on_body = [&](ByteView b) {
    seen += b.size();
    return seen < 1000;
  };
  Response r = get(s.url(), q);
  EXPECT_TRUE(contains(r.error, "stopped by the receiver")) << r.error;
  Request t;
  t.on_body = [](ByteView) -> bool { throw Error("disk full"); };
  r = get(s.url(), t);
  EXPECT_TRUE(contains(r.error, "disk full")) << r.error;
}

TEST(netHttpClient, HeadAndInterimResponses) {
  FakeHttp s([](const HttpHead& h, int fd) {
    EXPECT_EQ(h.method, "HEAD");
    send_all(fd,
             "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 12345\r\n"
             "Connection: close\r\n\r\n");
  });
  Request q;
  q.method = "HEAD";
  Response r = get(s.url(), q);
  EXPECT_TRUE(r.ok()) << r.describe();
  EXPECT_TRUE(r.body.empty());
}

TEST(netHttpClient, PostUploadIsChunkedMultipart) {
  std::string received;
  FakeHttp s([&](const HttpHead& h, int fd) {
    EXPECT_EQ(h.method, "POST");
    EXPECT_TRUE(h.has("Transfer-Encoding: chunked")) << h.head;
    EXPECT_TRUE(h.has("Content-Type: multipart/form-data; boundary=")) << h.head;
    try {
      received = read_chunked_body(fd, h.rest);
    } catch (const std::exception& e) {
      received = std::string("server: ") + e.what();
      return;
    }
    send_response(fd, 200, "application/json", "{\"ok\":true}\n");
  });
  std::string payload;
  for (int i = 0; i < 100000; ++i) payload += static_cast<char>('a' + i % 26);
  size_t off = 0;
  Request q;
  q.method = "POST";
  q.url = s.url() + "/api/v0/dag/import";
  q.upload = [&](uint8_t* buf, size_t len) {
    size_t n = std::min<size_t>({len, payload.size() - off, 7777});
    std::copy_n(payload.data() + off, n, buf);
    off += n;
    return n;
  };
  Response r = Client().perform(q);
  ASSERT_TRUE(r.ok()) << r.describe();
  std::string boundary = received.substr(2, received.find("\r\n") - 2);
  size_t data_start = received.find("\r\n\r\n") + 4;
  EXPECT_TRUE(contains(received.substr(0, data_start), "name=\"file\"")) << received.substr(0, 200);
  EXPECT_EQ(received.substr(data_start, payload.size()), payload);
  EXPECT_EQ(received.substr(data_start + payload.size()), "\r\n--" + boundary + "--\r\n");

  // An upload whose producer fails is aborted with the producer's message.
  Request bad;
  bad.method = "POST";
  bad.url = s.url() + "/api/v0/dag/import";
  bad.upload = [](uint8_t*, size_t) -> size_t { throw Error("CAR producer failed"); };
  r = Client().perform(bad);
  EXPECT_TRUE(contains(r.error, "CAR producer failed")) << r.error;
}

// --- TLS ---

struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/cidrun-net-XXXXXX";
    path = ::mkdtemp(tmpl);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
};

// A TLS server on 127.0.0.1 with a self-signed certificate for "localhost" made by the openssl
// command; it answers each request with "secure <target>".
class TlsServer {
 public:
  TlsServer() {
    cert_ = dir_.path + "/cert.pem";
    std::string key = dir_.path + "/key.pem";
    std::string cmd =
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
        "-subj /CN=localhost -addext subjectAltName=DNS:localhost -days 1 -keyout " +
        key + " -out " + cert_ + " >/dev/null 2>&1";
    if (std::system(cmd.c_str()) != 0) throw std::runtime_error("openssl req failed");
    ctx_ = SSL_CTX_new(TLS_server_method());
    if (SSL_CTX_use_certificate_file(ctx_, cert_.c_str(), SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx_, key.c_str(), SSL_FILETYPE_PEM) != 1) {
      throw std::runtime_error("tls server: cannot load the certificate");
    }
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
        ::listen(listen_fd_, 16) != 0) {
      throw std::runtime_error("tls server: bind");
    }
    socklen_t len = sizeof a;
    ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { loop(); });
  }
  ~TlsServer() {
    ::shutdown(listen_fd_, SHUT_RDWR);
    thread_.join();
    {
      std::lock_guard l(mu_);
      for (int fd : fds_) ::shutdown(fd, SHUT_RDWR);
    }
    for (auto& t : conns_) t.join();
    ::close(listen_fd_);
    SSL_CTX_free(ctx_);
  }
  const std::string& cert() const { return cert_; }
  int port() const { return port_; }

 private:
  void loop() {
    for (;;) {
      int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) return;
      std::lock_guard l(mu_);
      fds_.push_back(fd);
      conns_.emplace_back([this, fd] { serve(fd); });
    }
  }

  void serve(int fd) {
    {
      SSL* ssl = SSL_new(ctx_);
      SSL_set_fd(ssl, fd);
      if (SSL_accept(ssl) == 1) {
        std::string buf;
        char tmp[4096];
        for (;;) {
          size_t end = buf.find("\r\n\r\n");
          if (end != std::string::npos) {
            std::string head = buf.substr(0, end);
            buf.erase(0, end + 4);
            std::string target = head.substr(head.find(' ') + 1);
            target = target.substr(0, target.find(' '));
            std::string body = "secure " + target;
            std::string resp = "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(body.size()) +
                               "\r\n\r\n" + body;
            SSL_write(ssl, resp.data(), static_cast<int>(resp.size()));
            continue;
          }
          int n = SSL_read(ssl, tmp, sizeof tmp);
          if (n <= 0) break;
          buf.append(tmp, static_cast<size_t>(n));
        }
        SSL_shutdown(ssl);
      }
      ERR_clear_error();
      SSL_free(ssl);
    }
    std::lock_guard l(mu_);
    std::erase(fds_, fd);
    ::close(fd);
  }

  TempDir dir_;
  std::string cert_;
  SSL_CTX* ctx_ = nullptr;
  int listen_fd_ = -1;
  int port_ = 0;
  std::thread thread_;
  std::mutex mu_;
  std::vector<int> fds_;
  std::vector<std::thread> conns_;
};

TEST(netHttpClient, HttpsVerifiesTheCertificateAndTheName) {
  TlsServer s;
  std::string url = "https://localhost:" + std::to_string(s.port());
  // Not trusted: the self-signed certificate is refused.
  Response r = Client().perform(Request{.url = url + "/a"});
  EXPECT_FALSE(r.ok());
  EXPECT_TRUE(contains(r.error, "certificate verify failed")) << r.error;
  // Trusted: the request goes through, twice on one connection.
  Client trusting({.ca_file = s.cert()});
  for (int i = 0; i < 2; ++i) {
    r = trusting.perform(Request{.url = url + "/b"});
    ASSERT_TRUE(r.ok()) << r.describe();
    EXPECT_EQ(as_string(r.body), "secure /b");
  }
  EXPECT_EQ(trusting.connections_opened(), 1u);
  // Trusted certificate, wrong name: refused.
  r = trusting.perform(Request{.url = "https://127.0.0.1:" + std::to_string(s.port()) + "/c"});
  EXPECT_FALSE(r.ok());
  EXPECT_TRUE(contains(r.error, "certificate verify failed")) << r.error;
  // A trust file that does not exist is an error, not silently ignored.
  r = Client({.ca_file = "/nonexistent.pem"}).perform(Request{.url = url});
  EXPECT_TRUE(contains(r.error, "cannot load certificates")) << r.error;
}

// --- proxies ---

ClientOptions through(const std::string& var, const std::string& proxy_url,
                      const std::string& no_proxy = "") {
  std::map<std::string, std::string> env{{var, proxy_url}, {"no_proxy", no_proxy}};
  ClientOptions o;
  o.proxy = net::ProxyConfig::from_env([env](const char* name) -> const char* {
    auto it = env.find(name);
    return it == env.end() ? nullptr : it->second.c_str();
  });
  return o;
}

TEST(netHttpClient, HttpThroughAProxyUsesAbsoluteFormAndProxyCredentials) {
  FakeHttp proxy([](const HttpHead& h, int fd) {
    // The origin's name is never resolved here: the proxy does that.
    EXPECT_EQ(h.target, "http://origin.invalid:8080/ipfs/x?format=raw") << h.head;
    EXPECT_TRUE(h.has("Host: origin.invalid:8080")) << h.head;
    // base64("al ice:p@ss")
    EXPECT_TRUE(h.has("Proxy-Authorization: Basic YWwgaWNlOnBAc3M=")) << h.head;
    send_response(fd, 200, "text/plain", "from the proxy");
  });
  std::string url = "http://al%20ice:p%40ss@127.0.0.1:" + std::to_string(proxy.port());
  Client c(through("http_proxy", url));
  Response r = c.perform(Request{.url = "http://origin.invalid:8080/ipfs/x?format=raw"});
  ASSERT_TRUE(r.ok()) << r.describe();
  EXPECT_EQ(as_string(r.body), "from the proxy");
  EXPECT_EQ(proxy.requests(), 1);
  // no_proxy sends the same origin around the proxy (and here to a name that cannot resolve).
  Client direct(through("http_proxy", url, "origin.invalid"));
  r = direct.perform(Request{.url = "http://origin.invalid:8080/x", .connect_timeout_ms = 2000});
  EXPECT_TRUE(contains(r.error, "cannot resolve origin.invalid")) << r.error;
  EXPECT_EQ(proxy.requests(), 1);
}

TEST(netHttpClient, HostileProxiesGiveOneLineNamingTheProxy) {
  FakeHttp* self = nullptr;
  FakeHttp wants_auth([](const HttpHead& h, int fd) {
    if (h.method == "CONNECT") {
      EXPECT_EQ(h.target, "origin.invalid:443") << h.head;
      EXPECT_TRUE(h.has("Host: origin.invalid:443")) << h.head;
      send_all(fd, "HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n");
    } else {
      send_response(fd, 407, "text/plain", "auth please");
    }
  });
  FakeHttp hangs([&](const HttpHead&, int) { self->hang(); });
  self = &hangs;
  FakeHttp closes([](const HttpHead&, int) {});
  FakeHttp garbage([](const HttpHead&, int fd) { send_all(fd, "SSH-2.0-OpenSSH\r\n\r\n"); });
  int dead_port;
  {
    FakeHttp gone([](const HttpHead&, int) {});
    dead_port = gone.port();
  }
  auto via = [](const FakeHttp& p) { return "http://127.0.0.1:" + std::to_string(p.port()); };
  struct Case {
    std::string var, proxy, url, error;
  };
  std::string dead = "http://127.0.0.1:" + std::to_string(dead_port);
  for (const auto& c : std::vector<Case>{
           {"https_proxy", via(wants_auth), "https://origin.invalid/ipfs/x",
            "proxy " + via(wants_auth) +
                " refused CONNECT origin.invalid:443: HTTP 407 Proxy Authentication Required"},
           {"http_proxy", via(wants_auth), "http://origin.invalid/ipfs/x",
            "proxy " + via(wants_auth) + " refused the request: HTTP 407 (credentials needed)"},
           {"https_proxy", via(hangs), "https://origin.invalid/ipfs/x",
            "proxy " + via(hangs) + " did not answer CONNECT origin.invalid:443 within 500 ms"},
           {"http_proxy", via(hangs), "http://origin.invalid/ipfs/x",
            "stalled: no data for 1 s (via proxy " + via(hangs) + ")"},
           {"https_proxy", via(closes), "https://origin.invalid/ipfs/x",
            "proxy " + via(closes) + " closed the connection without answering CONNECT"},
           {"https_proxy", via(garbage), "https://origin.invalid/ipfs/x",
            "proxy " + via(garbage) + ": bad answer to CONNECT: malformed status line"},
           {"all_proxy", dead, "https://origin.invalid/ipfs/x",
            "proxy " + dead + ": cannot connect to 127.0.0.1:" + std::to_string(dead_port)},
           {"https_proxy", "ftp://127.0.0.1:1080", "https://origin.invalid/ipfs/x",
            "bad proxy https_proxy=ftp://127.0.0.1:1080: ftp:// proxies are not supported"},
           {"http_proxy", "::garbage::", "http://origin.invalid/ipfs/x",
            "bad proxy http_proxy=::garbage::"},
       }) {
    Client client(through(c.var, c.proxy));
    auto t0 = std::chrono::steady_clock::now();
    Response r = client.perform(Request{.url = c.url, .connect_timeout_ms = 500, .stall_secs = 1});
    EXPECT_FALSE(r.ok());
    EXPECT_TRUE(contains(r.error, c.error)) << r.error;
    EXPECT_EQ(r.error.find('\n'), std::string::npos) << r.error;
    EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5)) << c.error;
  }
}

// The plain http origin behind a proxy: it counts its requests and checks that each arrives in
// origin-form at /plain, without the credentials meant for the proxy.
class PlainOrigin {
 public:
  explicit PlainOrigin(std::string body)
      : http_([this, body = std::move(body)](const HttpHead& h, int fd) {
          ++requests_;
          EXPECT_EQ(h.target, "/plain") << h.head;
          EXPECT_FALSE(h.has("Proxy-Authorization")) << h.head;
          send_response(fd, 200, "text/plain", body);
        }) {}
  std::string url() const { return http_.url(); }
  int port() const { return http_.port(); }
  int requests() const { return requests_; }

 private:
  std::atomic<int> requests_{0};
  FakeHttp http_;
};

TEST(netHttpClient, ThroughTinyproxyHttpAndHttpsWithCredentials) {
  TlsServer origin;
  // The proxy turns the absolute-form target back into origin-form, and keeps our credentials
  // to itself.
  PlainOrigin plain("plain via proxy");
  cidrun::testing::Tinyproxy proxy({origin.port()}, "alice", "s3cret");
  std::string with_auth = "http://alice:s3cret@127.0.0.1:" + std::to_string(proxy.port());

  ClientOptions http_opts = through("http_proxy", with_auth);
  Response r = Client(http_opts).perform(Request{.url = plain.url() + "/plain"});
  ASSERT_TRUE(r.ok()) << r.describe();
  EXPECT_EQ(as_string(r.body), "plain via proxy");
  EXPECT_EQ(plain.requests(), 1);
  EXPECT_TRUE(contains(proxy.log(), "GET " + plain.url() + "/plain")) << proxy.log();

  // https: a CONNECT tunnel, TLS with the origin: its certificate (for localhost, trusted
  // through ca_file) is checked against the origin's name, not the proxy's address.
  ClientOptions tls_opts = through("https_proxy", with_auth);
  tls_opts.ca_file = origin.cert();
  Client tls(tls_opts);
  std::string url = "https://localhost:" + std::to_string(origin.port());
  for (int i = 0; i < 2; ++i) {
    r = tls.perform(Request{.url = url + "/tunnel"});
    ASSERT_TRUE(r.ok()) << r.describe();
    EXPECT_EQ(as_string(r.body), "secure /tunnel");
  }
  EXPECT_EQ(tls.connections_opened(), 1u);  // the tunnel is kept alive like any connection
  EXPECT_TRUE(contains(proxy.log(), "CONNECT localhost:" + std::to_string(origin.port())))
      << proxy.log();
  // Not trusted: the origin's certificate is refused even though the proxy said yes.
  ClientOptions untrusting = through("https_proxy", with_auth);
  r = Client(untrusting).perform(Request{.url = url + "/x"});
  EXPECT_TRUE(contains(r.error, "certificate verify failed")) << r.error;
  EXPECT_TRUE(contains(r.error, "via proxy http://127.0.0.1:")) << r.error;

  // Wrong credentials: tinyproxy answers 401 (407 is for none at all); either way the proxy is
  // named.
  std::string wrong = "http://alice:nope@127.0.0.1:" + std::to_string(proxy.port());
  ClientOptions bad = through("https_proxy", wrong);
  bad.ca_file = origin.cert();
  r = Client(bad).perform(Request{.url = url + "/x"});
  EXPECT_TRUE(contains(r.error, "proxy http://127.0.0.1:" + std::to_string(proxy.port()) +
                                    " refused CONNECT localhost:" + std::to_string(origin.port()) +
                                    ": HTTP 401 Unauthorized"))
      << r.error;
  r = Client(through("http_proxy", wrong)).perform(Request{.url = plain.url() + "/plain"});
  EXPECT_EQ(r.status, 401);
  EXPECT_TRUE(contains(r.describe(), "(via proxy " + proxy.url() + ")")) << r.describe();
  r = Client(through("http_proxy", proxy.url())).perform(Request{.url = plain.url() + "/plain"});
  EXPECT_TRUE(contains(
      r.error, "proxy " + proxy.url() + " refused the request: HTTP 407 (credentials needed)"))
      << r.error;
  // A port the proxy does not allow CONNECT to: its 403, named.
  r = Client(through("https_proxy", with_auth)).perform(Request{.url = "https://localhost:1/"});
  EXPECT_TRUE(contains(r.error, "refused CONNECT localhost:1: HTTP 403")) << r.error;
}

// --- https proxies (stunnel's TLS in front of tinyproxy) ---

// A self-signed certificate and key for "localhost" in dir, made by the openssl command.
std::pair<std::string, std::string> localhost_certificate(const TempDir& dir) {
  std::string cert = dir.path + "/proxy-cert.pem", key = dir.path + "/proxy-key.pem";
  std::string cmd =
      "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
      "-subj /CN=localhost -addext subjectAltName=DNS:localhost -days 1 -keyout " +
      key + " -out " + cert + " >/dev/null 2>&1";
  if (std::system(cmd.c_str()) != 0) throw std::runtime_error("openssl req failed");
  return {cert, key};
}

// One PEM file trusting every certificate in files.
std::string trust_bundle(const TempDir& dir, const std::vector<std::string>& files) {
  std::string path = dir.path + "/bundle.pem";
  std::ofstream out(path);
  for (const auto& f : files) out << std::ifstream(f).rdbuf();
  return path;
}

size_t occurrences(const std::string& s, const std::string& part) {
  size_t n = 0;
  for (size_t i = s.find(part); i != std::string::npos; i = s.find(part, i + 1)) ++n;
  return n;
}

// The requests tinyproxy relayed (one log line each).
size_t relayed(const cidrun::testing::Tinyproxy& p) {
  return occurrences(p.log(), "Request (file descriptor");
}

TEST(netHttpClient, ThroughAnHttpsProxyHttpAndHttpsOriginsWithCredentials) {
  TempDir dir;
  auto [proxy_cert, proxy_key] = localhost_certificate(dir);
  TlsServer origin;
  PlainOrigin plain("plain via https proxy");
  cidrun::testing::Tinyproxy tinyproxy({origin.port()}, "alice", "s3cret");
  cidrun::testing::Stunnel front(proxy_cert, proxy_key, tinyproxy.port());
  std::string port = std::to_string(front.port());
  std::string name = "https://localhost:" + port;  // how messages name the proxy
  std::string with_auth = "https://alice:s3cret@localhost:" + port;
  std::string both = trust_bundle(dir, {origin.cert(), proxy_cert});
  auto opts = [&](const std::string& var, const std::string& proxy_url, const std::string& ca) {
    ClientOptions o = through(var, proxy_url);
    o.ca_file = ca;
    return o;
  };

  // http origin: absolute form and Proxy-Authorization, inside TLS with the proxy.
  Client http(opts("http_proxy", with_auth, both));
  Response r = http.perform(Request{.url = plain.url() + "/plain"});
  ASSERT_TRUE(r.ok()) << r.describe();
  EXPECT_EQ(as_string(r.body), "plain via https proxy");
  EXPECT_EQ(r.proxy, name);
  EXPECT_EQ(plain.requests(), 1);
  EXPECT_TRUE(contains(tinyproxy.log(), "GET " + plain.url() + "/plain")) << tinyproxy.log();

  // https origin: CONNECT inside the proxy's TLS, then the origin's TLS inside that, its
  // certificate checked against "localhost:<origin>"; the tunnel is reused like any connection.
  Client tls(opts("https_proxy", with_auth, both));
  std::string url = "https://localhost:" + std::to_string(origin.port());
  for (int i = 0; i < 3; ++i) {
    r = tls.perform(Request{.url = url + "/tunnel" + std::to_string(i)});
    ASSERT_TRUE(r.ok()) << r.describe();
    EXPECT_EQ(as_string(r.body), "secure /tunnel" + std::to_string(i));
  }
  EXPECT_EQ(tls.connections_opened(), 1u);
  EXPECT_EQ(occurrences(tinyproxy.log(), "CONNECT localhost:" + std::to_string(origin.port())), 1u)
      << tinyproxy.log();
  // A body larger than one TLS record of either session crosses both intact.
  std::string big_target = "/" + std::string(40000, 'x');
  r = tls.perform(Request{.url = url + big_target});
  ASSERT_TRUE(r.ok()) << r.describe();
  EXPECT_EQ(as_string(r.body), "secure " + big_target);

  // The origin's certificate trusted but not the proxy's: the proxy is refused before anything
  // is sent to it.
  size_t relayed_before = relayed(tinyproxy);
  const std::string untrusted = "proxy " + name + ": TLS handshake with localhost:" + port +
                                " failed: certificate verify " + "failed: self-signed";
  for (const char* var : {"http_proxy", "https_proxy"}) {
    r = Client(opts(var, with_auth, origin.cert()))
            .perform(Request{.url = std::string(var) == "http_proxy" ? plain.url() + "/plain"
                                                                     : url + "/x"});
    EXPECT_FALSE(r.ok());
    EXPECT_TRUE(contains(r.error, untrusted)) << r.error;
  }
  EXPECT_EQ(relayed(tinyproxy), relayed_before) << tinyproxy.log();
  // The proxy's certificate trusted but not the origin's: the origin (inside the tunnel) is
  // refused, and the message says which proxy carried it.
  r = Client(opts("https_proxy", with_auth, proxy_cert)).perform(Request{.url = url + "/x"});
  EXPECT_TRUE(contains(r.error, "TLS handshake with localhost:" + std::to_string(origin.port()) +
                                    " failed: certificate verify failed"))
      << r.error;
  EXPECT_TRUE(contains(r.error, "(via proxy " + name + ")")) << r.error;

  // A proxy whose certificate does not name it (reached as 127.0.0.1, certificate for
  // localhost): one line naming the proxy, no password, nothing fetched.
  relayed_before = relayed(tinyproxy);
  std::string by_address = "https://alice:s3cret@127.0.0.1:" + port;
  const std::string mismatch = "proxy https://127.0.0.1:" + port +
                               ": TLS handshake with 127.0.0.1:" + port +
                               " failed: certificate verify failed: IP address mismatch";
  for (const char* var : {"http_proxy", "https_proxy"}) {
    bool https = std::string(var) == "https_proxy";
    r = Client(opts(var, by_address, both))
            .perform(Request{.url = https ? url + "/x" : plain.url() + "/plain"});
    EXPECT_FALSE(r.ok());
    EXPECT_TRUE(contains(r.error, mismatch)) << r.error;
    EXPECT_EQ(r.error.find('\n'), std::string::npos) << r.error;
    EXPECT_EQ(r.error.find("s3cret"), std::string::npos) << r.error;
  }
  EXPECT_EQ(plain.requests(), 1);
  EXPECT_EQ(relayed(tinyproxy), relayed_before) << tinyproxy.log();

  // Wrong and missing credentials: tinyproxy's 401/407, one line naming the proxy, never the
  // password.
  std::string wrong = "https://alice:nope@localhost:" + port;
  r = Client(opts("https_proxy", wrong, both)).perform(Request{.url = url + "/x"});
  EXPECT_TRUE(contains(r.error, "proxy " + name + " refused CONNECT localhost:" +
                                    std::to_string(origin.port()) + ": HTTP 401 Unauthorized"))
      << r.error;
  EXPECT_EQ(r.error.find("nope"), std::string::npos) << r.error;
  r = Client(opts("http_proxy", wrong, both)).perform(Request{.url = plain.url() + "/plain"});
  EXPECT_EQ(r.status, 401);
  EXPECT_TRUE(contains(r.describe(), "(via proxy " + name + ")")) << r.describe();
  std::string anonymous = "https://localhost:" + port;
  r = Client(opts("http_proxy", anonymous, both)).perform(Request{.url = plain.url() + "/plain"});
  EXPECT_EQ(r.error, plain.url() + "/plain: proxy " + name +
                         " refused the request: HTTP 407 (credentials needed)");
  r = Client(opts("https_proxy", anonymous, both)).perform(Request{.url = url + "/x"});
  EXPECT_TRUE(contains(r.error, "proxy " + name + " refused CONNECT localhost:" +
                                    std::to_string(origin.port()) + ": HTTP 407"))
      << r.error;
  EXPECT_EQ(r.error.find('\n'), std::string::npos) << r.error;
  EXPECT_EQ(plain.requests(), 1);
}

TEST(netHttpClient, HttpsProxiesThatFailTheHandshakeGiveOneLine) {
  TempDir dir;
  auto [proxy_cert, proxy_key] = localhost_certificate(dir);
  // Reads the client's hello, starts a handshake record and closes inside it.
  FakeHttp closes_mid_handshake(
      [](const HttpHead&, int fd) {
        char hello[512];
        if (::recv(fd, hello, sizeof hello, 0) > 0)
          send_all(fd, std::string("\x16\x03\x03\x00\x64", 5));
      },
      true);
  FakeHttp* self = nullptr;
  FakeHttp silent([&](const HttpHead&, int) { self->hang(); }, true);
  self = &silent;
  // Behind a real https proxy, an origin that closes at once: the inner handshake fails inside
  // the proxy's TLS.
  FakeHttp closing_origin([](const HttpHead&, int) {}, true);
  cidrun::testing::Tinyproxy tinyproxy({closing_origin.port()});
  cidrun::testing::Stunnel front(proxy_cert, proxy_key, tinyproxy.port());
  auto via = [](int port) { return "https://localhost:" + std::to_string(port); };
  struct Case {
    std::string proxy, url, error;
  };
  std::string origin = "https://localhost:" + std::to_string(closing_origin.port()) + "/x";
  for (const auto& c : std::vector<Case>{
           {via(closes_mid_handshake.port()), "https://origin.invalid/x",
            "proxy " + via(closes_mid_handshake.port()) + ": TLS handshake with localhost:" +
                std::to_string(closes_mid_handshake.port()) + " failed: connection closed"},
           {via(silent.port()), "https://origin.invalid/x",
            "proxy " + via(silent.port()) +
                ": TLS handshake with localhost:" + std::to_string(silent.port()) + " timed out"},
           {via(front.port()), origin,
            "TLS handshake with localhost:" + std::to_string(closing_origin.port()) +
                " failed: connection closed (via proxy " + via(front.port()) + ")"},
       }) {
    ClientOptions o = through("https_proxy", c.proxy);
    o.ca_file = proxy_cert;
    auto t0 = std::chrono::steady_clock::now();
    Response r = Client(o).perform(Request{.url = c.url, .connect_timeout_ms = 1000});
    EXPECT_FALSE(r.ok());
    EXPECT_EQ(r.error, c.url + ": " + c.error);
    EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5)) << c.error;
  }
  EXPECT_EQ(closes_mid_handshake.requests(), 1);
}

// --- SOCKS proxies ---

// Exactly n bytes from fd ("" when the peer closed first).
std::string recv_n(int fd, size_t n) {
  std::string out(n, '\0');
  size_t got = 0;
  while (got < n) {
    ssize_t r = ::recv(fd, out.data() + got, n - got, 0);
    if (r <= 0) return "";
    got += static_cast<size_t>(r);
  }
  return out;
}

// Reads a SOCKS5 CONNECT request after the greeting; returns "ATYP:address:port" as text
// (a domain as is, an address through inet_ntop).
std::string read_socks5_request(int fd) {
  std::string h = recv_n(fd, 4);
  if (h.size() != 4) return "";
  std::string addr;
  if (h[3] == 3) {
    std::string len = recv_n(fd, 1);
    addr = recv_n(fd, static_cast<uint8_t>(len[0]));
  } else {
    std::string raw = recv_n(fd, h[3] == 1 ? 4 : 16);
    char text[64] = {};
    ::inet_ntop(h[3] == 1 ? AF_INET : AF_INET6, raw.data(), text, sizeof text);
    addr = text;
  }
  std::string port = recv_n(fd, 2);
  int p = (static_cast<uint8_t>(port[0]) << 8) | static_cast<uint8_t>(port[1]);
  return std::to_string(h[3]) + ":" + addr + ":" + std::to_string(p);
}

TEST(netHttpClient, ThroughMicrosocksHttpAndHttpsWithCredentials) {
  TlsServer origin;
  // SOCKS carries bytes: origin-form, and no proxy credentials ever reach the origin.
  PlainOrigin plain("plain via socks");
  cidrun::testing::Microsocks open_proxy;
  cidrun::testing::Microsocks auth_proxy("alice", "s3cret");
  std::string open_at = "127.0.0.1:" + std::to_string(open_proxy.port());
  std::string auth_at = "127.0.0.1:" + std::to_string(auth_proxy.port());
  std::string plain_url = "http://localhost:" + std::to_string(plain.port()) + "/plain";
  for (const std::string& proxy :
       {"socks5://" + open_at, "socks5h://" + open_at, "socks5h://alice:s3cret@" + auth_at,
        "socks5://alice:s3cret@" + auth_at}) {
    Response r = Client(through("http_proxy", proxy)).perform(Request{.url = plain_url});
    ASSERT_TRUE(r.ok()) << proxy << ": " << r.describe();
    EXPECT_EQ(as_string(r.body), "plain via socks");
  }
  EXPECT_EQ(plain.requests(), 4);

  // https: TLS with the origin through the SOCKS stream, its certificate checked against the
  // origin's name; the connection is kept alive like any other.
  ClientOptions tls_opts = through("https_proxy", "socks5h://alice:s3cret@" + auth_at);
  tls_opts.ca_file = origin.cert();
  Client tls(tls_opts);
  std::string url = "https://localhost:" + std::to_string(origin.port());
  for (int i = 0; i < 2; ++i) {
    Response r = tls.perform(Request{.url = url + "/tunnel"});
    ASSERT_TRUE(r.ok()) << r.describe();
    EXPECT_EQ(as_string(r.body), "secure /tunnel");
  }
  EXPECT_EQ(tls.connections_opened(), 1u);
  Response r =
      Client(through("https_proxy", "socks5h://" + open_at)).perform(Request{.url = url + "/x"});
  EXPECT_TRUE(contains(r.error, "certificate verify failed")) << r.error;
  EXPECT_TRUE(contains(r.error, "via proxy socks5h://" + open_at)) << r.error;

  // Credentials: wrong ones, and none where they are needed; the password is never printed.
  r = Client(through("http_proxy", "socks5h://alice:nope@" + auth_at))
          .perform(Request{.url = plain_url});
  EXPECT_TRUE(contains(r.error, "proxy socks5h://" + auth_at + ": rejected the credentials"))
      << r.error;
  EXPECT_FALSE(contains(r.error, "nope")) << r.error;
  r = Client(through("http_proxy", "socks5h://" + auth_at)).perform(Request{.url = plain_url});
  EXPECT_TRUE(contains(r.error, "accepts none of our authentication methods (credentials needed)"))
      << r.error;
  EXPECT_EQ(plain.requests(), 4);
}

TEST(netHttpClient, SocksHandshakesOnTheWire) {
  // socks5h: the name goes to the proxy (ATYP 3); a bound address given as a name is skipped.
  std::string asked;
  FakeHttp socks5h(
      [&](const HttpHead&, int fd) {
        if (recv_n(fd, 3) != std::string("\x05\x01\x00", 3)) return;
        send_all(fd, std::string("\x05\x00", 2));
        asked = read_socks5_request(fd);
        send_all(fd, std::string("\x05\x00\x00\x03\x04host\x01\xbb", 11));
        EXPECT_TRUE(contains(read_head(fd), "GET /x HTTP/1.1\r\nHost: origin.invalid\r\n"));
        send_response(fd, 200, "text/plain", "via socks5h");
      },
      true);
  Response r =
      Client(through("http_proxy", "socks5h://127.0.0.1:" + std::to_string(socks5h.port())))
          .perform(Request{.url = "http://origin.invalid/x"});
  ASSERT_TRUE(r.ok()) << r.describe();
  EXPECT_EQ(as_string(r.body), "via socks5h");
  EXPECT_EQ(asked, "3:origin.invalid:80");

  // socks5: resolved here, the address goes to the proxy (ATYP 1 or 4).
  FakeHttp socks5(
      [&](const HttpHead&, int fd) {
        recv_n(fd, 3);
        send_all(fd, std::string("\x05\x00", 2));
        asked = read_socks5_request(fd);
        send_all(fd, std::string("\x05\x00\x00\x01\x7f\x00\x00\x01\x00\x50", 10));
        read_head(fd);
        send_response(fd, 200, "text/plain", "via socks5");
      },
      true);
  r = Client(through("http_proxy", "socks5://127.0.0.1:" + std::to_string(socks5.port())))
          .perform(Request{.url = "http://localhost:8081/x"});
  ASSERT_TRUE(r.ok()) << r.describe();
  EXPECT_TRUE(asked == "1:127.0.0.1:8081" || asked == "4:::1:8081") << asked;
  // A name that does not resolve is our error: the proxy is not even asked.
  int before = socks5.requests();
  r = Client(through("http_proxy", "socks5://127.0.0.1:" + std::to_string(socks5.port())))
          .perform(Request{.url = "http://origin.invalid/x", .connect_timeout_ms = 2000});
  EXPECT_TRUE(contains(r.error, "cannot resolve origin.invalid")) << r.error;
  // Connected, then gave up before a byte was sent. The fake counts a connection on its own
  // thread once it accepted it, which can be after the client gave up: wait for it.
  for (int i = 0; i < 200 && socks5.requests() < before + 1; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(socks5.requests(), before + 1);

  // socks4a: user id, then the name after the 0.0.0.1 marker.
  std::string request4;
  FakeHttp socks4a(
      [&](const HttpHead&, int fd) {
        request4 = recv_n(fd, 8 + 4 + 15);  // head, "bob\0", "origin.invalid\0"
        send_all(fd, std::string("\x00\x5a\x00\x00\x00\x00\x00\x00", 8));
        read_head(fd);
        send_response(fd, 200, "text/plain", "via socks4a");
      },
      true);
  r = Client(through("http_proxy", "socks4a://bob@127.0.0.1:" + std::to_string(socks4a.port())))
          .perform(Request{.url = "http://origin.invalid:8080/x"});
  ASSERT_TRUE(r.ok()) << r.describe();
  EXPECT_EQ(as_string(r.body), "via socks4a");
  EXPECT_EQ(request4, std::string("\x04\x01\x1f\x90\x00\x00\x00\x01"
                                  "bob\0origin.invalid\0",
                                  27));
}

TEST(netHttpClient, HostileSocksProxiesGiveOneLineNamingTheProxy) {
  FakeHttp* self = nullptr;
  FakeHttp no_method(
      [](const HttpHead&, int fd) {
        recv_n(fd, 3);
        send_all(fd, std::string("\x05\xff", 2));
      },
      true);
  FakeHttp refuses(
      [](const HttpHead&, int fd) {
        recv_n(fd, 3);
        send_all(fd, std::string("\x05\x00", 2));
        read_socks5_request(fd);
        send_all(fd, std::string("\x05\x05\x00\x01\x00\x00\x00\x00\x00\x00", 10));
      },
      true);
  FakeHttp http_not_socks(
      [](const HttpHead&, int fd) {
        recv_n(fd, 3);
        send_all(fd, "HTTP/1.1 400 Bad Request\r\n\r\n");
      },
      true);
  FakeHttp closes([](const HttpHead&, int) {}, true);
  FakeHttp hangs([&](const HttpHead&, int) { self->hang(); }, true);
  self = &hangs;
  FakeHttp rejects4(
      [](const HttpHead&, int fd) {
        recv_n(fd, 9);
        send_all(fd, std::string("\x00\x5b\x00\x00\x00\x00\x00\x00", 8));
      },
      true);
  auto at = [](const char* scheme, const FakeHttp& p) {
    return std::string(scheme) + "://127.0.0.1:" + std::to_string(p.port());
  };
  struct Case {
    std::string proxy, error;
  };
  for (const auto& c : std::vector<Case>{
           {at("socks5h", no_method),
            at("socks5h", no_method) +
                ": accepts none of our authentication methods (credentials needed)"},
           {at("socks5h", refuses), at("socks5h", refuses) +
                                        " refused CONNECT origin.invalid:80: connection refused "
                                        "(SOCKS5 reply 5)"},
           {at("socks5h", http_not_socks), "not a SOCKS5 proxy"},
           {at("socks5h", closes),
            at("socks5h", closes) + " closed the connection during the SOCKS handshake"},
           {at("socks5h", hangs), at("socks5h", hangs) +
                                      " did not finish the SOCKS handshake for origin.invalid:80 "
                                      "within 500 ms"},
           {at("socks4", rejects4), "cannot resolve origin.invalid"},
           {at("socks4a", rejects4),
            at("socks4a", rejects4) +
                " refused CONNECT origin.invalid:80: rejected or failed (SOCKS4 reply 91)"},
       }) {
    Client client(through("http_proxy", c.proxy));
    auto t0 = std::chrono::steady_clock::now();
    Response r = client.perform(
        Request{.url = "http://origin.invalid/x", .connect_timeout_ms = 500, .stall_secs = 1});
    EXPECT_FALSE(r.ok());
    EXPECT_TRUE(contains(r.error, c.error)) << r.error;
    EXPECT_EQ(r.error.find('\n'), std::string::npos) << r.error;
    EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5)) << c.error;
  }
}

Bytes coded(ByteView data, Compression c) {
  MemorySink out;
  std::unique_ptr<ByteSink> z;
  if (c == Compression::zstd) {
    z = std::make_unique<ZstdSink>(out);
  } else {
    z = std::make_unique<GzipSink>(out);
  }
  z->write(data);
  z->finish();
  return out.data();
}

// Content-Encoding: the body is decoded before anyone sees it (collected, into a reused buffer,
// streamed), whatever the framing; the limits count decoded bytes; a truncated or unknown coding
// is an error, never a short body.
TEST(netHttpClient, CodedBodiesAreDecoded) {
  std::string text;
  for (int i = 0; text.size() < 200000; ++i) text += "row " + std::to_string(i % 13) + "\n";
  Bytes z = coded(as_bytes(text), Compression::zstd);
  Bytes g = coded(as_bytes(text), Compression::gzip);
  FakeHttp sized([&](const HttpHead&, int fd) {
    send_all(fd, "HTTP/1.1 200 OK\r\nContent-Encoding: zstd\r\nContent-Length: " +
                     std::to_string(z.size()) + "\r\n\r\n" + std::string(as_string(z)));
  });
  Response r = get(sized.url());
  ASSERT_TRUE(r.ok()) << r.describe();
  EXPECT_EQ(r.content_encoding, "zstd");
  EXPECT_EQ(as_string(r.body), text);
  Bytes buffer;
  Request into;
  into.body_buffer = &buffer;
  r = get(sized.url(), into);
  ASSERT_TRUE(r.ok()) << r.describe();
  EXPECT_EQ(std::string(as_string(ByteView(buffer.data(), r.body_size))), text);

  FakeHttp chunked([&](const HttpHead&, int fd) {
    send_all(fd, "HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n");
    for (size_t at = 0; at < g.size(); at += 1000) {
      size_t n = std::min<size_t>(1000, g.size() - at);
      char len[32];
      std::snprintf(len, sizeof len, "%zx\r\n", n);
      send_all(fd, len + std::string(as_string(ByteView(g.data() + at, n))) + "\r\n");
    }
    send_all(fd, "0\r\n\r\n");
  });
  std::string streamed;
  Request q;
  q.on_body = [&](ByteView b) {
    streamed += as_string(b);
    return true;
  };
  r = get(chunked.url(), q);
  ASSERT_TRUE(r.ok()) << r.describe();
  EXPECT_EQ(streamed, text);

  Request capped;
  capped.max_body = 100000;
  r = get(sized.url(), capped);
  EXPECT_TRUE(contains(r.error, "larger than 100000 bytes")) << r.error;

  FakeHttp truncated([&](const HttpHead&, int fd) {
    std::string half(as_string(ByteView(z.data(), z.size() / 2)));
    send_all(fd, "HTTP/1.1 200 OK\r\nContent-Encoding: zstd\r\nContent-Length: " +
                     std::to_string(half.size()) + "\r\n\r\n" + half);
  });
  r = get(truncated.url());
  EXPECT_TRUE(contains(r.error, "truncated")) << r.error;

  FakeHttp unknown([&](const HttpHead&, int fd) {
    send_all(fd, "HTTP/1.1 200 OK\r\nContent-Encoding: br\r\nContent-Length: 3\r\n\r\nabc");
  });
  r = get(unknown.url());
  EXPECT_TRUE(contains(r.error, "unsupported Content-Encoding: br")) << r.error;
}

}  // namespace
}  // namespace cidrun::http
