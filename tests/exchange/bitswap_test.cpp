// Bitswap: the message codec, a client fetching a whole DAG from a server over real libp2p
// connections on loopback, and hostile peers on either side: wrong blocks, oversized messages,
// silence, and a wantlist of 1,000,000 entries.
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <future>
#include <thread>

#include <gtest/gtest.h>

#include "exchange/bitswap.h"
#include "exchange/block_source.h"
#include "exchange/fixtures.h"
#include "ipld/protobuf.h"
#include "p2p/frame.h"
#include "util/error.h"

namespace cidrun::exchange {
namespace {

using namespace std::chrono_literals;
using p2p::Clock;

TEST(BitswapMessage, RoundTrip) {
  Cid a = Cid::of(1, kCodecRaw, as_bytes("a"));
  Cid b = Cid::of(0, kCodecDagPb, as_bytes("b"));
  Bytes data = to_bytes("a");
  Bytes msg = bitswap::encode(
      {{.cid = a, .priority = 5, .type = bitswap::WantType::kHave, .send_dont_have = true},
       {.cid = b, .cancel = true}},
      true, {{&a, data}}, {{b, bitswap::Presence::kDontHave}});
  bitswap::Message m = bitswap::decode(msg);
  ASSERT_EQ(m.wants.size(), 2u);
  EXPECT_EQ(m.wants[0].cid, a);
  EXPECT_EQ(m.wants[0].priority, 5);
  EXPECT_EQ(m.wants[0].type, bitswap::WantType::kHave);
  EXPECT_TRUE(m.wants[0].send_dont_have);
  EXPECT_TRUE(m.wants[1].cancel);
  EXPECT_TRUE(m.full_wantlist);
  ASSERT_EQ(m.blocks.size(), 1u);
  EXPECT_EQ(bitswap::block_cid(m.blocks[0]), a);
  ASSERT_EQ(m.presences.size(), 1u);
  EXPECT_EQ(m.presences[0].cid, b);
  EXPECT_EQ(m.presences[0].type, bitswap::Presence::kDontHave);
  // The prefix of a CIDv0: version 0, dag-pb, sha2-256, 32 bytes.
  EXPECT_EQ(to_hex(bitswap::cid_prefix(b)), "00701220");
}

TEST(BitswapMessage, Bitswap100BlocksAreCidV0) {
  Bytes node = {0x0a, 0x00};
  Bytes msg;
  pb::put_bytes(msg, 2, node);
  bitswap::Message m = bitswap::decode(msg);
  ASSERT_EQ(m.blocks.size(), 1u);
  EXPECT_EQ(bitswap::block_cid(m.blocks[0]), Cid::of(0, kCodecDagPb, node));
}

TEST(BitswapMessage, HostileInputIsRefused) {
  EXPECT_THROW(bitswap::decode(from_hex("0a03")), Error);          // truncated
  EXPECT_THROW(bitswap::decode(from_hex("0a040a020a00")), Error);  // entry with a bad CID
  std::vector<bitswap::Want> many;
  many.reserve(100);
  for (int i = 0; i < 100; ++i)
    many.push_back({.cid = Cid::of(1, kCodecRaw, as_bytes(std::to_string(i)))});
  Bytes msg = bitswap::encode(many, false, {}, {});
  EXPECT_NO_THROW(bitswap::decode(msg, 100));
  EXPECT_THROW(bitswap::decode(msg, 99), Error);
  bitswap::WireBlock odd{.version = 1, .codec = kCodecRaw, .hash_code = 0x13, .digest_size = 64};
  EXPECT_THROW(bitswap::block_cid(odd), Error);  // sha2-512: not accepted
}

// A peer that speaks bitswap but answers each message with what `respond` makes of it (from a
// thread of its own, as a real peer would); with a pace, the n-th answer goes out n paces after
// the start (a slow link that many wants share).
class HostilePeer {
 public:
  using Respond = std::function<std::optional<Bytes>(const bitswap::Message&)>;
  explicit HostilePeer(Respond respond, std::chrono::milliseconds pace = {})
      : respond_(std::move(respond)), pace_(pace), start_(Clock::now()) {
    host_.handle(std::string(bitswap::kProtocol120), [this](p2p::Stream& s) {
      return std::make_unique<Reader>(*this, s.connection().shared_from_this());
    });
    addr_ = host_.listen(p2p::Multiaddr::parse("/ip4/127.0.0.1/tcp/0"));
  }
  ~HostilePeer() {
    for (auto& t : threads_) t.join();
    host_.stop();
  }
  const p2p::Multiaddr& addr() const { return addr_; }

 private:
  struct Reader : p2p::StreamHandler {
    Reader(HostilePeer& p, std::shared_ptr<p2p::Connection> c) : peer(p), conn(std::move(c)) {}
    size_t on_data(p2p::Stream&, ByteView data) override {
      frames.feed(data);
      while (auto f = frames.next()) {
        auto reply = peer.respond_(bitswap::decode(*f));
        if (!reply) continue;
        auto c = conn;
        auto at = peer.start_ + peer.pace_ * ++peer.answers_;
        peer.threads_.emplace_back([c, at, r = std::move(*reply)] {
          std::this_thread::sleep_until(at);
          try {
            auto s = c->open_stream(bitswap::kProtocol120, Clock::now() + 5s);
            s->write(r, Clock::now() + 5s);
          } catch (const Error&) {
          }
        });
      }
      return 0;
    }
    HostilePeer& peer;
    std::shared_ptr<p2p::Connection> conn;
    p2p::FrameReader frames{8u << 20};
  };
  Respond respond_;
  std::chrono::milliseconds pace_;
  Clock::time_point start_;
  int answers_ = 0;  // on the host's reactor thread only
  p2p::Host host_{p2p::Ed25519Key::generate()};
  p2p::Multiaddr addr_;
  std::vector<std::thread> threads_;
};

class Bitswap : public ::testing::Test {
 protected:
  Bitswap()
      : server_host_(p2p::Ed25519Key::generate()),
        server_(server_host_, &fx_.store),
        client_host_(p2p::Ed25519Key::generate()),
        client_(client_host_, nullptr, {.block_timeout = 2s, .server_threads = 1}) {
    addr_ = server_host_.listen(p2p::Multiaddr::parse("/ip4/127.0.0.1/tcp/0"));
  }
  // The hosts' reactors deliver messages to the nodes: stopped first, as `serve` stops its host
  // before its node goes (ThreadSanitizer saw a node destroyed under a delivery).
  ~Bitswap() override {
    client_host_.stop();
    server_host_.stop();
  }

  // get() of every block of the fixture, each checked against its bytes.
  void get_every_block() {
    Bytes scratch;
    for (const Cid& c : fx_.blocks) {
      auto got = client_.get(addr_, c, scratch);
      ASSERT_TRUE(got) << c.str();
      Bytes want = fx_.block(c);
      EXPECT_TRUE(std::equal(got->begin(), got->end(), want.begin(), want.end()));
    }
  }
  // The server counts a block once its send returned, which can be after the client has it.
  void wait_until_server_sent_every_block() {
    for (int i = 0; i < 200 && server_.stats().blocks_sent < fx_.blocks.size(); ++i) {
      std::this_thread::sleep_for(10ms);
    }
  }

  testing::Fixture fx_{1};
  p2p::Host server_host_;
  BitswapNode server_;
  p2p::Host client_host_;
  BitswapNode client_;
  p2p::Multiaddr addr_;
};

TEST_F(Bitswap, FetchesEveryBlockVerified) {
  ASSERT_NO_FATAL_FAILURE(get_every_block());
  wait_until_server_sent_every_block();
  EXPECT_EQ(server_.stats().blocks_sent, fx_.blocks.size());
  EXPECT_EQ(client_.stats().blocks_received, fx_.blocks.size());
  // Every answered get() left the waiting list (a stale entry would point into a dead frame).
  EXPECT_EQ(client_.stats().waiting, 0u);
}

TEST_F(Bitswap, ParallelWantsFromManyThreads) {
  std::atomic<int> ok{0};
  std::vector<std::thread> ts;
  ts.reserve(8);
  for (int t = 0; t < 8; ++t) {
    ts.emplace_back([&, t] {
      Bytes scratch;
      for (size_t i = t; i < fx_.blocks.size(); i += 8) {
        if (client_.get(addr_, fx_.blocks[i], scratch)) ++ok;
      }
    });
  }
  for (auto& t : ts) t.join();
  EXPECT_EQ(ok, static_cast<int>(fx_.blocks.size()));
}

// want_ahead: the whole DAG wanted in one message, then fetched block by block as a walk would:
// every block right, none sent twice, nothing left waiting.
TEST_F(Bitswap, WantsAheadAreHandedToTheirGetOnce) {
  client_.want_ahead(addr_, fx_.blocks);
  ASSERT_NO_FATAL_FAILURE(get_every_block());
  wait_until_server_sent_every_block();
  std::this_thread::sleep_for(100ms);  // and none more after that
  EXPECT_EQ(server_.stats().blocks_sent, fx_.blocks.size());
  EXPECT_EQ(client_.stats().waiting, 0u);
  // A second round of the same wants ahead, then gets, works the same and drops no peer.
  client_.want_ahead(addr_, fx_.blocks);
  Bytes scratch;
  for (const Cid& c : fx_.blocks) ASSERT_TRUE(client_.get(addr_, c, scratch));
  EXPECT_EQ(client_.stats().peers_dropped, 0u);
}

// A peer that ignores a long wantlist (as a peer with a small wantlist bound may) and answers
// single wants: each get() asks for itself once the peer has been quiet for a moment.
TEST_F(Bitswap, AheadWantsAPeerIgnoresAreAskedForAgain) {
  HostilePeer choosy([&](const bitswap::Message& m) -> std::optional<Bytes> {
    if (m.wants.size() != 1) return std::nullopt;
    Bytes blk;
    Bytes data = fx_.block(m.wants[0].cid);
    pb::put_bytes(blk, 1, bitswap::cid_prefix(m.wants[0].cid));
    pb::put_bytes(blk, 2, data);
    Bytes msg;
    pb::put_bytes(msg, 3, blk);
    Bytes framed;
    p2p::put_frame(framed, msg);
    return framed;
  });
  std::vector<Cid> few(fx_.blocks.begin(), fx_.blocks.begin() + 3);
  client_.want_ahead(choosy.addr(), few);
  Bytes scratch;
  auto start = Clock::now();
  for (const Cid& c : few) {
    auto got = client_.get(choosy.addr(), c, scratch);
    ASSERT_TRUE(got) << c.str();
    EXPECT_EQ(Bytes(got->begin(), got->end()), fx_.block(c));
  }
  EXPECT_LT(Clock::now() - start, 2s);  // within the grace, well before block_timeout each
  EXPECT_EQ(client_.stats().waiting, 0u);
}

TEST_F(Bitswap, AheadWantForAMissingBlockEndsInDontHave) {
  Cid absent = Cid::of(1, kCodecRaw, as_bytes("nobody has this either"));
  client_.want_ahead(addr_, std::vector<Cid>{absent});
  Bytes scratch;
  auto start = Clock::now();
  EXPECT_FALSE(client_.get(addr_, absent, scratch));
  EXPECT_LT(Clock::now() - start, 1s);
  EXPECT_EQ(client_.stats().waiting, 0u);
}

TEST_F(Bitswap, MissingBlockIsDontHave) {
  Bytes scratch;
  auto start = Clock::now();
  EXPECT_FALSE(client_.get(addr_, Cid::of(1, kCodecRaw, as_bytes("nobody has this")), scratch));
  EXPECT_LT(Clock::now() - start, 1s);  // an answer, not a timeout
  EXPECT_EQ(client_.stats().waiting, 0u);
}

TEST_F(Bitswap, WrongBlocksMarkThePeerALiar) {
  HostilePeer liar([](const bitswap::Message& m) -> std::optional<Bytes> {
    if (m.wants.empty()) return std::nullopt;
    Bytes junk = to_bytes("not the block you asked for");
    Cid wanted = m.wants[0].cid;
    Bytes msg;
    Bytes blk;
    pb::put_bytes(blk, 1, bitswap::cid_prefix(wanted));
    pb::put_bytes(blk, 2, junk);
    pb::put_bytes(msg, 3, blk);
    Bytes framed;
    p2p::put_frame(framed, msg);
    return framed;
  });
  Bytes scratch;
  try {
    client_.get(liar.addr(), fx_.blocks[0], scratch);
    FAIL() << "a wrong block was accepted";
  } catch (const SourceError& e) {
    EXPECT_NE(std::string(e.what()).find("do not hash"), std::string::npos) << e.what();
  }
  EXPECT_EQ(client_.stats().peers_dropped, 1u);
  EXPECT_EQ(client_.stats().waiting, 0u);
}

TEST_F(Bitswap, OversizedMessageDropsThePeer) {
  HostilePeer big([](const bitswap::Message& m) -> std::optional<Bytes> {
    if (m.wants.empty()) return std::nullopt;
    Bytes framed;
    p2p::put_frame(framed, Bytes((4u << 20) + 100, 0));  // over bitswap's 4 MiB
    return framed;
  });
  Bytes scratch;
  EXPECT_THROW(client_.get(big.addr(), fx_.blocks[0], scratch), SourceError);
  EXPECT_EQ(client_.stats().peers_dropped, 1u);
}

TEST_F(Bitswap, SilentPeerTimesOut) {
  HostilePeer silent([](const bitswap::Message&) { return std::nullopt; });
  Bytes scratch;
  auto start = Clock::now();
  EXPECT_THROW(client_.get(silent.addr(), fx_.blocks[0], scratch), SourceError);
  EXPECT_GE(Clock::now() - start, 2s);
  EXPECT_LT(Clock::now() - start, 5s);
}

// A peer that keeps sending, slowly: the last of six wants is answered 4.2 s after it was sent,
// past the client's 2 s block_timeout, but the peer was never silent for 2 s, so none fails.
TEST_F(Bitswap, SlowPeerThatKeepsSendingIsWaitedFor) {
  ASSERT_GE(fx_.blocks.size(), 6u);
  HostilePeer slow(
      [this](const bitswap::Message& m) -> std::optional<Bytes> {
        if (m.wants.empty() || m.wants[0].cancel) return std::nullopt;
        Bytes blk;
        pb::put_bytes(blk, 1, bitswap::cid_prefix(m.wants[0].cid));
        pb::put_bytes(blk, 2, fx_.block(m.wants[0].cid));
        Bytes msg;
        pb::put_bytes(msg, 3, blk);
        Bytes framed;
        p2p::put_frame(framed, msg);
        return framed;
      },
      700ms);
  std::atomic<int> ok{0};
  std::vector<std::thread> ts;
  ts.reserve(6);
  auto start = Clock::now();
  for (size_t i = 0; i < 6; ++i) {
    ts.emplace_back([&, i] {
      Bytes scratch;
      try {
        if (client_.get(slow.addr(), fx_.blocks[i], scratch)) ++ok;
      } catch (const SourceError& e) {
        ADD_FAILURE() << e.what();
      }
    });
  }
  for (auto& t : ts) t.join();
  EXPECT_EQ(ok, 6);
  EXPECT_GE(Clock::now() - start, 3s);
  EXPECT_EQ(client_.stats().waiting, 0u);
}

// A peer that wants far more than its link takes and then stops reading (its reactor is stuck):
// the server's one worker leaves it waiting while its link still holds what was sent, and goes on
// answering another peer. Before, the worker blocked writing to the stuck peer, and every other
// peer waited for it.
TEST(BitswapServer, APeerThatStopsReadingDoesNotHoldUpTheOthers) {
  MemoryStore store;
  std::vector<Cid> cids;
  // 48 MiB: far more than the two hosts' socket buffers and send queue hold.
  for (unsigned i = 0; i < 48; ++i) {
    std::string data = testing::random_bytes(1u << 20, 100 + i);
    cids.push_back(Cid::of(1, kCodecRaw, as_bytes(data)));
    store.put(cids.back(), as_bytes(data));
  }
  p2p::Host server_host(p2p::Ed25519Key::generate());
  BitswapNode server(server_host, &store, {.server_threads = 1});
  auto addr = server_host.listen(p2p::Multiaddr::parse("/ip4/127.0.0.1/tcp/0"));

  // The stuck peer: its handler holds its reactor from the first bytes of the first answer.
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  struct Stuck : p2p::StreamHandler {
    explicit Stuck(std::shared_future<void> r) : released(std::move(r)) {}
    size_t on_data(p2p::Stream&, ByteView) override {
      released.wait_for(30s);
      return 0;
    }
    std::shared_future<void> released;
  };
  p2p::Host stuck_host(p2p::Ed25519Key::generate());
  stuck_host.handle(std::string(bitswap::kProtocol120),
                    [&](p2p::Stream&) { return std::make_unique<Stuck>(released); });
  {
    auto conn = stuck_host.connect(addr, Clock::now() + 5s);
    std::vector<bitswap::Want> wants;
    wants.reserve(cids.size());
    for (const Cid& c : cids) wants.push_back({.cid = c});
    auto s = conn->open_stream(bitswap::kProtocol120, Clock::now() + 5s);
    s->write(bitswap::encode(wants, false, {}, {}, bitswap::Framing::kLengthPrefixed),
             Clock::now() + 5s);
  }
  for (int i = 0; i < 500 && server.stats().blocks_sent == 0; ++i)
    std::this_thread::sleep_for(10ms);
  ASSERT_GT(server.stats().blocks_sent, 0u) << "the server never answered the stuck peer";

  p2p::Host client_host(p2p::Ed25519Key::generate());
  BitswapNode client(client_host, nullptr, {.block_timeout = 5s, .server_threads = 1});
  Bytes scratch;
  for (size_t i : {size_t{0}, cids.size() - 1}) {
    std::optional<ByteView> got;
    EXPECT_NO_THROW(got = client.get(addr, cids[i], scratch)) << "block " << i;
    EXPECT_TRUE(got && cids[i].matches(*got)) << "block " << i;
  }
  // The stuck peer was sent a few messages' worth (what its link held), not its 48 blocks.
  EXPECT_LE(server.stats().blocks_sent, 2 + 3 * (BitswapOptions{}.max_response >> 20));
  release.set_value();
  client_host.stop();
  stuck_host.stop();
  server_host.stop();
}

size_t rss_kib() {
  std::ifstream f("/proc/self/statm");
  size_t pages = 0, resident = 0;
  f >> pages >> resident;
  return resident * static_cast<size_t>(::sysconf(_SC_PAGESIZE)) / 1024;
}

TEST_F(Bitswap, MillionEntryWantlistDropsThePeerWithBoundedMemory) {
  size_t before = rss_kib();
  auto conn = client_host_.connect(addr_, Clock::now() + 5s);
  auto s = conn->open_stream(bitswap::kProtocol120, Clock::now() + 5s);
  size_t sent = 0;
  try {
    for (int m = 0; m < 100 && sent < 1000000; ++m) {
      std::vector<bitswap::Want> wants;
      wants.reserve(10000);
      for (int i = 0; i < 10000; ++i, ++sent) {
        uint64_t n = sent;
        wants.push_back({.cid = Cid::of(1, kCodecRaw, ByteView(reinterpret_cast<uint8_t*>(&n), 8)),
                         .type = bitswap::WantType::kHave});
      }
      Bytes framed;
      p2p::put_frame(framed, bitswap::encode(wants, false, {}, {}));
      s->write(framed, Clock::now() + 5s);
    }
  } catch (const Error&) {
    // The server dropped us mid-way: expected.
  }
  for (int i = 0; i < 50 && !conn->closed(); ++i) std::this_thread::sleep_for(100ms);
  EXPECT_TRUE(conn->closed());
  EXPECT_LT(sent, 1000000u);
  EXPECT_EQ(server_.stats().peers_dropped, 1u);
  // Far below what a million stored entries would take (~100 MB).
  EXPECT_LT(rss_kib(), before + 64 * 1024);
  // The server still serves others.
  p2p::Host other(p2p::Ed25519Key::generate());
  BitswapNode other_client(other, nullptr, {.block_timeout = 2s, .server_threads = 1});
  Bytes scratch;
  EXPECT_TRUE(other_client.get(addr_, fx_.blocks[0], scratch));
}

}  // namespace
}  // namespace cidrun::exchange
