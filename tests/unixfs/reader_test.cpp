#include "unixfs/reader.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <random>

#include "ipld/dagpb.h"
#include "store/memstore.h"
#include "unixfs/chunker.h"
#include "unixfs/directory.h"
#include "util/error.h"

namespace cidrun::unixfs {
namespace {

// A chunker over an in-memory buffer, so tests need no files.
class VectorChunker : public Chunker {
 public:
  VectorChunker(const Bytes& data, size_t size) : data_(data), size_(size) {}
  bool next(Bytes& out) override {
    size_t n = std::min(size_, data_.size() - pos_);
    out.assign(data_.begin() + static_cast<ptrdiff_t>(pos_),
               data_.begin() + static_cast<ptrdiff_t>(pos_ + n));
    pos_ += n;
    return n > 0;
  }

 private:
  const Bytes& data_;
  size_t size_;
  size_t pos_ = 0;
};

Bytes random_bytes(size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  Bytes b(n);
  for (auto& c : b) c = static_cast<uint8_t>(rng());
  return b;
}

NodeInfo import(MemoryStore& store, const Bytes& data, LayoutParams p, size_t chunk = 1000) {
  VectorChunker c(data, chunk);
  return build_file(store, c, p, {});
}

TEST(Reader, RoundTripsBalancedAndTrickleAtLinkBoundaries) {
  for (bool trickle : {false, true}) {
    for (bool raw : {false, true}) {
      for (size_t n :
           {0UL, 1UL, 999UL, 1000UL, 1001UL, 4000UL, 4001UL, 16000UL, 16001UL, 70001UL}) {
        MemoryStore store;
        Bytes data = random_bytes(n, static_cast<unsigned>(n));
        LayoutParams p;
        p.max_links = 4;
        p.raw_leaves = raw;
        p.trickle = trickle;
        p.cid_version = raw ? 1 : 0;
        NodeInfo root = import(store, data, p);
        EXPECT_EQ(root.filesize, n);
        Dag dag(store);
        FileReader r(dag, root.cid);
        ASSERT_EQ(r.size(), n);
        Bytes back;
        r.stream([&](ByteView piece) { back.insert(back.end(), piece.begin(), piece.end()); });
        EXPECT_EQ(back, data) << "n=" << n << " trickle=" << trickle << " raw=" << raw;
        if (n > 10) {
          uint8_t buf[4096];
          size_t got = r.read(n / 3, buf, sizeof buf);
          size_t want = std::min<size_t>(sizeof buf, n - n / 3);
          ASSERT_EQ(got, want);
          EXPECT_EQ(0, std::memcmp(buf, data.data() + n / 3, got));
        }
      }
    }
  }
}

TEST(Reader, ListsAndLooksUpBasicAndShardedDirectories) {
  for (uint64_t threshold : {262144ULL, 1ULL}) {
    MemoryStore store;
    std::vector<DirEntry> entries;
    for (int i = 0; i < 500; ++i) {
      Bytes content = to_bytes("file " + std::to_string(i));
      LayoutParams p;
      entries.push_back({"f" + std::to_string(i), import(store, content, p)});
    }
    DirParams dp;
    dp.threshold = threshold;
    NodeInfo dir = build_directory(store, entries, dp, {});
    Dag dag(store);
    NodeStat s = dag.stat(dir.cid);
    EXPECT_EQ(s.kind, NodeKind::kDirectory);
    EXPECT_EQ(s.hamt, threshold == 1);
    size_t count = 0;
    dag.list(dir.cid, [&](const DirEntryRef&) { ++count; });
    EXPECT_EQ(count, 500U);
    for (int i : {0, 77, 499}) {
      auto c = dag.lookup(dir.cid, "f" + std::to_string(i));
      ASSERT_TRUE(c.has_value());
      EXPECT_EQ(*c, entries[static_cast<size_t>(i)].node.cid);
    }
    EXPECT_FALSE(dag.lookup(dir.cid, "nope").has_value());
    EXPECT_EQ(dag.resolve(dir.cid, "/f7/"), entries[7].node.cid);
    EXPECT_THROW(dag.resolve(dir.cid, "f7/x"), Error);
    EXPECT_THROW(dag.resolve(dir.cid, "../f7"), Error);
  }
}

TEST(Reader, RefusesLyingFileNodes) {
  MemoryStore store;
  Cid leaf = Cid::of(1, kCodecRaw, as_bytes("abc"));
  store.put(leaf, as_bytes("abc"));
  auto make = [&](uint64_t claimed_block, uint64_t filesize) {
    dagpb::Node n;
    n.links.push_back({leaf, std::string(), 3});
    unixfs_pb::Data d;
    d.type = unixfs_pb::Type::kFile;
    d.filesize = filesize;
    d.blocksizes = {claimed_block};
    n.data = unixfs_pb::encode(d);
    Bytes b = dagpb::encode(n);
    Cid c = Cid::of(0, kCodecDagPb, b);
    store.put(c, b);
    return c;
  };
  Dag dag(store);
  EXPECT_THROW(dag.stat(make(3, 4)), Error);  // filesize != sum
  Cid liar = make(1ULL << 40, 1ULL << 40);    // child far smaller than claimed
  FileReader r(dag, liar);
  EXPECT_THROW(r.stream([](ByteView) {}), Error);
  Cid missing = Cid::of(1, kCodecRaw, as_bytes("absent"));
  EXPECT_THROW(dag.stat(missing), NotFound);
}

// Found by tests/fuzz/unixfs_dag.cpp: a last leaf longer than its blocksize was cut at the
// file's end by `cat` while `get` refused the file. Every node must hold exactly what its parent
// claims, whatever range is read, and an inner node's own filesize must agree with its blocks.
TEST(Reader, RefusesAChildThatHoldsMoreThanItsParentClaims) {
  MemoryStore store;
  Cid leaf = Cid::of(1, kCodecRaw, as_bytes("abcdef"));
  store.put(leaf, as_bytes("abcdef"));
  auto put_file = [&](const Cid& child, uint64_t blocksize, std::optional<uint64_t> filesize) {
    dagpb::Node n;
    n.links.push_back({child, std::string(), blocksize});
    unixfs_pb::Data d;
    d.type = unixfs_pb::Type::kFile;
    d.filesize = filesize;
    d.blocksizes = {blocksize};
    n.data = unixfs_pb::encode(d);
    Bytes b = dagpb::encode(n);
    Cid c = Cid::of(1, kCodecDagPb, b);
    store.put(c, b);
    return c;
  };
  Dag dag(store);
  Cid cut = put_file(leaf, 3, 3);  // the leaf holds 6 bytes, the file claims 3
  FileReader r(dag, cut);
  EXPECT_EQ(r.size(), 3U);
  EXPECT_THROW(r.stream([](ByteView) {}), Error);
  uint8_t buf[2];
  EXPECT_THROW(r.read(0, buf, sizeof buf), Error);
  // An inner node whose filesize lies, under a root whose blocksize matches its blocks.
  Cid inner = put_file(leaf, 6, 7);
  FileReader outer(dag, put_file(inner, 6, 6));
  EXPECT_THROW(outer.stream([](ByteView) {}), Error);
  // The honest file still reads.
  FileReader ok(dag, put_file(put_file(leaf, 6, 6), 6, std::nullopt));
  std::string got;
  ok.stream([&](ByteView b) { got.append(as_string(b)); });
  EXPECT_EQ(got, "abcdef");
}

TEST(Reader, WalkVisitsEachBlockOnceInPreOrder) {
  MemoryStore store;
  LayoutParams p;
  Bytes data(3000, 'x');  // identical chunks: one leaf CID linked three times
  NodeInfo root = import(store, data, p);
  std::vector<Cid> order;
  walk_dag(store, root.cid, [&](const Cid& c, ByteView) {
    order.push_back(c);
    return true;
  });
  ASSERT_EQ(order.size(), 2U);
  EXPECT_EQ(order[0], root.cid);
}

TEST(Reader, WalkThrowsNotFoundAtAMissingBlock) {
  MemoryStore store;
  NodeInfo root = import(store, random_bytes(3000, 7), LayoutParams{});
  std::vector<Cid> order;
  walk_dag(store, root.cid, [&](const Cid& c, ByteView) {
    order.push_back(c);
    return true;
  });
  ASSERT_EQ(order.size(), 4U);
  store.remove(order[2]);
  EXPECT_THROW(walk_dag(store, root.cid, [](const Cid&, ByteView) { return true; }), NotFound);
}

// An identity CID carries its block, so an export leaves it out, but a dag-pb node inlined that
// way can still link to real blocks, which must be exported.
TEST(Reader, WalkLeavesIdentityBlocksOutButFollowsTheirLinks) {
  MemoryStore store;
  Bytes leaf = to_bytes("a real block");
  Cid leaf_cid = Cid::of(1, kCodecRaw, leaf);
  store.put(leaf_cid, leaf);
  dagpb::Node n;
  n.links.push_back({leaf_cid, std::string("leaf"), leaf.size()});
  Cid inlined = Cid::v1(kCodecDagPb, kHashIdentity, dagpb::encode(n));
  std::vector<Cid> order;
  walk_dag(store, inlined, [&](const Cid& c, ByteView) {
    order.push_back(c);
    return true;
  });
  EXPECT_EQ(order, std::vector<Cid>{leaf_cid});
}

}  // namespace
}  // namespace cidrun::unixfs

namespace cidrun::unixfs {
namespace {

// boxo's balanced layout: all leaves at one depth, the root as shallow as max_links allows, and
// every child subtree but the last of each node completely full.
size_t check_balanced(MemoryStore& store, const Cid& cid, int depth, size_t max_links,
                      bool last_path) {
  auto block = store.get(cid);
  if (depth == 0) return 1;
  dagpb::Node n = dagpb::decode(*block);
  EXPECT_LE(n.links.size(), max_links);
  size_t full = 1;
  for (int i = 0; i < depth - 1; ++i) full *= max_links;
  size_t leaves = 0;
  for (size_t i = 0; i < n.links.size(); ++i) {
    bool last = i + 1 == n.links.size();
    size_t got = check_balanced(store, n.links[i].hash, depth - 1, max_links, last_path && last);
    if (!last || !last_path) {
      EXPECT_EQ(got, full) << "subtree " << i << " at depth " << depth << " not full";
    }
    leaves += got;
  }
  return leaves;
}

TEST(BalancedLayout, MatchesBoxoShapeAcrossDepths) {
  for (size_t max_links : {2UL, 3UL, 4UL}) {
    for (size_t n = 2; n <= 70; ++n) {
      MemoryStore store;
      Bytes data = random_bytes(n * 10, static_cast<unsigned>(n));
      LayoutParams p;
      p.max_links = max_links;
      NodeInfo root = import(store, data, p, 10);
      int depth = 0;
      for (size_t cap = 1; cap < n; cap *= max_links) ++depth;
      EXPECT_EQ(check_balanced(store, root.cid, depth, max_links, true), n)
          << "n=" << n << " max_links=" << max_links;
    }
  }
}

// Read-ahead's question: which blocks of a byte range are missing, without fetching any. Leaves
// come in file order; a missing inner node is named instead of the leaves below it.
TEST(Reader, MissingBlocksOfARangeInFileOrder) {
  MemoryStore full;
  Bytes data = random_bytes(20000, 7);
  LayoutParams p;
  p.max_links = 4;
  p.raw_leaves = true;
  p.cid_version = 1;
  NodeInfo root = import(full, data, p);
  std::vector<Cid> leaves;
  std::vector<Cid> inner;
  walk_dag(full, root.cid, [&](const Cid& c, ByteView) {
    (c.codec() == kCodecRaw ? leaves : inner).push_back(c);
    return true;
  });
  ASSERT_EQ(leaves.size(), 20u);
  MemoryStore partial;  // the structure, no leaves
  for (const auto& c : inner) partial.put(c, *full.get(c));
  Dag dag(partial);
  FileReader r(dag, root.cid);
  std::vector<Cid> got;
  r.missing_blocks(3500, 2000, [&](const Cid& c) { got.push_back(c); });
  EXPECT_EQ(got, (std::vector<Cid>{leaves[3], leaves[4], leaves[5]}));
  got.clear();
  r.missing_blocks(19999, 100, [&](const Cid& c) { got.push_back(c); });
  EXPECT_EQ(got, std::vector<Cid>{leaves[19]});
  got.clear();
  r.missing_blocks(20000, 100, [&](const Cid& c) { got.push_back(c); });
  EXPECT_TRUE(got.empty());
  partial.put(leaves[4], *full.get(leaves[4]));
  got.clear();
  r.missing_blocks(3500, 2000, [&](const Cid& c) { got.push_back(c); });
  EXPECT_EQ(got, (std::vector<Cid>{leaves[3], leaves[5]}));
  // An inner node that is missing stands for everything below it.
  Cid last_inner = inner.back();
  ASSERT_TRUE(partial.remove(last_inner));
  got.clear();
  r.missing_blocks(0, 20000, [&](const Cid& c) { got.push_back(c); });
  EXPECT_NE(std::find(got.begin(), got.end(), last_inner), got.end());
  EXPECT_LT(got.size(), 20u);
}

}  // namespace
}  // namespace cidrun::unixfs
