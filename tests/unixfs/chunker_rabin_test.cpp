// Rabin chunker: boundaries pinned against kubo's real chunker code. The expected lengths were
// produced by boxo's Rabin splitter path (github.com/whyrusleeping/chunker at fe64bd2, the version
// boxo's go.mod pins, polynomial 17437180132763653) run on the same generated inputs; the kubo
// CID vectors themselves (t0040-hello-worlds-rabin*) only cover a 14-byte file.
#include <gtest/gtest.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "unixfs/chunker.h"
#include "unixfs/chunker_cases.h"
#include "util/error.h"

namespace cidrun::unixfs {
namespace {

using chunk_cases::chunk;
using chunk_cases::Chunked;
using chunk_cases::random_bytes;
using chunk_cases::text_bytes;

std::vector<chunk_cases::Pinned> pinned_cases() {
  return {
      {"default-random",
       "rabin",
       random_bytes(1, 3158073),
       11,
       0x0e98a96a9c58ba02ull,
       {231728, 393216, 95607, 393216, 393216, 291438, 164650, 393216, 263795, 320144, 217847}},
      {"36-512-1024-random",
       "rabin-36-512-1024",
       random_bytes(2, 200000),
       411,
       0xf527f9049911a507ull,
       {319, 669, 47, 1024, 1024, 697, 655, 170}},
      // avg 1000 is not a power of two: mask 2^9-1 (floor of log2).
      {"avg1000-text",
       "rabin-1000",
       text_bytes(300000),
       239,
       0xa9b9da1aaaade725ull,
       {388, 1290, 1272, 1096, 1500, 1500, 1500, 1500}},
      {"default-zeros",
       "rabin-262144",
       Bytes(1048576, 0),
       13,
       0xb1d106e2983812a7ull,
       {87381, 87381, 87381, 87381, 87381, 87381, 87381, 87381, 87381, 87381, 87381, 87381, 4}},
      // min 16: nothing is skipped, the window starts at the chunk's first byte.
      {"16-32-64-random",
       "rabin-16-32-64",
       random_bytes(5, 5000),
       127,
       0x3cba2f8d7b59a4c9ull,
       {34, 25, 24, 35, 27, 28, 34, 30}},
      {"max-sizes-random",
       "rabin-1048576-2000000-2096896",
       random_bytes(6, 6291456),
       4,
       0xb3473e48e2e0d613ull,
       {2096896, 1130719, 2096896, 966945}},
      {"36-512-1024-text",
       "rabin-36-512-1024",
       text_bytes(4000),
       8,
       0x96f61c9ab9e5fd95ull,
       {174, 214, 1024, 266, 1024, 248, 1024, 26}},
      {"default-random-64MiB",
       "rabin",
       random_bytes(11, 64 << 20),
       248,
       0xbeeb11cc56394b4bull,
       {393216, 275356, 374099, 393216, 393216, 393216, 230539, 393216}},
  };
}

TEST(RabinChunker, MatchesKuboBoundaries) {
  for (const auto& c : pinned_cases()) chunk_cases::expect_pinned(c);
}

// Derived by hand from the Go state machine: after a reset the digest is 1 with that 1 in the
// window; sliding in 16 zero bytes slides the 1 out again, leaving digest 0, which matches any
// mask, so all-zero data is cut at exactly MIN.
TEST(RabinChunker, ZerosCutAtMin) {
  Chunked r = chunk("rabin-100-4096-8192", Bytes(1000, 0));
  EXPECT_EQ(r.lengths, (std::vector<size_t>{100, 100, 100, 100, 100, 100, 100, 100, 100, 100}));
}

TEST(RabinChunker, MinEqualsMaxIsFixedSize) {
  Chunked r = chunk("rabin-100-100-100", random_bytes(3, 1050));
  EXPECT_EQ(r.lengths, (std::vector<size_t>{100, 100, 100, 100, 100, 100, 100, 100, 100, 100, 50}));
}

// The kubo vectors t0040-hello-worlds-rabin and -rabin-36-512-1024: a 14-byte file is one chunk.
TEST(RabinChunker, SmallInputIsOneChunk) {
  for (std::string spec : {"rabin", "rabin-36-512-1024"}) {
    Chunked r = chunk(spec, to_bytes("Hello Worlds!\n"));
    EXPECT_EQ(r.lengths, std::vector<size_t>{14});
  }
  // Exactly MIN bytes: the only tested position is the end, the chunk is the input either way.
  EXPECT_EQ(chunk("rabin-36-512-1024", random_bytes(4, 36)).lengths, std::vector<size_t>{36});
}

TEST(RabinChunker, EmptyInputYieldsNoChunk) {
  EXPECT_TRUE(chunk("rabin", Bytes{}).lengths.empty());
  EXPECT_TRUE(chunk("rabin-16-32-64", Bytes{}).lengths.empty());
}

TEST(RabinChunker, RejectsBadSizes) {
  int fd = ::dup(0);
  ByteSource src(fd, "x");
  EXPECT_THROW(make_rabin_chunker(src, 15, 32, 64), Error);
  EXPECT_THROW(make_rabin_chunker(src, 64, 32, 128), Error);
  EXPECT_THROW(make_rabin_chunker(src, 16, 64, 32), Error);
  EXPECT_THROW(make_rabin_chunker(src, 16, 64, kMaxChunkSize + 1), Error);
  ::close(fd);
}

// Invariants on inputs larger than any read piece.
TEST(RabinChunker, Invariants) {
  struct P {
    size_t min, avg, max;
  };
  const P params[] = {{16, 64, 128},
                      {36, 512, 1024},
                      {1000, 4096, 6000},
                      {87381, 262144, 393216},
                      {300000, 1 << 20, 2096896}};
  uint64_t seed = 100;
  for (const P& p : params) {
    std::string spec = "rabin-" + std::to_string(p.min) + "-" + std::to_string(p.avg) + "-" +
                       std::to_string(p.max);
    for (size_t size : {size_t{0}, size_t{1}, p.min - 1, p.min, p.min + 1, p.max, p.max + 1,
                        size_t{5 << 20} + 12345}) {
      chunk_cases::expect_invariants(spec, p.min, p.max, random_bytes(++seed, size));
    }
  }
}

}  // namespace
}  // namespace cidrun::unixfs
