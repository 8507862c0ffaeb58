// Buzhash chunker: boundaries pinned against boxo's own chunker/buzhash.go (at boxo 8df89a7) run
// on the same generated inputs. kubo's sharness only adds the 14-byte hello.txt with buzhash and
// there is no JS implementation, so these Go-derived lengths are the strongest pin available.
#include <gtest/gtest.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "unixfs/chunker.h"
#include "unixfs/chunker_cases.h"

namespace cidrun::unixfs {
namespace {

constexpr size_t kMin = 128 << 10;
constexpr size_t kMax = 512 << 10;

using chunk_cases::chunk;
using chunk_cases::Chunked;
using chunk_cases::random_bytes;
using chunk_cases::text_bytes;

// The defaults behind the spec "buzhash" (boxo's buzhash.go).
Chunked chunk(const Bytes& data) {
  return chunk("buzhash", data);
}

TEST(BuzhashChunker, MatchesKuboBoundaries) {
  const chunk_cases::Pinned cases[] = {
      // Two 512 KiB max cuts among content cuts.
      {"random-8MiB",
       "buzhash",
       random_bytes(3, 8389385),
       35,
       0x49f535b8f20a8ae0ull,
       {173919, 221110, 524288, 135110, 213444, 134771, 147294, 135495, 167984,
        132772, 194137, 350376, 272499, 155110, 212292, 134044, 354202, 394316,
        176027, 216847, 132015, 524288, 305102, 274613, 195024, 143094, 304714,
        255509, 299949, 250031, 217225, 344203, 392807, 163841, 140933}},
      // A window of 32 zeros hashes to a value with the low 17 bits clear: cut at exactly MIN.
      {"zeros", "buzhash", Bytes(1572864, 0), 12, 0xcd97898901a86495ull,
       std::vector<size_t>(12, kMin)},
      {"text",
       "buzhash",
       text_bytes(3145728),
       12,
       0x56e4f63d45f3d853ull,
       {273341, 165073, 372892, 149781, 241283, 152255, 504043, 194784, 198600, 403519, 239458,
        250699}},
      {"exactly-min", "buzhash", random_bytes(7, 131072), 1, 0xad63bd4c829bb7dfull, {131072}},
      {"300000",
       "buzhash",
       random_bytes(8, 300000),
       3,
       0x03486065ad4e09a1ull,
       {133853, 166060, 87}},
      {"three-max",
       "buzhash",
       random_bytes(9, 1572864),
       5,
       0x47d1c4404908c3cfull,
       {435780, 249413, 524288, 242644, 120739}},
      {"random-64MiB",
       "buzhash",
       random_bytes(10, 64 << 20),
       256,
       0x5790216d6fbd2269ull,
       {314228, 235465, 399524, 405212, 134776, 234547, 280899, 494242}},
  };
  for (const auto& c : cases) chunk_cases::expect_pinned(c);
}

// kubo sharness t0040 "ipfs add --chunker buzhash": hello.txt is one chunk; anything under
// 128 KiB is never split.
TEST(BuzhashChunker, SmallInputIsOneChunk) {
  EXPECT_EQ(chunk(to_bytes("Hello Worlds!\n")).lengths, std::vector<size_t>{14});
  EXPECT_EQ(chunk(Bytes(kMin - 1, 0)).lengths, std::vector<size_t>{kMin - 1});
  EXPECT_EQ(chunk(random_bytes(1, 1)).lengths, std::vector<size_t>{1});
}

TEST(BuzhashChunker, EmptyInputYieldsNoChunk) {
  EXPECT_TRUE(chunk(Bytes{}).lengths.empty());
}

// Derived from the Go loop bound: zeros cut at MIN, so MIN + 40 zero bytes leave a 40-byte tail;
// MIN + MIN - 1 zeros leave MIN - 1, which is under MIN and so is never scanned.
TEST(BuzhashChunker, ZeroTails) {
  EXPECT_EQ(chunk(Bytes(kMin + 40, 0)).lengths, (std::vector<size_t>{kMin, 40}));
  EXPECT_EQ(chunk(Bytes(2 * kMin - 1, 0)).lengths, (std::vector<size_t>{kMin, kMin - 1}));
}

TEST(BuzhashChunker, Invariants) {
  uint64_t seed = 200;
  for (size_t size : {kMin, kMin + 1, kMax - 1, kMax, kMax + 1, 2 * kMax, size_t{3 << 20} + 17,
                      size_t{11 << 20} + 99}) {
    chunk_cases::expect_invariants("buzhash", kMin, kMax, random_bytes(++seed, size));
  }
}

}  // namespace
}  // namespace cidrun::unixfs
