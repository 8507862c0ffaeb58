// `serve` end to end in-process: a Server over a MemoryStore on 127.0.0.1:0, asked by the same
// HTTP client the sources use, and read back by the verifying fetcher.
#include "gateway/server.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <set>
#include <thread>

#include "exchange/car_stream.h"
#include "exchange/fetcher.h"
#include "exchange/fixtures.h"
#include "exchange/source_set.h"
#include "ipld/dagpb.h"
#include "ipld/unixfs_pb.h"
#include "net/http_client.h"
#include "net/raw_http.h"
#include "store/flatfs.h"

namespace cidrun::gateway {
namespace {

using testing::Fixture;

class RunningServer {
 public:
  explicit RunningServer(BlockStore& store) : server_(store, {.listen = "127.0.0.1:0"}, true) {
    port_ = server_.bind();
    thread_ = std::thread([this] { server_.run(); });
  }
  ~RunningServer() {
    server_.stop();
    thread_.join();
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  int port() const { return port_; }

 private:
  Server server_;
  int port_ = 0;
  std::thread thread_;
};

http::Response get(const std::string& url, std::vector<std::string> headers = {},
                   const std::string& method = "GET") {
  http::Request r;
  r.url = url;
  r.method = method;
  r.headers = std::move(headers);
  return http::Client::shared().perform(r);
}

// The CAR's blocks (each verified) in order.
std::vector<Cid> car_blocks(const http::Response& r) {
  std::vector<Cid> out;
  exchange::CarStreamParser p([&](const Cid& c, ByteView data) {
    EXPECT_TRUE(c.matches(data)) << c.str();
    out.push_back(c);
  });
  p.feed(r.body);
  p.finish();
  return out;
}

TEST(gatewayServer, RawBlockWithSpecHeaders) {
  Fixture fx;
  RunningServer s(fx.store);
  auto r = get(s.url() + "/ipfs/" + fx.root.str(), {"Accept: application/vnd.ipld.raw"});
  ASSERT_EQ(r.status, 200) << r.describe();
  EXPECT_EQ(r.content_type, "application/vnd.ipld.raw");
  EXPECT_EQ(r.body, fx.block(fx.root));
}

TEST(gatewayServer, StatusCodesForMissingAndUnacceptable) {
  Fixture fx;
  RunningServer s(fx.store);
  Cid absent = Cid::of(1, kCodecRaw, as_bytes("absent"));
  EXPECT_EQ(get(s.url() + "/ipfs/" + absent.str() + "?format=raw").status, 404);
  EXPECT_EQ(
      get(s.url() + "/ipfs/" + absent.str() + "?format=raw", {"Cache-Control: only-if-cached"})
          .status,
      412);
  EXPECT_EQ(get(s.url() + "/ipfs/" + fx.root.str()).status, 400);
  EXPECT_EQ(get(s.url() + "/ipfs/" + fx.root.str(), {"Accept: text/html"}).status, 406);
  EXPECT_EQ(get(s.url() + "/ipfs/" + fx.root.str() + "/nope?format=car").status, 404);
  EXPECT_EQ(get(s.url() + "/").status, 404);
}

TEST(gatewayServer, ProbeCidAnswersEmpty) {
  MemoryStore empty;
  RunningServer s(empty);
  auto raw = get(s.url() + "/ipfs/bafkqaaa?format=raw");
  EXPECT_EQ(raw.status, 200);
  EXPECT_TRUE(raw.body.empty());
  auto head = get(s.url() + "/ipfs/bafkqaaa", {"Accept: application/vnd.ipld.raw"}, "HEAD");
  EXPECT_EQ(head.status, 200);
  auto car = get(s.url() + "/ipfs/bafkqaaa?format=car");
  EXPECT_EQ(car.status, 200);
  EXPECT_TRUE(car_blocks(car).empty());  // identity blocks are never sent
}

TEST(gatewayServer, CarAllIsTheWholeDagInDfsOrder) {
  Fixture fx;
  RunningServer s(fx.store);
  auto r = get(s.url() + "/ipfs/" + fx.root.str(), {"Accept: application/vnd.ipld.car"});
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.content_type, "application/vnd.ipld.car; version=1; order=dfs; dups=n");
  EXPECT_EQ(car_blocks(r), fx.blocks);
}

TEST(gatewayServer, CarPathScopes) {
  Fixture fx;
  RunningServer s(fx.store);
  unixfs::Dag dag(fx.store);
  Cid big = *dag.lookup(fx.root, "big.bin");
  Cid sub = *dag.lookup(fx.root, "sub");
  // block: the path's blocks, then the target block only.
  auto block =
      car_blocks(get(s.url() + "/ipfs/" + fx.root.str() + "/big.bin?format=car&dag-scope=block"));
  EXPECT_EQ(block, (std::vector<Cid>{fx.root, big}));
  // entity of a file: every block of the file.
  auto file =
      car_blocks(get(s.url() + "/ipfs/" + fx.root.str() + "/big.bin?format=car&dag-scope=entity"));
  size_t file_blocks = 0;
  unixfs::walk_dag(fx.store, big, [&](const Cid&, ByteView) { return ++file_blocks, true; });
  EXPECT_EQ(file.size(), 1 + file_blocks);
  // entity of a directory: its node, not its children.
  auto dir =
      car_blocks(get(s.url() + "/ipfs/" + fx.root.str() + "/sub?format=car&dag-scope=entity"));
  EXPECT_EQ(dir, (std::vector<Cid>{fx.root, sub}));
  // entity-bytes: the last 100 bytes need the root of the file plus its last leaf only (123 bytes).
  auto tail = car_blocks(
      get(s.url() + "/ipfs/" + fx.root.str() + "/big.bin?format=car&entity-bytes=-100:*"));
  EXPECT_EQ(tail.size(), 3u);
  EXPECT_EQ(tail[1], big);
}

// Stores a dag-pb node with `data` and two links to `child` (a "diamond" level).
Cid put_diamond_level(BlockStore& store, const Cid& child, const unixfs_pb::Data& data,
                      std::optional<std::string> name_a, std::optional<std::string> name_b) {
  dagpb::Node n;
  n.links = {{child, std::move(name_a), 1}, {child, std::move(name_b), 1}};
  n.data = unixfs_pb::encode(data);
  Bytes b = dagpb::encode(n);
  Cid c = Cid::of(1, kCodecDagPb, b);
  store.put(c, b);
  return c;
}

// A file of 2^levels bytes in levels+1 blocks: every node links twice to the one below, so the
// DAG has 2^levels paths to its one leaf.
Cid put_diamond_file(BlockStore& store, int levels) {
  Cid node = Cid::of(1, kCodecRaw, as_bytes("x"));
  store.put(node, as_bytes("x"));
  uint64_t size = 1;
  for (int i = 0; i < levels; ++i) {
    unixfs_pb::Data d;
    d.type = unixfs_pb::Type::kFile;
    d.filesize = 2 * size;
    d.blocksizes = {size, size};
    node = put_diamond_level(store, node, d, "", "");
    size *= 2;
  }
  return node;
}

// A HAMT whose every shard links twice (slots 00 and 01) to the same sub-shard.
Cid put_diamond_hamt(BlockStore& store, int levels) {
  unixfs_pb::Data leaf;
  leaf.type = unixfs_pb::Type::kDirectory;
  Bytes empty_dir = dagpb::encode({.links = {}, .data = unixfs_pb::encode(leaf)});
  Cid entry = Cid::of(1, kCodecDagPb, empty_dir);
  store.put(entry, empty_dir);
  unixfs_pb::Data shard;
  shard.type = unixfs_pb::Type::kHamtShard;
  shard.hash_type = unixfs_pb::kHashMurmur3;
  shard.fanout = 256;
  shard.data = Bytes{0x03};  // bitfield: slots 0 and 1
  Cid node = put_diamond_level(store, entry, shard, "00a", "01b");
  for (int i = 1; i < levels; ++i) node = put_diamond_level(store, node, shard, "00", "01");
  return node;
}

// Issue 15: a diamond DAG once made the worker walk every path (2^40), write nothing and so never
// notice its client leave; two such requests stopped a two-thread server. Each block is now
// sent once and walked once.
TEST(gatewayServer, DiamondDagsCostTheirBlocksNotTheirPaths) {
  MemoryStore store;
  Cid file = put_diamond_file(store, 40);
  Cid hamt = put_diamond_hamt(store, 40);
  RunningServer s(store);
  auto blocks = [&](const Cid& root, const std::string& query) {
    http::Request q;
    q.url = s.url() + "/ipfs/" + root.str() + "?format=car" + query;
    q.total_timeout_ms = 20'000;  // before the fix: no answer at all
    auto r = http::Client::shared().perform(q);
    EXPECT_EQ(r.status, 200) << query << ": " << r.describe();
    return r.ok() ? car_blocks(r) : std::vector<Cid>{};
  };
  EXPECT_EQ(blocks(file, "").size(), 41u);
  EXPECT_EQ(blocks(file, "&entity-bytes=0:*").size(), 41u);
  EXPECT_EQ(blocks(file, "&entity-bytes=1:-2").size(), 41u);
  EXPECT_EQ(blocks(file, "&entity-bytes=-3:*").size(), 41u);
  EXPECT_EQ(blocks(file, "&entity-bytes=0:0").size(), 41u);
  // The shards of the entity, not the entry below them.
  EXPECT_EQ(blocks(hamt, "&dag-scope=entity").size(), 40u);
}

// A file range selects the same blocks whether a node is reached whole or by its edges: a
// partial walk that sent a node (dups=n) must not stop a later whole walk from sending its
// children.
TEST(gatewayServer, EntityBytesSendEveryBlockOfTheRangeOnce) {
  MemoryStore store;
  Cid file = put_diamond_file(store, 3);  // 8 bytes; N3 -> N2 -> N1 -> leaf
  RunningServer s(store);
  for (const char* range : {"0:*", "1:*", "0:6", "3:4", "7:7", "-1:*", "2:-2"}) {
    auto r = get(s.url() + "/ipfs/" + file.str() + "?format=car&entity-bytes=" + range);
    ASSERT_EQ(r.status, 200) << range;
    auto got = car_blocks(r);
    EXPECT_EQ(got.size(), 4u) << range;
    EXPECT_EQ(std::set<Cid>(got.begin(), got.end()).size(), got.size()) << range;
  }
}

TEST(gatewayServer, PathsResolveThroughHamtShards) {
  testing::TempDir d;
  std::string t = d.path + "/dir";
  std::filesystem::create_directories(t);
  for (int i = 0; i < 300; ++i)
    testing::write_text(t + "/file-" + std::to_string(i), std::to_string(i));
  MemoryStore store;
  unixfs::ImportOptions o;
  o.recursive = true;
  o.dir.threshold = 1000;  // force sharding
  unixfs::Importer imp(store, o, nullptr);
  Cid root = imp.add_path(t, "dir").cid;
  unixfs::Dag dag(store);
  ASSERT_TRUE(dag.stat(root).hamt);
  RunningServer s(store);
  auto r = get(s.url() + "/ipfs/" + root.str() + "/file-123?format=car");
  ASSERT_EQ(r.status, 200) << r.describe();
  auto blocks = car_blocks(r);
  ASSERT_GE(blocks.size(), 2u);
  EXPECT_EQ(blocks.front(), root);
  EXPECT_EQ(blocks.back(), *dag.lookup(root, "file-123"));
  // The directory entity is every shard node and nothing else.
  auto entity = car_blocks(get(s.url() + "/ipfs/" + root.str() + "?format=car&dag-scope=entity"));
  for (const auto& c : entity) {
    EXPECT_EQ(dag.stat(c).kind, unixfs::NodeKind::kDirectory) << c.str();
  }
}

TEST(gatewayServer, FetcherPullsFromServeBothWays) {
  Fixture fx(1);
  RunningServer s(fx.store);
  for (bool use_car : {true, false}) {
    MemoryStore dest;
    auto sources = exchange::SourceSet::open({s.url()});
    exchange::Fetcher f(dest, *sources, {.use_car = use_car});
    auto r = f.fetch_dag(fx.root);
    EXPECT_EQ(r.blocks, fx.blocks.size());
    for (const auto& c : fx.blocks) EXPECT_TRUE(dest.has(c));
  }
}

TEST(gatewayServer, ManyConcurrentClients) {
  Fixture fx;
  RunningServer s(fx.store);
  std::vector<std::future<http::Response>> inflight;
  for (int i = 0; i < 100; ++i) {
    http::Request r;
    r.url = s.url() + "/ipfs/" + fx.blocks[static_cast<size_t>(i) % fx.blocks.size()].str() +
            "?format=raw";
    inflight.push_back(http::Client::shared().start(std::move(r)));
  }
  for (auto& f : inflight) EXPECT_EQ(f.get().status, 200);
}

TEST(gatewayServer, MissingChildAbortsTheStream) {
  Fixture fx;
  MemoryStore partial;
  for (const auto& c : fx.blocks) {
    if (c != fx.blocks.back()) partial.put(c, fx.block(c));
  }
  RunningServer s(partial);
  auto r = get(s.url() + "/ipfs/" + fx.root.str() + "?format=car");
  // Either a transport error (aborted chunked stream) or a CAR that does not parse completely.
  EXPECT_FALSE(r.ok() && [&] {
    try {
      return car_blocks(r).size() == fx.blocks.size();
    } catch (const Error&) {
      return false;
    }
  }());
}

// ---- Spec details, read on the wire --------------------------------------------------------

testing::Reply raw_request(int port, const std::string& target, const std::string& headers = "",
                           const std::string& method = "GET") {
  auto fd = testing::connect_to(port);
  testing::send_text(fd.get(), method + " " + target + " HTTP/1.1\r\nHost: t\r\n" + headers +
                                   "Connection: close\r\n\r\n");
  testing::Reader rd(fd.get());
  auto r = rd.next(method == "HEAD");
  if (!r) throw Error("no response to " + target);
  return *r;
}

TEST(gatewaySpec, RawBlockHeaders) {
  Fixture fx;
  RunningServer s(fx.store);
  std::string cid = fx.root.str();
  auto r = raw_request(s.port(), "/ipfs/" + cid, "Accept: application/vnd.ipld.raw\r\n");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.headers["content-type"], "application/vnd.ipld.raw");
  EXPECT_EQ(r.headers["etag"], "\"" + cid + ".raw\"");
  EXPECT_EQ(r.headers["cache-control"], "public, max-age=29030400, immutable");
  EXPECT_EQ(r.headers["content-disposition"], "attachment; filename=\"" + cid + ".bin\"");
  EXPECT_EQ(r.headers["x-content-type-options"], "nosniff");
  EXPECT_EQ(r.headers["x-ipfs-roots"], cid);
  EXPECT_EQ(r.headers["vary"], "Accept, Accept-Encoding");
  EXPECT_EQ(r.headers["content-location"], "/ipfs/" + cid + "?format=raw");
  EXPECT_EQ(r.body, as_string(fx.block(fx.root)));
  // ?format= chose the format: nothing to point at.
  auto q = raw_request(s.port(), "/ipfs/" + cid + "?format=raw");
  EXPECT_EQ(q.headers.count("content-location"), 0u);
  // A custom filename, with a non-ASCII name spelled twice (RFC 8187).
  auto f = raw_request(s.port(), "/ipfs/" + cid + "?format=raw&filename=t%C3%A9st%22.bin");
  EXPECT_EQ(f.headers["content-disposition"],
            "attachment; filename=\"t__st_.bin\"; filename*=UTF-8''t%C3%A9st%22.bin");
  // HEAD: the same headers and length, no body.
  auto h = raw_request(s.port(), "/ipfs/" + cid + "?format=raw", "", "HEAD");
  EXPECT_EQ(h.status, 200);
  EXPECT_EQ(h.headers["content-length"], std::to_string(fx.block(fx.root).size()));
  EXPECT_EQ(h.headers["etag"], "\"" + cid + ".raw\"");
}

TEST(gatewaySpec, IfNoneMatchGives304WithCachingHeaders) {
  Fixture fx;
  RunningServer s(fx.store);
  std::string cid = fx.root.str();
  for (const std::string& inm : {"\"" + cid + ".raw\"", "W/\"" + cid + ".raw\"",
                                 "\"other\", \"" + cid + ".raw\"", std::string("*")}) {
    auto r =
        raw_request(s.port(), "/ipfs/" + cid + "?format=raw", "If-None-Match: " + inm + "\r\n");
    EXPECT_EQ(r.status, 304) << inm;
    EXPECT_TRUE(r.body.empty());
    EXPECT_EQ(r.headers["etag"], "\"" + cid + ".raw\"");
    EXPECT_EQ(r.headers["cache-control"], "public, max-age=29030400, immutable");
  }
  EXPECT_EQ(
      raw_request(s.port(), "/ipfs/" + cid + "?format=raw", "If-None-Match: \"x\"\r\n").status,
      200);
  auto car = raw_request(s.port(), "/ipfs/" + cid + "?format=car");
  ASSERT_EQ(car.status, 200);
  std::string etag = car.headers["etag"];
  EXPECT_EQ(etag.rfind("\"" + cid + ".car.", 0), 0u) << etag;
  EXPECT_EQ(raw_request(s.port(), "/ipfs/" + cid + "?format=car", "If-None-Match: " + etag + "\r\n")
                .status,
            304);
  // Scope, entity-bytes and dups change the CAR, so they change its Etag.
  std::set<std::string> etags{etag};
  for (const char* q :
       {"&dag-scope=entity", "&dag-scope=block", "&entity-bytes=0:10", "&car-dups=y"}) {
    etags.insert(raw_request(s.port(), "/ipfs/" + cid + "?format=car" + q).headers["etag"]);
  }
  EXPECT_EQ(etags.size(), 5u);
}

TEST(gatewaySpec, CarHeadersNegotiationAndDups) {
  Fixture fx;
  RunningServer s(fx.store);
  std::string cid = fx.root.str();
  auto r = raw_request(s.port(), "/ipfs/" + cid + "/sub?dag-scope=entity",
                       "Accept: application/vnd.ipld.raw;q=0.5, application/vnd.ipld.car\r\n");
  ASSERT_EQ(r.status, 200);  // q decides, not the order
  EXPECT_EQ(r.headers["content-type"], "application/vnd.ipld.car; version=1; order=dfs; dups=n");
  EXPECT_EQ(r.headers["content-disposition"], "attachment; filename=\"" + cid + ".car\"");
  EXPECT_EQ(r.headers["content-location"], "/ipfs/" + cid + "/sub?dag-scope=entity&format=car");
  unixfs::Dag dag(fx.store);
  Cid sub = *dag.lookup(fx.root, "sub");
  EXPECT_EQ(r.headers["x-ipfs-roots"], cid + "," + sub.str());
  EXPECT_EQ(r.headers["x-ipfs-path"], "/ipfs/" + cid + "/sub");
  // HEAD of a CAR: headers, no body (the next response on the wire would show one).
  auto h = raw_request(s.port(), "/ipfs/" + cid + "?format=car", "", "HEAD");
  EXPECT_EQ(h.status, 200);
  EXPECT_EQ(h.headers["content-type"], "application/vnd.ipld.car; version=1; order=dfs; dups=n");
  // A CAR variant we cannot write is not acceptable.
  EXPECT_EQ(raw_request(s.port(), "/ipfs/" + cid, "Accept: application/vnd.ipld.car; order=foo\r\n")
                .status,
            406);
}

// A file made of one repeated leaf: with dups=y every occurrence is sent, with dups=n one.
TEST(gatewaySpec, DupsYSendsEveryOccurrence) {
  testing::TempDir d;
  testing::write_text(d.path + "/zeros", std::string(4 * 262144, '\0'));
  MemoryStore store;
  unixfs::ImportOptions o;
  o.layout.cid_version = 1;
  o.layout.raw_leaves = true;
  unixfs::Importer imp(store, o, nullptr);
  Cid root = imp.add_path(d.path + "/zeros", "zeros").cid;
  RunningServer s(store);
  auto once = car_blocks(get(s.url() + "/ipfs/" + root.str() + "?format=car"));
  EXPECT_EQ(once.size(), 2u);  // the root and the one leaf
  auto r = get(s.url() + "/ipfs/" + root.str(),
               {"Accept: application/vnd.ipld.car; version=1; order=dfs; dups=y"});
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.content_type, "application/vnd.ipld.car; version=1; order=dfs; dups=y");
  auto every = car_blocks(r);
  ASSERT_EQ(every.size(), 5u);
  for (size_t i = 2; i < 5; ++i) EXPECT_EQ(every[i], every[1]);
  EXPECT_EQ(car_blocks(get(s.url() + "/ipfs/" + root.str() + "?format=car&car-dups=y")).size(), 5u);
}

TEST(gatewaySpec, EntityBytesPastTheEndIs400AndServiceWorkerIsRefused) {
  Fixture fx;
  RunningServer s(fx.store);
  std::string base = "/ipfs/" + fx.root.str() + "/big.bin?format=car&entity-bytes=";
  EXPECT_EQ(raw_request(s.port(), base + "99999999:*").status, 400);
  EXPECT_EQ(raw_request(s.port(), base + "0:99999999").status, 200);  // partly outside: served
  EXPECT_EQ(
      raw_request(s.port(), "/ipfs/" + fx.root.str() + "/?format=car", "Service-Worker: script\r\n")
          .status,
      400);
  EXPECT_EQ(raw_request(s.port(), "/ipfs/" + fx.root.str() + "?format=car", "", "POST").status,
            405);
}

// Served from a flatfs store, blocks go out with sendfile: the bytes must be the same.
TEST(gatewaySpec, FlatfsBlocksAreSentFromTheirFiles) {
  Fixture fx(1);
  testing::TempDir d;
  FlatfsStore flat(d.path + "/blocks", true);
  for (const auto& c : fx.blocks) flat.put(c, fx.block(c));
  RunningServer s(flat);
  for (const auto& c : fx.blocks) {
    auto r = get(s.url() + "/ipfs/" + c.str() + "?format=raw");
    ASSERT_EQ(r.status, 200);
    EXPECT_EQ(r.body, fx.block(c));
  }
  EXPECT_EQ(car_blocks(get(s.url() + "/ipfs/" + fx.root.str() + "?format=car")), fx.blocks);
  auto tail = car_blocks(
      get(s.url() + "/ipfs/" + fx.root.str() + "/big.bin?format=car&entity-bytes=-100:*"));
  EXPECT_EQ(tail.size(), 3u);
}

// A block kept as a reference (a byte range of a checkout's file) is served from that range, and
// checked again on the way out: once the file changes under it, no wrong byte is sent.
TEST(gatewaySpec, ReferencedBlocksAreServedFromTheirRangeAndChecked) {
  testing::TempDir d;
  FlatfsStore flat(d.path + "/blocks", true);
  std::string block = testing::random_bytes(300000, 7);
  Cid cid = Cid::of(1, kCodecRaw, as_bytes(block));
  flat.put(cid, as_bytes(block));
  std::string file = d.path + "/checkout-file";
  testing::write_text(file, "12345" + block + "tail");
  ASSERT_TRUE(flat.put_ref(cid, file, 5, block.size()));
  RunningServer s(flat);
  std::string url = s.url() + "/ipfs/" + cid.str();
  EXPECT_EQ(as_string(get(url + "?format=raw").body), block);
  auto part = get(url + "?format=raw", {"Range: bytes=10-19"});
  EXPECT_EQ(part.status, 206);
  EXPECT_EQ(as_string(part.body), block.substr(10, 10));
  EXPECT_EQ(car_blocks(get(url + "?format=car")), std::vector<Cid>{cid});

  std::string changed = block;
  changed[1000] ^= 1;
  testing::write_text(file, "12345" + changed + "tail");
  auto raw = get(url + "?format=raw");
  EXPECT_NE(raw.status, 200);
  EXPECT_EQ(std::string(as_string(raw.body)).find(changed.substr(0, 1000)), std::string::npos);
  auto car = get(url + "?format=car");
  EXPECT_EQ(std::string(as_string(car.body)).find(changed.substr(0, 1000)), std::string::npos);
}

// Over TLS, big blocks cannot go out with sendfile: they are read and encrypted instead, and
// the CAR is byte for byte the one the plain server sends (which uses sendfile for them).
TEST(gatewaySpec, FlatfsCarOverTlsIsTheSameAsPlain) {
  Fixture fx(1);
  testing::TempDir d;
  FlatfsStore flat(d.path + "/blocks", true);
  for (const auto& c : fx.blocks) flat.put(c, fx.block(c));
  std::string cert = d.path + "/cert.pem", key = d.path + "/key.pem";
  std::string cmd =
      "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=localhost "
      "-addext subjectAltName=DNS:localhost -days 1 -keyout " +
      key + " -out " + cert + " >/dev/null 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  Server tls(flat, {.listen = "127.0.0.1:0", .tls_cert = cert, .tls_key = key}, true);
  int port = tls.bind();
  std::thread t([&] { tls.run(); });
  RunningServer plain(flat);
  http::Client client({.ca_file = cert});
  for (const std::string& target : {"/ipfs/" + fx.root.str() + "?format=car",
                                    "/ipfs/" + fx.root.str() + "/big.bin?format=car&dups=y"}) {
    http::Request q;
    q.url = "https://localhost:" + std::to_string(port) + target;
    http::Response over_tls = client.perform(q);
    http::Response over_tcp = get(plain.url() + target);
    ASSERT_TRUE(over_tls.ok()) << over_tls.describe();
    ASSERT_TRUE(over_tcp.ok()) << over_tcp.describe();
    EXPECT_GT(over_tls.body.size(), 3u << 20);
    EXPECT_TRUE(over_tls.body == over_tcp.body) << target;
  }
  EXPECT_EQ(car_blocks(client.perform({.url = "https://localhost:" + std::to_string(port) +
                                              "/ipfs/" + fx.root.str() + "?format=car"})),
            fx.blocks);
  tls.stop();
  t.join();
}

// Range on raw blocks (the spec's SHOULD), from a flatfs file (sendfile) and from memory.
TEST(gatewaySpec, RangeOnRawBlocks) {
  Fixture fx(1);
  testing::TempDir d;
  FlatfsStore flat(d.path + "/blocks", true);
  for (const auto& c : fx.blocks) flat.put(c, fx.block(c));
  RunningServer from_files(flat);
  RunningServer from_memory(fx.store);
  // A full-size leaf of big.bin (256 KiB).
  Cid leaf = fx.blocks[0];
  for (const auto& c : fx.blocks) {
    if (fx.block(c).size() == 262144) leaf = c;
  }
  std::string data = std::string(as_string(fx.block(leaf)));
  ASSERT_EQ(data.size(), 262144u);
  std::string target = "/ipfs/" + leaf.str() + "?format=raw";
  std::string etag = "\"" + leaf.str() + ".raw\"";
  for (int port : {from_files.port(), from_memory.port()}) {
    auto r = raw_request(port, target, "Range: bytes=100-199\r\n");
    EXPECT_EQ(r.status, 206);
    EXPECT_EQ(r.headers["content-range"], "bytes 100-199/262144");
    EXPECT_EQ(r.headers["content-type"], "application/vnd.ipld.raw");
    EXPECT_EQ(r.body, data.substr(100, 100));
    r = raw_request(port, target, "Range: bytes=262000-\r\n");
    EXPECT_EQ(r.status, 206);
    EXPECT_EQ(r.headers["content-range"], "bytes 262000-262143/262144");
    EXPECT_EQ(r.body, data.substr(262000));
    r = raw_request(port, target, "Range: bytes=-16\r\n");
    EXPECT_EQ(r.status, 206);
    EXPECT_EQ(r.headers["content-range"], "bytes 262128-262143/262144");
    EXPECT_EQ(r.body, data.substr(262128));
    r = raw_request(port, target, "Range: bytes=262144-\r\n");
    EXPECT_EQ(r.status, 416);
    EXPECT_EQ(r.headers["content-range"], "bytes */262144");
    EXPECT_TRUE(r.body.empty());
    // Several ranges: the whole block (allowed by RFC 9110), as does an If-Range that names
    // another entity; our own Etag keeps the range.
    r = raw_request(port, target, "Range: bytes=0-1,5-6\r\n");
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.headers["accept-ranges"], "bytes");
    EXPECT_EQ(r.body, data);
    r = raw_request(port, target, "Range: bytes=0-1\r\nIf-Range: \"other\"\r\n");
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.body, data);
    r = raw_request(port, target, "Range: bytes=0-1\r\nIf-Range: " + etag + "\r\n");
    EXPECT_EQ(r.status, 206);
    EXPECT_EQ(r.body, data.substr(0, 2));
    // HEAD: the partial response's head, no body.
    r = raw_request(port, target, "Range: bytes=10-19\r\n", "HEAD");
    EXPECT_EQ(r.status, 206);
    EXPECT_EQ(r.headers["content-length"], "10");
  }
  // An identity CID's block is its digest: ranges apply to it too.
  Cid id = Cid::v1(kCodecRaw, kHashIdentity, as_bytes(std::string_view("identity bytes")));
  auto r =
      raw_request(from_memory.port(), "/ipfs/" + id.str() + "?format=raw", "Range: bytes=9-\r\n");
  EXPECT_EQ(r.status, 206);
  EXPECT_EQ(r.body, "bytes");
}

TEST(gatewaySpec, OnlyIfCachedMissIs412WithoutPayload) {
  Fixture fx;
  RunningServer s(fx.store);
  Cid absent = Cid::of(1, kCodecRaw, as_bytes("absent"));
  auto r = raw_request(s.port(), "/ipfs/" + absent.str() + "?format=raw",
                       "Cache-Control: only-if-cached\r\n");
  EXPECT_EQ(r.status, 412);
  EXPECT_TRUE(r.body.empty());
  EXPECT_EQ(r.headers["content-length"], "0");
  auto h = raw_request(s.port(), "/ipfs/" + fx.root.str() + "?format=car",
                       "Cache-Control: only-if-cached\r\n", "HEAD");
  EXPECT_EQ(h.status, 200);
}

// Coded answers (Accept-Encoding): zstd preferred, gzip when only it is taken, the plain bytes
// when nothing is asked, a range, or a coding nobody accepts; the client decodes, so the bodies
// are the blocks and CARs themselves.
TEST(gatewaySpec, CodedAnswersWhenAskedAndPlainOtherwise) {
  MemoryStore store;
  std::string text;
  for (int i = 0; text.size() < 300000; ++i)
    text += "line " + std::to_string(i % 97) + " of a text\n";
  Cid big = Cid::of(1, kCodecRaw, as_bytes(text));
  store.put(big, as_bytes(text));
  Cid tiny = Cid::of(1, kCodecRaw, as_bytes("tiny"));
  store.put(tiny, as_bytes("tiny"));
  RunningServer s(store);
  std::string raw = s.url() + "/ipfs/" + big.str() + "?format=raw";
  auto r = get(raw, {"Accept-Encoding: gzip, zstd"});
  ASSERT_EQ(r.status, 200) << r.describe();
  EXPECT_EQ(r.content_encoding, "zstd");
  EXPECT_EQ(as_string(r.body), text);
  r = get(raw, {"Accept-Encoding: zstd;q=0, gzip;q=0.5"});
  EXPECT_EQ(r.content_encoding, "gzip");
  EXPECT_EQ(as_string(r.body), text);
  r = get(raw);
  EXPECT_EQ(r.content_encoding, "");
  EXPECT_EQ(as_string(r.body), text);
  r = get(raw, {"Accept-Encoding: br, deflate"});
  EXPECT_EQ(r.content_encoding, "");
  // A range is of the plain bytes.
  r = get(raw, {"Accept-Encoding: zstd", "Range: bytes=10-19"});
  EXPECT_EQ(r.status, 206);
  EXPECT_EQ(r.content_encoding, "");
  EXPECT_EQ(as_string(r.body), text.substr(10, 10));
  // Too small to gain anything: plain.
  r = get(s.url() + "/ipfs/" + tiny.str() + "?format=raw", {"Accept-Encoding: zstd"});
  EXPECT_EQ(r.content_encoding, "");
  EXPECT_EQ(as_string(r.body), "tiny");

  // From a flatfs store the block is read from its file to be coded.
  testing::TempDir d;
  FlatfsStore flat(d.path + "/blocks", true);
  flat.put(big, as_bytes(text));
  RunningServer s3(flat);
  r = get(s3.url() + "/ipfs/" + big.str() + "?format=raw", {"Accept-Encoding: zstd"});
  EXPECT_EQ(r.content_encoding, "zstd");
  EXPECT_EQ(as_string(r.body), text);

  Fixture fx(1);
  RunningServer s2(fx.store);
  std::string car = s2.url() + "/ipfs/" + fx.root.str() + "?format=car";
  auto plain = get(car);
  for (const char* coding : {"zstd", "gzip"}) {
    auto c = get(car, {std::string("Accept-Encoding: ") + coding});
    ASSERT_EQ(c.status, 200) << c.describe();
    EXPECT_EQ(c.content_encoding, coding);
    EXPECT_EQ(c.body, plain.body) << coding;
  }
}

// A pull that asks for coded answers gets every block, verified, as a plain pull does.
TEST(gatewayServer, FetcherPullsCodedAnswers) {
  Fixture fx(1);
  RunningServer s(fx.store);
  ::setenv("CIDRUN_COMPRESS", "on", 1);
  for (bool use_car : {true, false}) {
    MemoryStore dest;
    auto sources = exchange::SourceSet::open({s.url()});
    exchange::Fetcher f(dest, *sources, {.use_car = use_car});
    auto r = f.fetch_dag(fx.root);
    EXPECT_EQ(r.blocks, fx.blocks.size());
    for (const auto& c : fx.blocks) EXPECT_EQ(dest.get(c), fx.store.get(c));
  }
  ::unsetenv("CIDRUN_COMPRESS");
}

}  // namespace
}  // namespace cidrun::gateway
