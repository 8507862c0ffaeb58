#include "multiformats/cid.h"

#include <gtest/gtest.h>

#include "multiformats/multibase.h"
#include "util/error.h"
#include "util/varint.h"

namespace cidrun {
namespace {

TEST(Cid, ParsesAndPrintsV0) {
  const char* text = "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o";
  Cid c = Cid::parse(text);
  EXPECT_EQ(c.version(), 0);
  EXPECT_EQ(c.codec(), kCodecDagPb);
  EXPECT_EQ(c.hash_code(), kHashSha256);
  EXPECT_EQ(c.bytes().size(), 34U);
  EXPECT_EQ(c.str(), text);
}

TEST(Cid, ParsesAndPrintsV1InSeveralBases) {
  const char* text = "bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e";
  Cid c = Cid::parse(text);
  EXPECT_EQ(c.version(), 1);
  EXPECT_EQ(c.codec(), kCodecRaw);
  EXPECT_EQ(c.bytes().size(), 36U);
  EXPECT_EQ(c.str(), text);
  EXPECT_EQ(Cid::parse(c.str('z')), c);
  EXPECT_EQ(Cid::parse(c.str('B')), c);
  EXPECT_EQ(Cid::parse(c.str('k')), c);
  EXPECT_EQ(Cid::parse(c.str('f')), c);
}

TEST(Cid, HashesRawBlocks) {
  // kubo: `echo -n "hello world" | ipfs add --cid-version 1`
  EXPECT_EQ(Cid::of(1, kCodecRaw, as_bytes("hello world")).str(),
            "bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e");
  EXPECT_TRUE(Cid::parse("bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e")
                  .matches(as_bytes("hello world")));
  EXPECT_FALSE(Cid::parse("bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e")
                   .matches(as_bytes("hello World")));
}

TEST(Cid, V0ToV1KeepsTheMultihash) {
  Cid v0 = Cid::parse("QmUNLLsPACCz1vLxQVkXqqLX5R1X345qqfHbsf67hvA3Nn");
  Cid v1 = v0.to_v1();
  EXPECT_EQ(v1.str(), "bafybeiczsscdsbs7ffqz55asqdf3smv6klcw3gofszvwlyarci47bgf354");
  EXPECT_TRUE(std::equal(v0.multihash().begin(), v0.multihash().end(), v1.multihash().begin(),
                         v1.multihash().end()));
}

TEST(Cid, RejectsGarbage) {
  for (const char* bad :
       {"", "Qm", "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff50", "bafy!", "xyz", "b", "zzzz",
        "bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5"}) {
    EXPECT_THROW(Cid::parse(bad), Error) << bad;
  }
  // A sha2-256 multihash must have a 32-byte digest.
  Bytes bad{0x01, 0x55, 0x12, 0x10};
  bad.resize(4 + 16);
  EXPECT_THROW(Cid::from_bytes(bad), Error);
  // Identity CIDs are bounded.
  Bytes big{0x01, 0x55, 0x00};
  put_varint(big, 1 << 20);
  EXPECT_THROW(Cid::from_bytes(big), Error);
  // Trailing garbage.
  Bytes trailing = Cid::of(1, kCodecRaw, as_bytes("x")).bytes();
  trailing.push_back(0);
  EXPECT_THROW(Cid::from_bytes(trailing), Error);
}

TEST(Multibase, Base58LeadingZeros) {
  Bytes data{0, 0, 1, 2, 3};
  EXPECT_EQ(multibase::decode_base58btc(multibase::base58btc(data)), data);
  EXPECT_EQ(multibase::base58btc(Bytes{0, 0}), "11");
}

TEST(Multibase, Base32RoundTripAllLengths) {
  Bytes data;
  for (int i = 0; i < 40; ++i) {
    EXPECT_EQ(multibase::decode_base32(multibase::base32_lower(data)), data);
    EXPECT_EQ(multibase::decode_base32(multibase::base32_upper(data)), data);
    data.push_back(static_cast<uint8_t>(i * 37));
  }
}

}  // namespace
}  // namespace cidrun
