// CAR reading and writing: round trips, CARv2, and every malformed input the reader must refuse
// without allocating from a claim.
#include "ipld/car.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>

#include "util/error.h"
#include "util/fd.h"
#include "util/varint.h"

namespace cidrun {
namespace {

struct Block {
  Cid cid;
  Bytes data;
};

Block raw_block(std::string_view text) {
  Bytes d = to_bytes(text);
  return {Cid::of(1, kCodecRaw, d), d};
}

// Writes bytes to a temp file and returns an fd positioned at its start.
UniqueFd temp_with(ByteView data) {
  char path[] = "/tmp/car_test_XXXXXX";
  UniqueFd fd(::mkstemp(path));
  ::unlink(path);
  write_full(fd.get(), data.data(), data.size(), path);
  ::lseek(fd.get(), 0, SEEK_SET);
  return fd;
}

Bytes write_car(const std::vector<Cid>& roots, const std::vector<Block>& blocks) {
  char path[] = "/tmp/car_test_XXXXXX";
  UniqueFd fd(::mkstemp(path));
  {
    car::Writer w(fd.get(), roots, path);
    for (const auto& b : blocks) w.add(b.cid, b.data);
    w.flush();
  }
  Bytes out = read_file(path);
  ::unlink(path);
  return out;
}

std::vector<Block> read_all(ByteView car_bytes, std::vector<Cid>* roots = nullptr,
                            int* version = nullptr) {
  UniqueFd fd = temp_with(car_bytes);
  car::Reader r(fd.get(), "test.car");
  if (roots) *roots = r.roots();
  if (version) *version = r.version();
  std::vector<Block> out;
  Block b;
  while (r.next(b.cid, b.data)) out.push_back(b);
  return out;
}

std::string error_of(ByteView car_bytes) {
  try {
    read_all(car_bytes);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(Car, HeaderBytesMatchGoCar) {
  // go-car's header for one CIDv0 root: {roots:[tag42(00||cid)], version:1}.
  Cid root = Cid::parse("QmUNLLsPACCz1vLxQVkXqqLX5R1X345qqfHbsf67hvA3Nn");
  Bytes h = car::encode_header({root});
  std::string hex = to_hex(h);
  EXPECT_EQ(hex.substr(0, 16), "a265726f6f747381");              // map(2) "roots" array(1)
  EXPECT_EQ(hex.substr(16, 10), "d82a582300");                   // tag 42, bytes(35), 0x00 prefix
  EXPECT_EQ(hex.substr(hex.size() - 18), "6776657273696f6e01");  // "version" 1
  auto decoded = car::decode_header(h);
  EXPECT_EQ(decoded.version, 1u);
  ASSERT_EQ(decoded.roots.size(), 1u);
  EXPECT_EQ(decoded.roots[0], root);
}

TEST(Car, RoundTripKeepsOrderAndRoots) {
  std::vector<Block> blocks = {raw_block("a"), raw_block("bb"), raw_block("")};
  Bytes car = write_car({blocks[0].cid, blocks[1].cid}, blocks);
  std::vector<Cid> roots;
  int version = 0;
  auto got = read_all(car, &roots, &version);
  EXPECT_EQ(version, 1);
  ASSERT_EQ(roots.size(), 2u);
  EXPECT_EQ(roots[1], blocks[1].cid);
  ASSERT_EQ(got.size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(got[i].cid, blocks[i].cid);
    EXPECT_EQ(got[i].data, blocks[i].data);
  }
}

TEST(Car, RejectsTruncatedSection) {
  Bytes car = write_car({raw_block("x").cid}, {raw_block("hello world")});
  car.resize(car.size() - 3);
  EXPECT_NE(error_of(car).find("truncated"), std::string::npos) << error_of(car);
}

TEST(Car, RejectsTruncatedHeader) {
  Bytes car = write_car({raw_block("x").cid}, {});
  car.resize(10);
  EXPECT_NE(error_of(car).find("truncated"), std::string::npos) << error_of(car);
}

TEST(Car, RejectsZeroPadding) {
  Bytes car = write_car({raw_block("x").cid}, {raw_block("x")});
  car.insert(car.end(), 16, 0);
  EXPECT_NE(error_of(car).find("zero-length section"), std::string::npos) << error_of(car);
}

TEST(Car, RejectsTrailingGarbage) {
  Bytes car = write_car({raw_block("x").cid}, {raw_block("x")});
  car.push_back(0x05);
  car.push_back(0x01);
  EXPECT_NE(error_of(car), "");
}

TEST(Car, RejectsWrongHash) {
  Block b = raw_block("genuine");
  b.data = to_bytes("tampered");
  Bytes car = write_car({b.cid}, {b});
  EXPECT_NE(error_of(car).find("does not match its hash"), std::string::npos) << error_of(car);
}

TEST(Car, HugeSectionClaimIsRefusedWithoutAllocating) {
  Bytes car = write_car({raw_block("x").cid}, {});
  put_varint(car, 10ull << 30);  // a section "of 10 GiB"
  car.insert(car.end(), 40, 0xaa);
  EXPECT_NE(error_of(car).find("over the 8 MiB limit"), std::string::npos) << error_of(car);
}

TEST(Car, HugeHeaderClaimIsRefused) {
  Bytes car;
  put_varint(car, 1ull << 40);
  car.insert(car.end(), 8, 0xa2);
  EXPECT_NE(error_of(car).find("header length"), std::string::npos) << error_of(car);
}

TEST(Car, RejectsHeaderThatIsNotAMap) {
  Bytes car = {0x02, 0x81, 0x01};
  EXPECT_NE(error_of(car).find("bad header"), std::string::npos) << error_of(car);
}

TEST(Car, RejectsUnsupportedVersion) {
  Bytes cbor = {0xa1, 0x67, 'v', 'e', 'r', 's', 'i', 'o', 'n', 0x03};
  Bytes car;
  put_varint(car, cbor.size());
  car.insert(car.end(), cbor.begin(), cbor.end());
  EXPECT_NE(error_of(car).find("unsupported CAR version 3"), std::string::npos) << error_of(car);
}

TEST(Car, EmptyFileIsAnError) {
  EXPECT_NE(error_of({}), "");
}

Bytes carv2_of(const Bytes& v1, uint64_t padding_before, uint64_t padding_after,
               int64_t size_delta = 0) {
  Bytes out = {0x0a, 0xa1, 0x67, 'v', 'e', 'r', 's', 'i', 'o', 'n', 0x02};
  Bytes header(40, 0);
  uint64_t offset = 11 + 40 + padding_before;
  uint64_t size = v1.size() + static_cast<uint64_t>(size_delta);
  uint64_t index_offset = offset + v1.size() + padding_after;
  for (int i = 0; i < 8; ++i) {
    header[16 + i] = static_cast<uint8_t>(offset >> (8 * i));
    header[24 + i] = static_cast<uint8_t>(size >> (8 * i));
    header[32 + i] = static_cast<uint8_t>(index_offset >> (8 * i));
  }
  out.insert(out.end(), header.begin(), header.end());
  out.insert(out.end(), padding_before, 0);
  out.insert(out.end(), v1.begin(), v1.end());
  out.insert(out.end(), padding_after, 0);
  // A stand-in index after the payload: the reader must not look at it.
  out.insert(out.end(), {0x80, 0x08, 0xff, 0xff});
  return out;
}

TEST(Car, ReadsCarV2PayloadAndIgnoresIndex) {
  std::vector<Block> blocks = {raw_block("one"), raw_block("two")};
  Bytes v1 = write_car({blocks[0].cid}, blocks);
  int version = 0;
  std::vector<Cid> roots;
  auto got = read_all(carv2_of(v1, 7, 5), &roots, &version);
  EXPECT_EQ(version, 2);
  ASSERT_EQ(roots.size(), 1u);
  EXPECT_EQ(roots[0], blocks[0].cid);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[1].data, blocks[1].data);
}

TEST(Car, CarV2SectionCrossingDataSizeIsRefused) {
  Bytes v1 = write_car({raw_block("one").cid}, {raw_block("one")});
  EXPECT_NE(error_of(carv2_of(v1, 0, 0, -2)).find("past the end of the CARv2 data"),
            std::string::npos);
}

TEST(Car, CarV2TruncatedPayloadIsRefused) {
  Bytes v1 = write_car({raw_block("one").cid}, {raw_block("one")});
  Bytes v2 = carv2_of(v1, 0, 0);
  v2.resize(11 + 40 + v1.size() - 2);
  EXPECT_NE(error_of(v2).find("truncated"), std::string::npos) << error_of(v2);
}

TEST(Car, CarV2DataOffsetInsideHeaderIsRefused) {
  Bytes v1 = write_car({raw_block("one").cid}, {raw_block("one")});
  Bytes v2 = carv2_of(v1, 0, 0);
  std::memset(v2.data() + 11 + 16, 0, 8);
  v2[11 + 16] = 20;
  EXPECT_NE(error_of(v2).find("data offset"), std::string::npos) << error_of(v2);
}

}  // namespace
}  // namespace cidrun
