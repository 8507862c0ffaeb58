// Hostile DAGs against the reader: few blocks that describe an enormous structure (one node
// linked many times over), shapes deeper than anything real. Each must give an error or the
// right bytes after a bounded number of block reads: the store here counts them and throws
// (something that is not a cidrun::Error) past a budget, so a walk that would run for ever
// fails the test instead of hanging it.
#include <gtest/gtest.h>

#include <stdexcept>
#include <string>

#include "ipld/dagpb.h"
#include "ipld/unixfs_pb.h"
#include "store/memstore.h"
#include "unixfs/reader.h"
#include "util/error.h"

namespace cidrun::unixfs {
namespace {

struct BudgetExceeded : std::runtime_error {
  BudgetExceeded() : std::runtime_error("read budget exceeded: the walk does not end") {}
};

class BudgetStore : public MemoryStore {
 public:
  std::optional<Bytes> get(const Cid& cid) override {
    spend();
    return MemoryStore::get(cid);
  }
  bool has(const Cid& cid) override {
    spend();
    return MemoryStore::has(cid);
  }
  void reset(size_t budget) {
    budget_ = budget;
    used = 0;
  }
  size_t used = 0;

 private:
  void spend() {
    if (++used > budget_) throw BudgetExceeded();
  }
  size_t budget_ = SIZE_MAX;
};

Cid put_raw(MemoryStore& s, std::string_view bytes) {
  Cid c = Cid::of(1, kCodecRaw, as_bytes(bytes));
  s.put(c, as_bytes(bytes));
  return c;
}

Cid put_node(MemoryStore& s, std::vector<dagpb::Link> links, const unixfs_pb::Data& data) {
  dagpb::Node n;
  n.links = std::move(links);
  n.data = unixfs_pb::encode(data);
  Bytes b = dagpb::encode(n);
  Cid c = Cid::of(1, kCodecDagPb, b);
  s.put(c, b);
  return c;
}

// A file node whose children are `child` twice, each claiming `half` bytes.
Cid twice(MemoryStore& s, const Cid& child, uint64_t half) {
  return put_node(
      s, {{child, std::string(), half}, {child, std::string(), half}},
      {.type = unixfs_pb::Type::kFile, .filesize = 2 * half, .blocksizes = {half, half}});
}

// Empty nodes, each linking the next twice, 64 levels: 2^64 paths through 65 blocks, all
// claimed (and holding) 0 bytes, between two real leaves.
TEST(HostileDag, ZeroSizedDiamondInsideAFileIsNotWalked) {
  BudgetStore s;
  Cid empty = put_raw(s, "");
  for (int i = 0; i < 64; ++i) empty = twice(s, empty, 0);
  Cid abc = put_raw(s, "abc");
  Cid def = put_raw(s, "def");
  Cid file =
      put_node(s, {{abc, std::string(), 3}, {empty, std::string(), 0}, {def, std::string(), 3}},
               {.type = unixfs_pb::Type::kFile, .filesize = 6, .blocksizes = {3, 0, 3}});
  Dag dag(s);
  s.reset(100);
  FileReader r(dag, file);
  char buf[8] = {};
  EXPECT_EQ(r.read(0, reinterpret_cast<uint8_t*>(buf), sizeof buf), 6U);
  EXPECT_EQ(std::string(buf, 6), "abcdef");
  // Read-ahead's walk over the same range, everything present: nothing to name, and it ends.
  s.reset(100);
  size_t named = 0;
  r.missing_blocks(0, 6, [&](const Cid&) { ++named; });
  EXPECT_EQ(named, 0U);
}

// 60 levels of a node linking the next twice over a 1-byte leaf: a file of 2^60 bytes in 61
// blocks. Its size is what it claims; a read anywhere costs one block per level and byte; the
// read-ahead walk over a 16 MiB window stops at its budget instead of naming the leaf 16M times.
TEST(HostileDag, DiamondFileReadsAreBoundedByTheRange) {
  BudgetStore s;
  Cid leaf = put_raw(s, "x");
  Cid top = leaf;
  for (int i = 0; i < 60; ++i) top = twice(s, top, uint64_t{1} << i);
  Dag dag(s);
  FileReader r(dag, top);
  EXPECT_EQ(r.size(), uint64_t{1} << 60);
  s.reset(1000);
  uint8_t buf[4] = {};
  EXPECT_EQ(r.read((uint64_t{1} << 59) - 2, buf, sizeof buf), 4U);
  EXPECT_EQ(std::string(reinterpret_cast<char*>(buf), 4), "xxxx");

  s.remove(leaf);
  s.reset(4 * FileReader::kMaxMissingBlocksVisits);
  size_t named = 0;
  r.missing_blocks(0, 16 << 20, [&](const Cid& c) {
    EXPECT_EQ(c, leaf);
    ++named;
  });
  EXPECT_GT(named, 0U);
  EXPECT_LE(named, FileReader::kMaxMissingBlocksVisits);
}

// The same shape with big nodes (long link names pad each to 64 KiB): a read of 128 KiB would
// visit 2^17 of them, 8 GiB of blocks. The read fails on its cost instead.
TEST(HostileDag, ReadsThatCostFarMoreThanTheirLengthFail) {
  BudgetStore s;
  Cid top = put_raw(s, "x");
  std::string pad(32 << 10, 'p');
  for (int i = 0; i < 30; ++i) {
    uint64_t half = uint64_t{1} << i;
    top = put_node(
        s, {{top, pad + "a", half}, {top, pad + "b", half}},
        {.type = unixfs_pb::Type::kFile, .filesize = 2 * half, .blocksizes = {half, half}});
  }
  Dag dag(s);
  FileReader r(dag, top);
  std::vector<uint8_t> buf(128 << 10);
  s.reset(10000);
  try {
    r.read(0, buf.data(), buf.size());
    ADD_FAILURE() << "a read of 128 KiB parsed 8 GiB of blocks";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("costs more"), std::string::npos) << e.what();
  }
  s.reset(10000);
  EXPECT_EQ(r.read(12345, buf.data(), 16), 16U);  // a small read is cheap, and right
  EXPECT_EQ(buf[15], 'x');
}

// The same with the leaf 1 byte shorter than claimed, and a file node deeper than any real one.
TEST(HostileDag, DiamondAndChainLiesAreErrors) {
  BudgetStore s;
  Cid leaf = put_raw(s, "x");
  Cid top = leaf;
  for (int i = 0; i < 40; ++i) top = twice(s, top, uint64_t{2} << i);  // claims 2 bytes a leaf
  Dag dag(s);
  FileReader r(dag, top);
  s.reset(1000);
  uint8_t buf[16];
  EXPECT_THROW(r.read(100, buf, sizeof buf), Error);

  Cid chain = put_raw(s, "y");
  for (int i = 0; i < 5000; ++i) {
    chain = put_node(s, {{chain, std::string(), 1}},
                     {.type = unixfs_pb::Type::kFile, .filesize = 1, .blocksizes = {1}});
  }
  FileReader deep(dag, chain);
  EXPECT_EQ(deep.size(), 1U);
  s.reset(4 * kMaxDagDepth);
  EXPECT_THROW(deep.read(0, buf, 1), Error);
  s.reset(4 * kMaxDagDepth);
  deep.missing_blocks(0, 1, [](const Cid&) {});  // a guess: stops quietly at the depth limit
}

// A node read must hold exactly what its parent claims, even when the read ends inside it: a
// 5-byte leaf claimed as 3 fails a read of its first byte, and a child claimed empty (skipped,
// not walked) must claim nothing itself.
TEST(HostileDag, EveryNodeReadHoldsWhatItsParentClaims) {
  MemoryStore s;
  Cid five = put_raw(s, "alpha");
  Cid small = put_node(s, {{five, std::nullopt, 5}},
                       {.type = unixfs_pb::Type::kFile, .filesize = 3, .blocksizes = {3}});
  Dag dag(s);
  uint8_t buf[8];
  FileReader r(dag, small);
  EXPECT_EQ(r.size(), 3U);
  EXPECT_THROW(r.read(0, buf, 1), Error);

  Cid four = put_node(s, {{put_raw(s, "abcd"), std::nullopt, 4}},
                      {.type = unixfs_pb::Type::kFile, .filesize = 4, .blocksizes = {4}});
  Cid six = put_node(s, {{put_raw(s, "efghij"), std::nullopt, 6}},
                     {.type = unixfs_pb::Type::kFile, .filesize = 6, .blocksizes = {6}});
  Cid inner = put_node(s, {{four, std::nullopt, 4}, {six, std::nullopt, 4}},
                       {.type = unixfs_pb::Type::kFile, .filesize = 8, .blocksizes = {4, 4}});
  FileReader in(dag, inner);
  EXPECT_EQ(in.read(0, buf, 4), 4U);  // the honest first child alone
  EXPECT_THROW(in.read(4, buf, 1), Error);

  Cid hidden = put_node(s, {{put_raw(s, "abc"), std::nullopt, 3}, {five, std::nullopt, 0}},
                        {.type = unixfs_pb::Type::kFile, .filesize = 3, .blocksizes = {3, 0}});
  FileReader h(dag, hidden);
  EXPECT_THROW(h.read(0, buf, sizeof buf), Error);
}

unixfs_pb::Data shard_data() {
  return {.type = unixfs_pb::Type::kHamtShard, .hash_type = unixfs_pb::kHashMurmur3, .fanout = 256};
}

// A HAMT whose every slot at every level links the same shard: 256^7 listings of one entry
// from 8 blocks. Listing must refuse the second visit of a shard, and a chain of distinct
// shards deeper than the hash's 64 bits must be refused too.
TEST(HostileDag, HamtThatLinksOneShardEverywhereIsRefused) {
  BudgetStore s;
  Cid file = put_raw(s, "data");
  Cid shard = put_node(s, {{file, std::string("00name"), 4}}, shard_data());
  for (int level = 0; level < 7; ++level) {
    std::vector<dagpb::Link> links;
    for (int slot = 0; slot < 256; ++slot) {
      char name[3];
      std::snprintf(name, sizeof name, "%02X", slot);
      links.push_back({shard, std::string(name), 100});
    }
    shard = put_node(s, std::move(links), shard_data());
  }
  Dag dag(s);
  s.reset(100);
  size_t listed = 0;
  try {
    dag.list(shard, [&](const DirEntryRef&) { ++listed; });
    ADD_FAILURE() << "listed " << listed << " entries";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("more than once"), std::string::npos) << e.what();
  }

  // One link per level, 12 levels of fanout 256: deeper than 64 bits of hash can place names.
  Cid chain = put_node(s, {{file, std::string("00name"), 4}}, shard_data());
  for (int level = 0; level < 12; ++level) {
    chain = put_node(s, {{chain, std::string("00"), 100}}, shard_data());
  }
  s.reset(100);
  EXPECT_THROW(dag.list(chain, [](const DirEntryRef&) {}), Error);

  // Fanout 1 uses no bits at all: a lookup down a chain of such shards must stop too.
  unixfs_pb::Data one = shard_data();
  one.fanout = 1;
  Cid ones = put_node(s, {{file, std::string("0name"), 4}}, one);
  for (int level = 0; level < 2 * kMaxDagDepth; ++level) {
    ones = put_node(s, {{ones, std::string("0"), 100}}, one);
  }
  s.reset(4 * kMaxDagDepth);
  EXPECT_THROW(dag.lookup(ones, "name"), Error);
  s.reset(4 * kMaxDagDepth);
  EXPECT_THROW(dag.list(ones, [](const DirEntryRef&) {}), Error);
}

}  // namespace
}  // namespace cidrun::unixfs
