#include "ipld/dagpb.h"

#include <gtest/gtest.h>

#include <random>

#include "ipld/unixfs_pb.h"
#include "multiformats/cid.h"
#include "util/error.h"

namespace cidrun {
namespace {

TEST(DagPb, EmptyDirectoryIsKubosBytes) {
  dagpb::Node n;
  n.data = Bytes{0x08, 0x01};
  Bytes b = dagpb::encode(n);
  EXPECT_EQ(to_hex(b), "0a020801");
  EXPECT_EQ(Cid::of(0, kCodecDagPb, b).str(), "QmUNLLsPACCz1vLxQVkXqqLX5R1X345qqfHbsf67hvA3Nn");
}

TEST(DagPb, LinksComeBeforeDataAndRoundTrip) {
  dagpb::Node n;
  Cid child = Cid::of(1, kCodecRaw, as_bytes("x"));
  n.links.push_back({child, std::string("a"), 1});
  n.links.push_back({child, std::nullopt, std::nullopt});
  n.data = Bytes{0x08, 0x02};
  Bytes b = dagpb::encode(n);
  EXPECT_EQ(b[0], 0x12);  // field 2 (Links) first
  dagpb::Node d = dagpb::decode(b);
  ASSERT_EQ(d.links.size(), 2U);
  EXPECT_EQ(d.links[0].hash, child);
  EXPECT_EQ(d.links[0].name, "a");
  EXPECT_EQ(d.links[0].tsize, 1U);
  EXPECT_FALSE(d.links[1].name.has_value());
  EXPECT_EQ(d.data, n.data);
  EXPECT_EQ(dagpb::encode(d), b);
}

TEST(DagPb, RejectsNonCanonicalAndMalformed) {
  // Data before Links.
  dagpb::Node n;
  n.links.push_back({Cid::of(1, kCodecRaw, as_bytes("x")), std::string(""), 1});
  Bytes link_first = dagpb::encode(n);
  Bytes data_first{0x0a, 0x00};
  data_first.insert(data_first.end(), link_first.begin(), link_first.end());
  EXPECT_THROW(dagpb::decode(data_first), Error);
  EXPECT_THROW(dagpb::decode(Bytes{0x0a, 0x00, 0x0a, 0x00}), Error);  // two Data fields
  EXPECT_THROW(dagpb::decode(Bytes{0x0a, 0x05, 0x00}), Error);        // truncated
  EXPECT_THROW(dagpb::decode(Bytes{0x1a, 0x00}), Error);              // unknown field 3
  EXPECT_THROW(dagpb::decode(Bytes{0x12, 0x00}), Error);              // link without Hash
  EXPECT_THROW(dagpb::decode(Bytes{0x12, 0x02, 0x0a, 0x00}), Error);  // empty Hash
}

TEST(DagPb, RandomBytesNeverCrash) {
  std::mt19937 rng(42);
  for (int i = 0; i < 20000; ++i) {
    Bytes b(rng() % 64);
    for (auto& c : b) c = static_cast<uint8_t>(rng());
    try {
      dagpb::decode(b);
    } catch (const Error&) {
    }
    try {
      unixfs_pb::decode(b);
    } catch (const Error&) {
    }
  }
}

TEST(UnixfsPb, EmptyFileMatchesGo) {
  unixfs_pb::Data d;
  d.type = unixfs_pb::Type::kFile;
  d.filesize = 0;
  EXPECT_EQ(to_hex(unixfs_pb::encode(d)), "08021800");
}

TEST(UnixfsPb, NegativeMtimeAndNanosRoundTrip) {
  unixfs_pb::Data d;
  d.type = unixfs_pb::Type::kDirectory;
  d.mode = 01777;
  d.mtime = unixfs_pb::UnixTime{-86400, 123};
  auto back = unixfs_pb::decode(unixfs_pb::encode(d));
  EXPECT_EQ(back.mode, 01777U);
  ASSERT_TRUE(back.mtime.has_value());
  EXPECT_EQ(back.mtime->seconds, -86400);
  EXPECT_EQ(back.mtime->nanos, 123U);
}

TEST(UnixfsPb, RejectsBadFanoutAndType) {
  unixfs_pb::Data d;
  d.type = unixfs_pb::Type::kHamtShard;
  d.fanout = 3;
  EXPECT_THROW(unixfs_pb::decode(unixfs_pb::encode(d)), Error);
  EXPECT_THROW(unixfs_pb::decode(Bytes{0x08, 0x09}), Error);
  EXPECT_THROW(unixfs_pb::decode(Bytes{0x18, 0x00}), Error);  // no Type
}

// The one size check of file nodes (cat, get's copier and stat all use it).
TEST(UnixfsPb, CheckedFileSizeAcceptsHonestNodesAndNamesTheLie) {
  Cid c = Cid::of(0, kCodecDagPb, as_bytes("node"));
  EXPECT_EQ(unixfs_pb::checked_file_size(c, 3, {10, 20}, 2, 33), 33u);
  EXPECT_EQ(unixfs_pb::checked_file_size(c, 3, {10, 20}, 2, std::nullopt), 33u);
  EXPECT_EQ(unixfs_pb::checked_file_size(c, 0, {}, 0, 0), 0u);
  auto error = [&](uint64_t own, const std::vector<uint64_t>& sizes, size_t links,
                   std::optional<uint64_t> filesize) {
    try {
      unixfs_pb::checked_file_size(c, own, sizes, links, filesize);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_EQ(error(0, {10}, 2, std::nullopt), c.str() + ": file node has 2 links but 1 blocksizes");
  EXPECT_EQ(error(1, {UINT64_MAX}, 1, std::nullopt), c.str() + ": blocksizes overflow");
  EXPECT_EQ(error(3, {10, 20}, 2, 34),
            c.str() + ": filesize 34 does not match its data and blocksizes (33)");
}

}  // namespace
}  // namespace cidrun
