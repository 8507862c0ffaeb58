// Two libp2p hosts over loopback: handshake, streams both ways with flow control, Identify and
// Ping; and the hostile cases: a handshake that lies about its key, a peer that opens far more
// streams than allowed, oversized and stalled messages, a peer that never finishes its handshake.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <thread>

#include <gtest/gtest.h>

#include "p2p/host.h"
#include "p2p/identify.h"
#include "util/error.h"
#include "util/sha256.h"

namespace cidrun::p2p {
namespace {

using namespace std::chrono_literals;

Clock::time_point in(std::chrono::milliseconds d) {
  return Clock::now() + d;
}

// Hashes what it receives; on the peer's FIN answers with the digest and closes.
class DigestSink : public StreamHandler {
 public:
  size_t on_data(Stream&, ByteView data) override {
    hash_.update(data);
    return 0;
  }
  void on_fin(Stream& s) override {
    Sha256Digest d = hash_.finish();
    s.write(d, Clock::now());
    s.close_write();
  }
  Sha256 hash_;
};

// Accepts a stream and leaves its writing to another thread: the peer's FIN does not end it.
class PushSource : public StreamHandler {
 public:
  size_t on_data(Stream&, ByteView) override { return 0; }
  void on_fin(Stream&) override {}
};

// Holds partial length-prefixed messages (at most 64 KiB each) and never answers.
class FrameHolder : public StreamHandler {
 public:
  size_t on_data(Stream&, ByteView data) override {
    frames_.feed(data);
    while (frames_.next()) {
    }
    return frames_.buffered();
  }
  FrameReader frames_{64 * 1024};
};

class Hosts : public ::testing::Test {
 protected:
  void SetUp() override {
    HostOptions opts;
    opts.max_inbound_streams = 64;
    opts.stalled_message = 1s;
    opts.handshake_timeout = 1s;
    server_ = std::make_unique<Host>(Ed25519Key::generate(), opts);
    server_->handle("/test/digest", [](Stream&) { return std::make_unique<DigestSink>(); });
    server_->handle("/test/hold", [](Stream&) { return std::make_unique<FrameHolder>(); });
    server_->handle("/test/source", [this](Stream& s) {
      // Pushes 24 MiB from another thread (handlers must not block the reactor).
      std::shared_ptr<Stream> raw = s.shared_from_this();
      writers_.emplace_back([raw] {
        Bytes chunk(1 << 20);
        for (size_t i = 0; i < chunk.size(); ++i) chunk[i] = static_cast<uint8_t>(i * 7);
        try {
          for (int i = 0; i < 24; ++i) raw->write(chunk, Clock::now() + 20s);
          raw->close_write();
        } catch (const Error& e) {
          ADD_FAILURE() << e.what();
        }
      });
      return std::make_unique<PushSource>();
    });
    addr_ = server_->listen(Multiaddr::parse("/ip4/127.0.0.1/tcp/0"));
    client_ = std::make_unique<Host>(Ed25519Key::generate());
  }
  void TearDown() override {
    for (auto& t : writers_) t.join();
    client_->stop();
    server_->stop();
  }

  std::unique_ptr<Host> server_, client_;
  Multiaddr addr_;
  std::vector<std::thread> writers_;
};

TEST_F(Hosts, HandshakeAndLargeTransferWithFlowControl) {
  EXPECT_EQ(addr_.peer, server_->id());
  auto conn = client_->connect(addr_, in(5s));
  EXPECT_EQ(conn->peer(), server_->id());
  // A second connect reuses the connection.
  EXPECT_EQ(client_->connect(addr_, in(5s)), conn);
  auto s = conn->open_stream("/test/digest", in(5s));
  Bytes data(20u << 20);
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<uint8_t>(i * 131 + (i >> 12));
  s->write(data, in(20s));  // far beyond the 256 KiB initial window
  s->close_write();
  uint8_t digest[32];
  size_t got = 0;
  while (got < 32) {
    size_t n = s->read(digest + got, 32 - got, in(20s));
    ASSERT_GT(n, 0u);
    got += n;
  }
  Sha256Digest want = sha256(data);
  EXPECT_TRUE(std::equal(want.begin(), want.end(), digest));
  uint8_t extra;
  EXPECT_EQ(s->read(&extra, 1, in(5s)), 0u);  // the server's FIN
}

TEST_F(Hosts, ReadsALongStreamThePeerPushes) {
  auto conn = client_->connect(addr_, in(5s));
  auto s = conn->open_stream("/test/source", in(5s));
  s->close_write();
  Bytes buf(100000);
  size_t total = 0;
  for (;;) {
    size_t n = s->read(buf.data(), buf.size(), in(20s));
    if (n == 0) break;
    total += n;
  }
  EXPECT_EQ(total, 24u << 20);
}

TEST_F(Hosts, IdentifyListsProtocolsAndPingEchoes) {
  auto conn = client_->connect(addr_, in(5s));
  auto id = conn->open_stream(kIdentifyProtocol, in(5s));
  auto msg = id->read_frame(kMaxIdentifyMessage, in(5s));
  ASSERT_TRUE(msg);
  IdentifyInfo info = decode_identify(*msg);
  EXPECT_EQ(PeerId::from_public_key(decode_public_key(info.public_key)), server_->id());
  EXPECT_NE(std::find(info.protocols.begin(), info.protocols.end(), "/test/digest"),
            info.protocols.end());
  ASSERT_EQ(info.listen_addrs.size(), 1u);
  EXPECT_EQ(Multiaddr::from_bytes(info.listen_addrs[0]).port, addr_.port);
  auto ping = conn->open_stream(kPingProtocol, in(5s));
  Bytes payload(32);
  for (int i = 0; i < 32; ++i) payload[i] = static_cast<uint8_t>(i);
  ping->write(payload, in(5s));
  Bytes back(32);
  size_t got = 0;
  while (got < 32) got += ping->read(back.data() + got, 32 - got, in(5s));
  EXPECT_EQ(back, payload);
  EXPECT_THROW(conn->open_stream("/not/spoken", in(5s)), Error);
}

TEST_F(Hosts, HandshakeThatLiesAboutItsKeyIsRefused) {
  Multiaddr wrong = addr_;
  wrong.peer = PeerId::from_public_key(Ed25519Key::generate().public_key);
  try {
    client_->connect(wrong, in(5s));
    FAIL() << "connected to a peer that is not the one dialed";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("not the"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(client_->connections().empty());
}

TEST_F(Hosts, TenThousandStreamsStayBounded) {
  auto conn = client_->connect(addr_, in(5s));
  std::vector<std::shared_ptr<Stream>> open;
  int refused = 0;
  for (int i = 0; i < 10000; ++i) {
    try {
      open.push_back(conn->open_stream("/test/hold", in(5s)));
    } catch (const Error&) {
      ++refused;
    }
  }
  EXPECT_EQ(open.size(), 64u);  // the server's max_inbound_streams
  EXPECT_EQ(refused, 10000 - 64);
  EXPECT_FALSE(conn->closed());
  // Closing some makes room again.
  for (int i = 0; i < 8; ++i) {
    open[i]->close_write();
  }
  std::this_thread::sleep_for(200ms);
  EXPECT_NO_THROW(conn->open_stream("/test/digest", in(5s)));
}

TEST_F(Hosts, OversizedMessageResetsTheStream) {
  auto conn = client_->connect(addr_, in(5s));
  auto s = conn->open_stream("/test/hold", in(5s));
  Bytes msg;
  put_frame(msg, Bytes(100 * 1024, 1));  // over the handler's 64 KiB
  s->write(msg, in(5s));
  uint8_t b;
  EXPECT_THROW(s->read(&b, 1, in(5s)), Error);
  EXPECT_FALSE(conn->closed());
}

TEST_F(Hosts, StalledPartialMessageIsReset) {
  auto conn = client_->connect(addr_, in(5s));
  auto s = conn->open_stream("/test/hold", in(5s));
  Bytes msg;
  put_frame(msg, Bytes(1000, 1));
  msg.resize(500);  // half a message, then nothing
  s->write(msg, in(5s));
  uint8_t b;
  auto start = Clock::now();
  EXPECT_THROW(s->read(&b, 1, in(10s)), Error);
  EXPECT_LT(Clock::now() - start, 5s);
}

TEST_F(Hosts, SilentHandshakeIsDropped) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(addr_.port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  pollfd p{fd, POLLIN, 0};
  ASSERT_EQ(::poll(&p, 1, 5000), 1);
  char buf[64];
  // The server sends nothing first; after its handshake timeout it closes.
  EXPECT_LE(::read(fd, buf, sizeof buf), 0);
  ::close(fd);
}

}  // namespace
}  // namespace cidrun::p2p
