// File sources (car:, flatfs:), the source configuration, and FetchingStore making readers
// network-aware.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <thread>

#include "exchange/car_stream.h"
#include "exchange/fetch_progress.h"
#include "exchange/fetcher.h"
#include "exchange/fetching_store.h"
#include "exchange/fixtures.h"
#include "exchange/sources.h"
#include "ipld/dagpb.h"
#include "net/fake_http.h"
#include "store/flatfs.h"
#include "store/repo.h"
#include "util/fd.h"

namespace cidrun::exchange {
namespace {

using testing::Fixture;

void le64(Bytes& out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<uint8_t>(v >> (8 * i)));
}

TEST(exchangeCarStream, AcceptsAnyChunkingAndRejectsTruncation) {
  Fixture fx(1, 300000, 2);
  std::string car = fx.car(fx.root);
  std::vector<Cid> got;
  exchange::CarStreamParser p([&](const Cid& c, ByteView) { got.push_back(c); });
  for (char ch : car) p.feed(as_bytes(std::string_view(&ch, 1)));
  p.finish();
  EXPECT_EQ(got, fx.blocks);
  exchange::CarStreamParser t([](const Cid&, ByteView) {});
  t.feed(as_bytes(std::string_view(car).substr(0, car.size() - 7)));
  EXPECT_THROW(t.finish(), Error);
}

TEST(exchangeCarStream, ASectionFedByteByByteIsBufferedOnce) {
  // Found when the unit tests first ran under ASan: the test above took 200 s there, as the
  // buffer was reallocated (and the section copied) once per byte.
  Fixture fx(1, 300000, 2);
  std::string car = fx.car(fx.root);
  size_t blocks = 0;
  exchange::CarStreamParser p([&](const Cid&, ByteView) { ++blocks; });
  size_t grew = 0;
  size_t capacity = p.buffer_capacity();
  for (char ch : car) {
    p.feed(as_bytes(std::string_view(&ch, 1)));
    if (p.buffer_capacity() != capacity) ++grew;
    capacity = p.buffer_capacity();
  }
  p.finish();
  EXPECT_EQ(blocks, fx.blocks.size());
  // Once when a section's length is known, plus a few while its length varint arrives.
  EXPECT_LE(grew, 4 * (fx.blocks.size() + 1)) << car.size() << " bytes fed";
}

TEST(exchangeFileSources, CarV1AndV2FilesServeVerifiedBlocks) {
  Fixture fx;
  std::string v1 = fx.dir.path + "/dag.car";
  std::string car = fx.car(fx.root);
  testing::write_text(v1, car);
  // CARv2: pragma, 40-byte header (characteristics, data offset, data size, no index), payload.
  Bytes v2{0x0a, 0xa1, 0x67, 0x76, 0x65, 0x72, 0x73, 0x69, 0x6f, 0x6e, 0x02};
  v2.resize(v2.size() + 16, 0);
  le64(v2, 51);
  le64(v2, car.size());
  le64(v2, 0);
  v2.insert(v2.end(), car.begin(), car.end());
  std::string v2path = fx.dir.path + "/dag2.car";
  write_file_atomic(v2path, v2, false);
  for (const auto& path : {v1, v2path}) {
    MemoryStore dest;
    auto src = SourceSet::open({"car:" + path});
    Fetcher f(dest, *src);
    EXPECT_EQ(f.fetch_dag(fx.root).blocks, fx.blocks.size()) << path;
  }
}

TEST(exchangeFileSources, FlatfsSourceRejectsACorruptedBlockFile) {
  Fixture fx;
  testing::TempDir d;
  FlatfsStore flat(d.path + "/blocks", true);
  for (const auto& c : fx.blocks) flat.put(c, fx.block(c));
  // Corrupt one block file on disk.
  std::string victim = flat.path_of(fx.blocks[2].multihash());
  Bytes b = read_file(victim);
  b[b.size() / 2] ^= 0xff;
  write_file_atomic(victim, b, false);
  MemoryStore dest;
  auto src = SourceSet::open({"flatfs:" + d.path});  // a repo dir holding blocks/ is accepted
  Fetcher f(dest, *src);
  try {
    f.fetch_dag(fx.root);
    FAIL() << "the corrupted block must not be accepted";
  } catch (const NotFound& e) {
    EXPECT_NE(std::string(e.what()).find(fx.blocks[2].str()), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("do not hash"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(dest.has(fx.blocks[2]));
}

TEST(exchangeFileSources, UnknownSchemesAndKuboMultiaddrs) {
  EXPECT_THROW(open_source("ftp://x"), Error);
  EXPECT_EQ(multiaddr_to_http("/ip4/127.0.0.1/tcp/5001"), "http://127.0.0.1:5001");
  EXPECT_EQ(multiaddr_to_http("/ip6/::1/tcp/5001"), "http://[::1]:5001");
  EXPECT_EQ(open_source("/ip4/127.0.0.1/tcp/5001")->url(), "/ip4/127.0.0.1/tcp/5001");
}

TEST(exchangeSourceConfig, FlagsThenEnvironmentThenConfigFileThenLocalKubo) {
  testing::TempDir d;
  auto repo = Repo::open(d.path + "/repo");
  testing::write_text(repo->path() + "/config.json",
                      R"({"sources": ["http://127.0.0.1:9", "car:/x.car"], "other": 1})");
  std::string ipfs = d.path + "/ipfs";
  std::filesystem::create_directories(ipfs);
  testing::write_text(ipfs + "/api", "/ip4/127.0.0.1/tcp/5001\n");
  ::setenv("IPFS_PATH", ipfs.c_str(), 1);
  ::setenv("CIDRUN_SOURCES", "flatfs:/a, http://127.0.0.1:8", 1);
  ::unsetenv("CIDRUN_KUBO_AUTO");
  auto urls = configured_sources(*repo, {"http://127.0.0.1:7"});
  EXPECT_EQ(urls, (std::vector<std::string>{"http://127.0.0.1:7", "flatfs:/a", "http://127.0.0.1:8",
                                            "http://127.0.0.1:9", "car:/x.car",
                                            "kubo+http://127.0.0.1:5001"}));
  ::setenv("CIDRUN_KUBO_AUTO", "0", 1);
  EXPECT_EQ(configured_sources(*repo, {}).size(), 4u);
  testing::write_text(repo->path() + "/config.json", R"({"sources": "not a list"})");
  EXPECT_THROW(configured_sources(*repo, {}), Error);
  ::unsetenv("CIDRUN_SOURCES");
  ::unsetenv("IPFS_PATH");
  ::unsetenv("CIDRUN_KUBO_AUTO");
}

TEST(exchangeFetchingStore, ReadersFetchMissingBlocksByThemselves) {
  Fixture fx;
  testing::FakeHttp gw([&](const testing::HttpHead& h, int fd) {
    auto b = fx.store.get(testing::cid_in(h.target));
    if (!b) return testing::send_response(fd, 404, "text/plain", "");
    testing::send_response(fd, 200, "application/vnd.ipld.raw", as_string(*b));
  });
  MemoryStore local;
  FetchingStore store(local, SourceSet::open({gw.url()}));
  unixfs::Dag dag(store);
  Cid big = dag.resolve(fx.root, "big.bin");
  unixfs::FileReader reader(dag, big);
  std::string content;
  reader.stream([&](ByteView piece) { content += as_string(piece); });
  EXPECT_EQ(content, testing::random_bytes(3 * 1024 * 1024 + 123, 1));
  EXPECT_TRUE(local.has(big));  // fetched blocks are kept
  // A block nobody has: NotFound naming it.
  Cid absent = Cid::of(1, kCodecRaw, as_bytes("absent"));
  try {
    dag.block(absent);
    FAIL();
  } catch (const NotFound& e) {
    EXPECT_NE(std::string(e.what()).find(absent.str()), std::string::npos);
  }
}

TEST(exchangeFetchingStore, ReadsAheadChildrenOfFetchedNodesInParallel) {
  Fixture fx;
  std::atomic<int> active{0}, most{0};
  testing::FakeHttp gw([&](const testing::HttpHead& h, int fd) {
    int now = ++active;
    for (int m = most; now > m && !most.compare_exchange_weak(m, now);) {
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(30));  // a link with latency
    auto b = fx.store.get(testing::cid_in(h.target));
    --active;
    if (!b) return testing::send_response(fd, 404, "text/plain", "");
    testing::send_response(fd, 200, "application/vnd.ipld.raw", as_string(*b));
  });
  MemoryStore local;
  FetchingStore store(local, SourceSet::open({gw.url()}));
  unixfs::Dag dag(store);
  unixfs::FileReader reader(dag, dag.resolve(fx.root, "big.bin"));
  uint64_t n = 0;
  reader.stream([&](ByteView piece) { n += piece.size(); });
  EXPECT_EQ(n, reader.size());
  EXPECT_GT(most.load(), 1);  // leaves were requested while the reader was still on earlier ones
}

// open_block_file (the `get` fast path) with a source configured: a present leaf is handed out
// without asking anyone; a missing node is fetched and its children are read ahead.
TEST(exchangeFetchingStore, OpenBlockFileReadsAheadForNodesAndNotForLeaves) {
  Fixture fx;  // CIDv0: big.bin is a dag-pb root over dag-pb leaves
  std::atomic<int> asked{0};
  testing::FakeHttp gw([&](const testing::HttpHead& h, int fd) {
    ++asked;
    auto b = fx.store.get(testing::cid_in(h.target));
    if (!b) return testing::send_response(fd, 404, "text/plain", "");
    testing::send_response(fd, 200, "application/vnd.ipld.raw", as_string(*b));
  });
  FlatfsStore local(fx.dir.path + "/local", true);
  unixfs::Dag fdag(fx.store);
  Cid big = fdag.resolve(fx.root, "big.bin");
  dagpb::Node node = dagpb::decode(*fx.store.get(big));
  ASSERT_GT(node.links.size(), 2u);
  const Cid& leaf = node.links[0].hash;
  const Cid& last = node.links.back().hash;
  local.put(leaf, *fx.store.get(leaf));
  FetchingStore store(local, SourceSet::open({gw.url()}));

  auto f = store.open_block_file(leaf);
  ASSERT_TRUE(f);
  EXPECT_EQ(f->size, fx.store.get(leaf)->size());
  EXPECT_EQ(asked.load(), 0);

  ASSERT_TRUE(store.open_block_file(big));
  for (int i = 0; i < 500 && !local.has(last); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_TRUE(local.has(last));  // fetched ahead, before anyone asked for it
  EXPECT_GT(asked.load(), 0);
}

TEST(exchangeFetchingStore, WithoutSourcesItIsTheLocalStore) {
  Fixture fx;
  FetchingStore store(fx.store,
                      std::make_shared<SourceSet>(std::vector<std::unique_ptr<BlockSource>>{}));
  EXPECT_TRUE(store.get(fx.root));
  EXPECT_FALSE(store.get(Cid::of(1, kCodecRaw, as_bytes("absent"))));
}

TEST(exchangeFetchProgress, TerminalBarShowsBlocksBytesRateAndEta) {
  ::testing::internal::CaptureStderr();
  {
    FetchProgress p("pulling", FetchProgress::Mode::kTerminal);
    p.set_total(10'000'000);
    p.fetched(1'000'000);
    std::this_thread::sleep_for(std::chrono::milliseconds(250));  // past the redraw interval
    p.present(1'000'000);
    p.finish();
  }
  std::string err = ::testing::internal::GetCapturedStderr();
  // A redraw while running (with the ETA), then the final line.
  EXPECT_NE(err.find("\rpulling 2 blocks, "), std::string::npos) << err;
  EXPECT_NE(err.find("(20%)"), std::string::npos) << err;
  EXPECT_NE(err.find("/s, ETA "), std::string::npos) << err;
  EXPECT_EQ(err.back(), '\n');
}

TEST(exchangeFetchProgress, JsonLinesWhileRunningAndAtTheEnd) {
  ::testing::internal::CaptureStdout();
  {
    FetchProgress p("pulling", FetchProgress::Mode::kJson);
    p.set_total(3000);
    p.fetched(1000);
    std::this_thread::sleep_for(std::chrono::milliseconds(1100));
    p.fetched(1000);
    p.finish();
    p.finish();  // once only
  }
  std::string out = ::testing::internal::GetCapturedStdout();
  EXPECT_NE(out.find("{\"event\":\"progress\",\"blocks\":2,\"fetched_blocks\":2,\"bytes\":2000,"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("\"total_bytes\":3000"), std::string::npos) << out;
  size_t done = out.find("{\"event\":\"done\"");
  ASSERT_NE(done, std::string::npos) << out;
  EXPECT_EQ(out.find("\"done\"", done + 10), std::string::npos) << out;
}

// Coded answers are asked for over wide-area links only: not from this machine nor a local
// network, where bytes move faster than zstd codes them.
TEST(exchangeHttpSources, CodingByDefaultOnlyBeyondTheLocalNetwork) {
  for (const char* local :
       {"http://127.0.0.1:8080", "http://localhost:5001", "http://10.1.2.3", "http://172.16.0.9:80",
        "http://172.31.255.1", "http://192.168.1.10:8080/x", "http://169.254.1.1",
        "http://[::1]:8080", "http://[fd00::5]:80", "http://[FE80::1]",
        "https://user:pw@10.0.0.1"}) {
    EXPECT_FALSE(codes_by_default(local)) << local;
  }
  for (const char* remote :
       {"https://ipfs.example.org", "http://172.32.0.1", "http://8.8.8.8:80", "http://192.169.0.1",
        "http://[2001:db8::1]:8080", "http://127.example.org", "https://10.example.net"}) {
    EXPECT_TRUE(codes_by_default(remote)) << remote;
  }
}

}  // namespace
}  // namespace cidrun::exchange
