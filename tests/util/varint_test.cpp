#include "util/varint.h"

#include <gtest/gtest.h>

#include "util/bytes.h"
#include "util/error.h"

namespace cidrun {
namespace {

TEST(Varint, RoundTripsBoundaries) {
  for (uint64_t v : {0ULL, 1ULL, 127ULL, 128ULL, 16383ULL, 16384ULL, (1ULL << 63), ~0ULL}) {
    Bytes b;
    put_varint(b, v);
    EXPECT_EQ(b.size(), varint_size(v));
    size_t pos = 0;
    auto got = get_varint(b, pos);
    ASSERT_TRUE(got.has_value()) << v;
    EXPECT_EQ(*got, v);
    EXPECT_EQ(pos, b.size());
  }
}

TEST(Varint, RejectsTruncatedOverlongAndNonMinimal) {
  size_t pos = 0;
  Bytes truncated{0x80};
  EXPECT_FALSE(get_varint(truncated, pos).has_value());
  pos = 0;
  Bytes overflow(10, 0xff);
  overflow.push_back(0x01);
  EXPECT_FALSE(get_varint(overflow, pos).has_value());
  pos = 0;
  Bytes eleventh{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02};
  EXPECT_FALSE(get_varint(eleventh, pos).has_value());
  pos = 0;
  Bytes nonminimal{0x81, 0x00};
  EXPECT_FALSE(get_varint(nonminimal, pos).has_value());
  pos = 0;
  EXPECT_EQ(get_varint(nonminimal, pos, /*minimal=*/false), 1U);
}

TEST(Hex, RoundTripAndErrors) {
  EXPECT_EQ(to_hex(from_hex("00ff10")), "00ff10");
  EXPECT_THROW(from_hex("0"), Error);
  EXPECT_THROW(from_hex("zz"), Error);
}

}  // namespace
}  // namespace cidrun
