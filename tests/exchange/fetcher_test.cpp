// The fetcher against good and bad peers: every bad answer is rejected, the source penalized,
// another one used, and the store never holds a block whose hash does not match.
#include "exchange/fetcher.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <thread>
#include <unordered_set>

#include "exchange/fixtures.h"
#include "exchange/source_set.h"
#include "ipld/dagpb.h"
#include "net/fake_http.h"
#include "store/reachable.h"
#include "util/varint.h"

namespace cidrun::exchange {
namespace {

using testing::FakeHttp;
using testing::Fixture;
using testing::HttpHead;
using testing::send_response;
using testing::TempDir;

// Serves the fixture as a correct trustless gateway (raw and CAR).
FakeHttp::Handler good_gateway(Fixture& fx) {
  return [&fx](const HttpHead& h, int fd) {
    Cid cid = testing::cid_in(h.target);
    auto b = fx.store.get(cid);
    if (!b) return send_response(fd, 404, "text/plain", "not found");
    if (h.target.find("format=car") != std::string::npos) {
      send_response(fd, 200, "application/vnd.ipld.car; version=1; order=dfs; dups=n", fx.car(cid));
    } else {
      send_response(fd, 200, "application/vnd.ipld.raw", as_string(*b));
    }
  };
}

// Every block in `store` hashes to its key, and the DAG is complete.
void expect_complete_and_sound(MemoryStore& store, Fixture& fx) {
  for (const auto& c : fx.blocks) {
    auto b = store.get(c);
    ASSERT_TRUE(b) << "missing " << c.str();
    EXPECT_TRUE(c.matches(*b)) << c.str();
  }
}

size_t count_blocks(MemoryStore& s) {
  size_t n = 0;
  s.for_each([&](ByteView) { ++n; });
  return n;
}

class exchangeFetcher : public ::testing::Test {
 protected:
  void SetUp() override { ::setenv("CIDRUN_STALL_TIMEOUT", "1", 1); }
  void TearDown() override { ::unsetenv("CIDRUN_STALL_TIMEOUT"); }
  static std::shared_ptr<SourceSet> sources(const std::vector<std::string>& urls) {
    return SourceSet::open(urls);
  }
};

TEST_F(exchangeFetcher, PullsWholeDagWithOneCarRequest) {
  Fixture fx;
  FakeHttp gw(good_gateway(fx));
  MemoryStore dest;
  auto src = sources({gw.url()});
  Fetcher f(dest, *src);
  auto r = f.fetch_dag(fx.root);
  expect_complete_and_sound(dest, fx);
  EXPECT_EQ(r.blocks, fx.blocks.size());
  EXPECT_EQ(gw.requests(), 2);  // the root (a directory, so...), then one CAR with the rest
}

// Counts a gateway's requests by kind and the most that were in flight at once; CARs are held
// for a moment so that overlapping ones are seen overlapping.
struct RequestLog {
  std::atomic<int> raw{0}, car{0}, inflight{0}, max_inflight{0};
  FakeHttp::Handler wrap(FakeHttp::Handler inner) {
    return [this, inner = std::move(inner)](const HttpHead& h, int fd) {
      bool is_car = h.target.find("format=car") != std::string::npos;
      ++(is_car ? car : raw);
      int now = ++inflight;
      for (int m = max_inflight; now > m && !max_inflight.compare_exchange_weak(m, now);) {
      }
      if (is_car) std::this_thread::sleep_for(std::chrono::milliseconds(200));
      inner(h, fd);
      --inflight;
    };
  }
};

TEST_F(exchangeFetcher, BigFileIsSplitIntoParallelBlockRequests) {
  // 20 MiB in 256 KiB raw leaves: too big for one CAR and made of big links, so every leaf is
  // asked for on its own; the small subdirectory still comes as one CAR.
  Fixture fx(1, 20u << 20);
  RequestLog log;
  FakeHttp gw(log.wrap(good_gateway(fx)));
  MemoryStore dest;
  auto src = sources({gw.url()});
  Fetcher f(dest, *src);
  auto r = f.fetch_dag(fx.root);
  expect_complete_and_sound(dest, fx);
  EXPECT_EQ(r.blocks, fx.blocks.size());
  EXPECT_EQ(r.fetched_blocks, fx.blocks.size());
  EXPECT_EQ(log.car, 1);  // sub/
  // Every other block alone: the root, big.bin's node and its 80 leaves, hello.txt.
  EXPECT_EQ(log.raw, static_cast<int>(fx.blocks.size()) - 6);
  EXPECT_GT(log.max_inflight, 1);
}

TEST_F(exchangeFetcher, DirectoryOfBigSubtreesIsSplitIntoParallelCars) {
  TempDir dir;
  MemoryStore store;
  std::string t = dir.path + "/tree";
  for (int d = 0; d < 3; ++d) {
    std::string sub = t + "/d" + std::to_string(d);
    std::filesystem::create_directories(sub);
    testing::write_text(sub + "/data", testing::random_bytes(6u << 20, d));
    testing::write_text(sub + "/note", "note " + std::to_string(d));
  }
  unixfs::ImportOptions o;
  o.recursive = true;
  o.layout.cid_version = 1;
  o.layout.raw_leaves = true;
  o.dir.cid_version = 1;
  unixfs::Importer imp(store, o, nullptr);
  Cid root = imp.add_path(t, "tree").cid;
  size_t n = 0;
  unixfs::walk_dag(store, root, [&](const Cid&, ByteView) { return ++n > 0; });

  RequestLog log;
  FakeHttp gw(log.wrap([&](const HttpHead& h, int fd) {
    Cid cid = testing::cid_in(h.target);
    auto b = store.get(cid);
    if (!b) return send_response(fd, 404, "text/plain", "not found");
    if (h.target.find("format=car") == std::string::npos)
      return send_response(fd, 200, "application/vnd.ipld.raw", as_string(*b));
    send_response(fd, 200, "application/vnd.ipld.car; version=1", testing::car_of(store, cid));
  }));
  MemoryStore dest;
  auto src = sources({gw.url()});
  Fetcher f(dest, *src);
  auto r = f.fetch_dag(root);
  EXPECT_EQ(r.blocks, n);
  EXPECT_EQ(r.fetched_blocks, n);
  size_t have = 0;
  dest.for_each([&](ByteView) { ++have; });
  EXPECT_EQ(have, n);
  EXPECT_EQ(log.raw, 1);  // the root, which tells how to split
  EXPECT_EQ(log.car, 3);  // one per subdirectory, at the same time
  EXPECT_GE(log.max_inflight, 2);
}

TEST_F(exchangeFetcher, PullsBlockByBlockInParallelWithRawLeaves) {
  Fixture fx(1);
  FakeHttp gw(good_gateway(fx));
  MemoryStore dest;
  auto src = sources({gw.url()});
  Fetcher f(dest, *src, {.parallel = 8, .use_car = false});
  auto r = f.fetch_dag(fx.root);
  expect_complete_and_sound(dest, fx);
  EXPECT_EQ(r.fetched_blocks, fx.blocks.size());
  EXPECT_EQ(gw.requests(), static_cast<int>(fx.blocks.size()));
}

TEST_F(exchangeFetcher, SeveralGoodSourcesShareTheWork) {
  Fixture fx(1);
  FakeHttp a(good_gateway(fx));
  FakeHttp b(good_gateway(fx));
  MemoryStore dest;
  auto src = sources({a.url(), b.url()});
  Fetcher f(dest, *src, {.parallel = 4, .use_car = false});
  f.fetch_dag(fx.root);
  expect_complete_and_sound(dest, fx);
  EXPECT_GT(a.requests(), 0);
  EXPECT_GT(b.requests(), 0);
  EXPECT_EQ(a.requests() + b.requests(), static_cast<int>(fx.blocks.size()));
}

TEST_F(exchangeFetcher, ResumesWithoutRefetchingPresentBlocks) {
  Fixture fx;
  FakeHttp gw(good_gateway(fx));
  MemoryStore dest;
  // Half the DAG is already here (an interrupted pull).
  for (size_t i = 0; i < fx.blocks.size() / 2; ++i) dest.put(fx.blocks[i], fx.block(fx.blocks[i]));
  auto src = sources({gw.url()});
  Fetcher f(dest, *src);
  auto r = f.fetch_dag(fx.root);
  expect_complete_and_sound(dest, fx);
  EXPECT_EQ(r.fetched_blocks, fx.blocks.size() - fx.blocks.size() / 2);
  EXPECT_EQ(gw.requests(), static_cast<int>(r.fetched_blocks));
}

// Imports the directory at `path` (CIDv1, raw leaves) into `store`.
Cid import_tree(MemoryStore& store, const std::string& path) {
  unixfs::ImportOptions o;
  o.recursive = true;
  o.layout.cid_version = 1;
  o.layout.raw_leaves = true;
  o.dir.cid_version = 1;
  unixfs::Importer imp(store, o, nullptr);
  return imp.add_path(path, "tree").cid;
}

std::vector<Cid> dag_blocks(MemoryStore& store, const Cid& root) {
  std::vector<Cid> out;
  unixfs::walk_dag(store, root, [&](const Cid& c, ByteView) {
    out.push_back(c);
    return true;
  });
  return out;
}

TEST_F(exchangeFetcher, UpdateFetchesOnlyTheBlocksThatChanged) {
  // v1: a 6 MiB file beside a deep path to a small file, and a directory of small files. v2
  // replaces the deep file and adds a small directory. A node holding v1 must fetch only v2's new
  // blocks: never a CAR of a subtree it mostly holds (the 6 MiB file, the small files).
  TempDir dir;
  std::string t = dir.path + "/tree";
  std::filesystem::create_directories(t + "/a/b/c");
  std::filesystem::create_directories(t + "/small");
  testing::write_text(t + "/big.bin", testing::random_bytes(6u << 20, 7));
  testing::write_text(t + "/a/b/c/file", testing::random_bytes(600u << 10, 8));
  for (int i = 0; i < 50; ++i)
    testing::write_text(t + "/small/f" + std::to_string(i), "small " + std::to_string(i));
  MemoryStore origin;
  Cid v1 = import_tree(origin, t);
  testing::write_text(t + "/a/b/c/file", testing::random_bytes(600u << 10, 9));
  std::filesystem::create_directories(t + "/new");
  testing::write_text(t + "/new/x", "new file");
  Cid v2 = import_tree(origin, t);

  MemoryStore dest;
  auto old_blocks = dag_blocks(origin, v1);
  for (const auto& c : old_blocks) dest.put(c, *origin.get(c));
  std::unordered_set<std::string> old_keys;
  for (const auto& c : old_blocks) old_keys.insert(std::string(as_string(c.multihash())));
  uint64_t new_bytes = 0;
  size_t new_count = 0;
  for (const auto& c : dag_blocks(origin, v2)) {
    if (old_keys.insert(std::string(as_string(c.multihash()))).second) {
      new_bytes += origin.get(c)->size();
      ++new_count;
    }
  }

  std::atomic<uint64_t> sent{0};
  FakeHttp gw([&](const HttpHead& h, int fd) {
    Cid cid = testing::cid_in(h.target);
    auto b = origin.get(cid);
    if (!b) return send_response(fd, 404, "text/plain", "not found");
    std::string body;
    if (h.target.find("format=car") != std::string::npos) {
      body = testing::car_of(origin, cid);
      send_response(fd, 200, "application/vnd.ipld.car; version=1", body);
    } else {
      body = std::string(as_string(*b));
      send_response(fd, 200, "application/vnd.ipld.raw", body);
    }
    sent += body.size();
  });
  auto src = sources({gw.url()});
  Fetcher f(dest, *src);
  auto r = f.fetch_dag(v2);
  EXPECT_EQ(r.fetched_blocks, new_count);
  EXPECT_EQ(r.fetched_bytes, new_bytes);
  for (const auto& c : dag_blocks(origin, v2)) ASSERT_TRUE(dest.has(c)) << c.str();
  // What crossed the wire: the new blocks, a node fetched alone and again at the head of its
  // CAR, and CAR framing; nothing near the size of a subtree v1 already had.
  EXPECT_LT(sent.load(), new_bytes + (16u << 10));
}

// A cidrun image links the structure blocks of its tree twice: by raw CIDs from its metadata (so
// that a CAR of the metadata stops there) and by dag-pb CIDs from the tree. Reached first as a
// leaf, such a block must still have its links followed when the tree reaches it, in a CAR and
// block by block alike, or the pull ends "complete" without the file data.
TEST_F(exchangeFetcher, BlockLinkedAsRawAndAsDagPbHasItsLinksFollowed) {
  TempDir dir;
  std::string t = dir.path + "/tree";
  std::filesystem::create_directories(t);
  testing::write_text(t + "/file", testing::random_bytes(700u << 10, 3));
  MemoryStore origin;
  Cid tree = import_tree(origin, t);
  std::vector<Cid> tree_blocks = dag_blocks(origin, tree);
  // The "metadata": raw links to the tree's dag-pb blocks, as an image's structure links.
  dagpb::Node meta;
  for (const auto& c : tree_blocks) {
    if (c.codec() != kCodecDagPb) continue;
    Cid as_raw = Cid::v1(kCodecRaw, c.hash_code(), c.digest());
    meta.links.push_back({as_raw, std::nullopt, origin.get(c)->size()});
  }
  Bytes meta_block = dagpb::encode(meta);
  Cid meta_cid = Cid::of(1, kCodecDagPb, meta_block);
  origin.put(meta_cid, meta_block);
  dagpb::Node top;
  top.links.push_back({meta_cid, std::string("meta"), meta_block.size()});
  top.links.push_back({tree, std::string("tree"), 800u << 10});
  Bytes top_block = dagpb::encode(top);
  Cid root = Cid::of(1, kCodecDagPb, top_block);
  origin.put(root, top_block);

  // The gateway walks by CID, as `cidrun serve` does: the raw-linked blocks come twice.
  FakeHttp gw([&](const HttpHead& h, int fd) {
    Cid cid = testing::cid_in(h.target);
    auto b = origin.get(cid);
    if (!b) return send_response(fd, 404, "text/plain", "not found");
    if (h.target.find("format=car") == std::string::npos)
      return send_response(fd, 200, "application/vnd.ipld.raw", as_string(*b));
    Bytes out = exchange::car_header({cid});
    KeySet seen;
    walk_reachable(origin, cid, seen, IfMissing::kThrow, [&](const Cid& c, ByteView data) {
      Bytes p = exchange::car_section_prefix(c, data.size());
      out.insert(out.end(), p.begin(), p.end());
      out.insert(out.end(), data.begin(), data.end());
      return true;
    });
    send_response(fd, 200, "application/vnd.ipld.car; version=1", as_string(out));
  });
  for (bool use_car : {true, false}) {
    SCOPED_TRACE(use_car ? "CAR" : "block by block");
    MemoryStore dest;
    auto src = sources({gw.url()});
    Fetcher f(dest, *src, {.use_car = use_car});
    auto r = f.fetch_dag(root);
    for (const auto& c : tree_blocks) EXPECT_TRUE(dest.has(c)) << c.str();
    EXPECT_EQ(r.blocks, tree_blocks.size() + 2);
    EXPECT_FALSE(first_missing(dest, root));
  }
}

TEST_F(exchangeFetcher, WrongBytesAreRejectedAndAnotherSourceIsUsed) {
  Fixture fx;
  FakeHttp liar([&](const HttpHead& h, int fd) {
    Cid cid = testing::cid_in(h.target);
    Bytes b = fx.block(cid);
    b.back() ^= 1;  // one flipped bit
    send_response(fd, 200, "application/vnd.ipld.raw", as_string(b));
  });
  FakeHttp good(good_gateway(fx));
  MemoryStore dest;
  auto src = sources({liar.url(), good.url()});
  Fetcher f(dest, *src, {.use_car = false});
  f.fetch_dag(fx.root);
  expect_complete_and_sound(dest, fx);
  EXPECT_EQ(count_blocks(dest), fx.blocks.size());
  // The liar was backed off after its first lie instead of being asked for every block.
  EXPECT_LT(liar.requests(), static_cast<int>(fx.blocks.size()));
}

TEST_F(exchangeFetcher, CarWithACorruptBigLeafIsCutAndAnotherSourceCompletesIt) {
  // CIDv1 with raw leaves: the big file's 256 KiB leaves are verified on the thread pool while
  // the stream goes on (block_pipeline.h); a bad one must still stop the stream and never be
  // stored.
  Fixture fx(1);
  Cid victim;
  for (const auto& c : fx.blocks) {
    if (c.codec() == kCodecRaw && fx.block(c).size() > 100000) victim = c;
  }
  ASSERT_FALSE(victim.str().empty());
  std::atomic<int> car_requests{0};
  FakeHttp liar([&](const HttpHead& h, int fd) {
    Cid cid = testing::cid_in(h.target);
    if (h.target.find("format=car") == std::string::npos)
      return send_response(fd, 200, "application/vnd.ipld.raw", as_string(fx.block(cid)));
    ++car_requests;
    std::string car = fx.car(cid);
    Bytes leaf = fx.block(victim);
    size_t at = car.find(std::string(as_string(leaf)));
    if (at != std::string::npos) car[at + leaf.size() / 2] ^= 1;
    send_response(fd, 200, "application/vnd.ipld.car; version=1", car);
  });
  // The good source sends no CARs: whatever the liar's stream lacked comes block by block.
  FakeHttp good([&](const HttpHead& h, int fd) {
    if (h.target.find("format=car") != std::string::npos)
      return send_response(fd, 404, "text/plain", "not found");
    send_response(fd, 200, "application/vnd.ipld.raw",
                  as_string(fx.block(testing::cid_in(h.target))));
  });
  MemoryStore dest;
  auto src = std::make_shared<SourceSet>(
      [&] {
        std::vector<std::unique_ptr<BlockSource>> v;
        v.push_back(open_source(liar.url()));
        v.push_back(open_source(good.url()));
        return v;
      }(),
      /*retries=*/1);
  Fetcher f(dest, *src);
  f.fetch_dag(fx.root);
  EXPECT_EQ(car_requests, 1);
  expect_complete_and_sound(dest, fx);
  EXPECT_EQ(count_blocks(dest), fx.blocks.size());
}

TEST_F(exchangeFetcher, TruncatedCarKeepsGoodBlocksAndFetchesTheRest) {
  Fixture fx;
  FakeHttp gw([&](const HttpHead& h, int fd) {
    Cid cid = testing::cid_in(h.target);
    if (h.target.find("format=car") != std::string::npos) {
      std::string car = fx.car(cid);
      // Claims the full length, sends 60%, then closes: a truncated stream.
      std::string head =
          "HTTP/1.1 200 OK\r\nContent-Type: application/vnd.ipld.car; version=1\r\n"
          "Content-Length: " +
          std::to_string(car.size()) + "\r\n\r\n";
      testing::send_all(fd, head);
      testing::send_all(fd, std::string_view(car).substr(0, car.size() * 6 / 10));
      return;
    }
    send_response(fd, 200, "application/vnd.ipld.raw", as_string(fx.block(cid)));
  });
  MemoryStore dest;
  auto src = sources({gw.url()});
  Fetcher f(dest, *src);
  auto r = f.fetch_dag(fx.root);
  expect_complete_and_sound(dest, fx);
  EXPECT_LT(gw.requests(), static_cast<int>(fx.blocks.size()) + 1);  // the CAR did help
  EXPECT_EQ(r.blocks, fx.blocks.size());
}

TEST_F(exchangeFetcher, PaddedCarIsRejectedAtTheGarbage) {
  Fixture fx;
  FakeHttp gw([&](const HttpHead& h, int fd) {
    Cid cid = testing::cid_in(h.target);
    if (h.target.find("format=car") != std::string::npos) {
      send_response(fd, 200, "application/vnd.ipld.car; version=1", fx.car(cid) + "\x05junk");
      return;
    }
    send_response(fd, 200, "application/vnd.ipld.raw", as_string(fx.block(cid)));
  });
  MemoryStore dest;
  auto src = sources({gw.url()});
  Fetcher f(dest, *src);
  f.fetch_dag(fx.root);
  expect_complete_and_sound(dest, fx);
  EXPECT_EQ(count_blocks(dest), fx.blocks.size());
}

TEST_F(exchangeFetcher, CarMissingBlocksIsCompletedBlockByBlock) {
  Fixture fx;
  Cid dropped = fx.blocks[3];
  FakeHttp gw([&](const HttpHead& h, int fd) {
    Cid cid = testing::cid_in(h.target);
    if (h.target.find("format=car") != std::string::npos) {
      Bytes out = exchange::car_header({cid});
      for (const auto& c : fx.blocks) {
        if (c == dropped) continue;
        Bytes b = fx.block(c);
        Bytes p = exchange::car_section_prefix(c, b.size());
        out.insert(out.end(), p.begin(), p.end());
        out.insert(out.end(), b.begin(), b.end());
      }
      send_response(fd, 200, "application/vnd.ipld.car; version=1", as_string(out));
      return;
    }
    send_response(fd, 200, "application/vnd.ipld.raw", as_string(fx.block(cid)));
  });
  MemoryStore dest;
  auto src = sources({gw.url()});
  Fetcher f(dest, *src);
  f.fetch_dag(fx.root);
  expect_complete_and_sound(dest, fx);
}

TEST_F(exchangeFetcher, CarAddingUnlinkedBlocksIsCutOffAndTheStrangerNotStored) {
  Fixture fx;
  Fixture other(1, 1000, 1);  // a valid block that is not part of fx's DAG
  Cid stranger = other.root;
  FakeHttp gw([&](const HttpHead& h, int fd) {
    Cid cid = testing::cid_in(h.target);
    if (h.target.find("format=car") != std::string::npos) {
      std::string car = fx.car(cid);
      Bytes b = other.block(stranger);
      Bytes p = exchange::car_section_prefix(stranger, b.size());
      // The stranger right after the root block.
      size_t cut = exchange::car_header({cid}).size();
      Bytes rootb = fx.block(cid);
      cut += exchange::car_section_prefix(cid, rootb.size()).size() + rootb.size();
      car.insert(cut, std::string(as_string(p)) + std::string(as_string(b)));
      send_response(fd, 200, "application/vnd.ipld.car; version=1", car);
      return;
    }
    send_response(fd, 200, "application/vnd.ipld.raw", as_string(fx.block(cid)));
  });
  MemoryStore dest;
  auto src = sources({gw.url()});
  Fetcher f(dest, *src);
  f.fetch_dag(fx.root);
  expect_complete_and_sound(dest, fx);
  EXPECT_FALSE(dest.has(stranger));
  EXPECT_EQ(count_blocks(dest), fx.blocks.size());
}

TEST_F(exchangeFetcher, HangingSourceTimesOutAndAnotherIsUsed) {
  Fixture fx(1, 1000, 2);
  FakeHttp* self = nullptr;
  FakeHttp hanging([&](const HttpHead&, int) { self->hang(); });
  self = &hanging;
  FakeHttp good(good_gateway(fx));
  MemoryStore dest;
  auto src = sources({hanging.url(), good.url()});
  Fetcher f(dest, *src);
  auto start = std::chrono::steady_clock::now();
  f.fetch_dag(fx.root);
  expect_complete_and_sound(dest, fx);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(20));
}

TEST_F(exchangeFetcher, SlowDripIsCutByTheStallLimit) {
  Fixture fx(1, 1000, 1);
  FakeHttp slow([&](const HttpHead& h, int fd) {
    Cid cid = testing::cid_in(h.target);
    Bytes b = fx.block(cid);
    std::string head =
        "HTTP/1.1 200 OK\r\nContent-Type: application/vnd.ipld.raw\r\nContent-Length: " +
        std::to_string(b.size()) + "\r\n\r\n";
    testing::send_all(fd, head);
    // Headers, then nothing for longer than the stall limit (1 s in these tests).
    std::this_thread::sleep_for(std::chrono::milliseconds(3500));
    testing::send_all(fd, as_string(b));
  });
  MemoryStore dest;
  auto src = std::make_shared<SourceSet>(
      [&] {
        std::vector<std::unique_ptr<BlockSource>> v;
        v.push_back(open_source(slow.url()));
        return v;
      }(),
      /*retries=*/0);
  Fetcher f(dest, *src, {.use_car = false});
  try {
    f.fetch_dag(fx.root);
    FAIL() << "a stalled source must not succeed";
  } catch (const NotFound& e) {
    EXPECT_NE(std::string(e.what()).find(fx.root.str()), std::string::npos) << e.what();
  }
  EXPECT_FALSE(dest.has(fx.root));
}

TEST_F(exchangeFetcher, HttpErrorsAndRedirectsAreNotFollowed) {
  Fixture fx(1, 1000, 2);
  FakeHttp elsewhere(good_gateway(fx));
  FakeHttp failing([&](const HttpHead&, int fd) { send_response(fd, 500, "text/plain", "boom"); });
  FakeHttp redirecting([&](const HttpHead& h, int fd) {
    send_response(fd, 302, "text/plain", "", "Location: " + elsewhere.url() + h.target + "\r\n");
  });
  MemoryStore dest;
  auto src = std::make_shared<SourceSet>(
      [&] {
        std::vector<std::unique_ptr<BlockSource>> v;
        v.push_back(open_source(failing.url()));
        v.push_back(open_source(redirecting.url()));
        return v;
      }(),
      /*retries=*/1);
  Fetcher f(dest, *src);
  try {
    f.fetch_dag(fx.root);
    FAIL() << "no good source: must fail";
  } catch (const NotFound& e) {
    std::string m = e.what();
    EXPECT_NE(m.find(fx.root.str()), std::string::npos) << m;
    EXPECT_NE(m.find("HTTP 500"), std::string::npos) << m;
    EXPECT_NE(m.find("redirect"), std::string::npos) << m;
  }
  EXPECT_EQ(elsewhere.requests(), 0);  // the redirect was refused, not followed
  EXPECT_EQ(count_blocks(dest), 0u);
}

TEST_F(exchangeFetcher, EnormousBlockIsRefused) {
  Fixture fx(1, 1000, 1);
  FakeHttp huge([&](const HttpHead&, int fd) {
    send_response(fd, 200, "application/vnd.ipld.raw", std::string(3 * 1024 * 1024, 'x'));
  });
  FakeHttp huge_car([&](const HttpHead& h, int fd) {
    Cid cid = testing::cid_in(h.target);
    Bytes out = exchange::car_header({cid});
    put_varint(out, 3 * 1024 * 1024);  // a section claiming 3 MiB
    out.insert(out.end(), cid.bytes().begin(), cid.bytes().end());
    send_response(fd, 200, "application/vnd.ipld.car; version=1",
                  std::string(as_string(out)) + std::string(3 * 1024 * 1024, 'x'));
  });
  MemoryStore dest;
  auto src = std::make_shared<SourceSet>(
      [&] {
        std::vector<std::unique_ptr<BlockSource>> v;
        v.push_back(open_source(huge_car.url()));
        v.push_back(open_source(huge.url()));
        return v;
      }(),
      /*retries=*/0);
  Fetcher f(dest, *src);
  try {
    f.fetch_dag(fx.root);
    FAIL() << "must fail";
  } catch (const NotFound& e) {
    EXPECT_NE(std::string(e.what()).find("larger than"), std::string::npos) << e.what();
  }
  EXPECT_EQ(count_blocks(dest), 0u);
}

TEST_F(exchangeFetcher, KuboRpcSourceUsesPostBlockGetAndDagExport) {
  Fixture fx;
  std::atomic<int> gets{0}, non_post{0};
  FakeHttp kubo([&](const HttpHead& h, int fd) {
    if (h.method != "POST") {
      ++non_post;
      return send_response(fd, 405, "text/plain", "method not allowed");
    }
    Cid cid = testing::cid_in(h.target);
    if (h.path() == "/api/v0/dag/export") {
      // Only the first half of the DAG: the rest must come through block/get.
      std::string car = fx.car(cid);
      return send_response(fd, 200, "application/vnd.ipld.car", car.substr(0, car.size() / 2));
    }
    if (h.path() == "/api/v0/block/get") {
      ++gets;
      auto b = fx.store.get(cid);
      if (!b)
        return send_response(
            fd, 500, "application/json",
            R"j({"Message":"block was not found locally (offline)","Code":0,"Type":"error"})j");
      return send_response(fd, 200, "text/plain", as_string(*b));
    }
    send_response(fd, 404, "text/plain", "404 page not found");
  });
  MemoryStore dest;
  auto src = sources({"kubo+" + kubo.url()});
  Fetcher f(dest, *src);
  f.fetch_dag(fx.root);
  expect_complete_and_sound(dest, fx);
  EXPECT_GT(gets, 0);
  EXPECT_EQ(non_post, 0);
  // An absent block is an honest "not found", named in the error.
  Cid absent = Cid::of(1, kCodecRaw, as_bytes("absent"));
  try {
    src->get(absent);
    FAIL();
  } catch (const NotFound& e) {
    EXPECT_NE(std::string(e.what()).find(absent.str()), std::string::npos);
  }
}

}  // namespace
}  // namespace cidrun::exchange
