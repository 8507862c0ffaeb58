// Buzhash chunker: boundaries pinned against boxo's own chunker/buzhash.go (at boxo 8df89a7) run
// on the same generated inputs. kubo's sharness only adds the 14-byte hello.txt with buzhash and
// there is no JS implementation, so these Go-derived lengths are the strongest pin available.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

#include "unixfs/chunker.h"

namespace cidrun::unixfs {
namespace {

constexpr size_t kMin = 128 << 10;
constexpr size_t kMax = 512 << 10;

// splitmix64 stream, little-endian: trivially reproducible in Go for the reference runs.
Bytes random_bytes(uint64_t seed, size_t size) {
  Bytes out;
  out.reserve(size + 8);
  uint64_t st = seed;
  while (out.size() < size) {
    st += 0x9E3779B97F4A7C15ull;
    uint64_t z = st;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    for (int k = 0; k < 8; ++k) out.push_back(static_cast<uint8_t>(z >> (8 * k)));
  }
  out.resize(size);
  return out;
}

// Low-entropy, repetitive input: content-defined chunkers behave differently on it than on noise.
Bytes text_bytes(size_t size) {
  std::string s;
  for (uint64_t i = 0; s.size() < size; ++i) {
    s += "line " + std::to_string(i) + ": the quick brown fox jumps over " +
         std::to_string((i * 7919) % 1000) + " lazy dogs\n";
  }
  s.resize(size);
  return to_bytes(s);
}

struct Chunked {
  std::vector<size_t> lengths;
  Bytes joined;
};

// Chunks data through a real fd, as `add` does.
Chunked chunk(const Bytes& data) {
  FILE* f = std::tmpfile();
  EXPECT_NE(f, nullptr);
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::write(fileno(f), data.data() + off, data.size() - off);
    EXPECT_GT(n, 0);
    off += static_cast<size_t>(n);
  }
  ::lseek(fileno(f), 0, SEEK_SET);
  ByteSource src(fileno(f), "test");
  auto c = make_chunker("buzhash", src);
  Chunked r;
  Bytes b;
  while (c->next(b)) {
    EXPECT_FALSE(b.empty());
    r.lengths.push_back(b.size());
    r.joined.insert(r.joined.end(), b.begin(), b.end());
  }
  EXPECT_TRUE(b.empty());
  EXPECT_FALSE(c->next(b));  // stays at the end
  std::fclose(f);
  return r;
}

// FNV-1a over the chunk lengths: pins long boundary lists compactly.
uint64_t lengths_hash(const std::vector<size_t>& v) {
  uint64_t h = 14695981039346656037ull;
  for (size_t x : v) h = (h ^ x) * 1099511628211ull;
  return h;
}

struct Pinned {
  const char* name;
  Bytes data;
  size_t count;
  uint64_t hash;
  std::vector<size_t> first;  // leading chunk lengths, or all of them
};

TEST(BuzhashChunker, MatchesKuboBoundaries) {
  const Pinned cases[] = {
      // Two 512 KiB max cuts among content cuts.
      {"random-8MiB",
       random_bytes(3, 8389385),
       35,
       0x49f535b8f20a8ae0ull,
       {173919, 221110, 524288, 135110, 213444, 134771, 147294, 135495, 167984,
        132772, 194137, 350376, 272499, 155110, 212292, 134044, 354202, 394316,
        176027, 216847, 132015, 524288, 305102, 274613, 195024, 143094, 304714,
        255509, 299949, 250031, 217225, 344203, 392807, 163841, 140933}},
      // A window of 32 zeros hashes to a value with the low 17 bits clear: cut at exactly MIN.
      {"zeros", Bytes(1572864, 0), 12, 0xcd97898901a86495ull, std::vector<size_t>(12, kMin)},
      {"text",
       text_bytes(3145728),
       12,
       0x56e4f63d45f3d853ull,
       {273341, 165073, 372892, 149781, 241283, 152255, 504043, 194784, 198600, 403519, 239458,
        250699}},
      {"exactly-min", random_bytes(7, 131072), 1, 0xad63bd4c829bb7dfull, {131072}},
      {"300000", random_bytes(8, 300000), 3, 0x03486065ad4e09a1ull, {133853, 166060, 87}},
      {"three-max",
       random_bytes(9, 1572864),
       5,
       0x47d1c4404908c3cfull,
       {435780, 249413, 524288, 242644, 120739}},
      {"random-64MiB",
       random_bytes(10, 64 << 20),
       256,
       0x5790216d6fbd2269ull,
       {314228, 235465, 399524, 405212, 134776, 234547, 280899, 494242}},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    Chunked r = chunk(c.data);
    ASSERT_EQ(r.lengths.size(), c.count);
    EXPECT_EQ(std::vector<size_t>(r.lengths.begin(), r.lengths.begin() + c.first.size()), c.first);
    EXPECT_EQ(lengths_hash(r.lengths), c.hash);
    EXPECT_TRUE(r.joined == c.data);
  }
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

// Invariants: bounds, lossless, deterministic, and content defined (chunking resumes identically
// from any boundary, since the hash restarts per chunk).
TEST(BuzhashChunker, Invariants) {
  uint64_t seed = 200;
  for (size_t size : {kMin, kMin + 1, kMax - 1, kMax, kMax + 1, 2 * kMax, size_t{3 << 20} + 17,
                      size_t{11 << 20} + 99}) {
    SCOPED_TRACE(size);
    Bytes data = random_bytes(++seed, size);
    Chunked r = chunk(data);
    ASSERT_TRUE(r.joined == data);
    for (size_t i = 0; i < r.lengths.size(); ++i) {
      EXPECT_LE(r.lengths[i], kMax);
      if (i + 1 < r.lengths.size()) {
        EXPECT_GE(r.lengths[i], kMin);
      }
    }
    EXPECT_EQ(chunk(data).lengths, r.lengths);
    if (r.lengths.size() > 2) {
      size_t skip = r.lengths[0] + r.lengths[1];
      Chunked tail = chunk(Bytes(data.begin() + static_cast<ptrdiff_t>(skip), data.end()));
      EXPECT_EQ(tail.lengths, std::vector<size_t>(r.lengths.begin() + 2, r.lengths.end()));
    }
  }
}

}  // namespace
}  // namespace cidrun::unixfs
