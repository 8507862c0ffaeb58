#include "unixfs/chunker_cases.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>

#include "unixfs/chunker.h"

namespace cidrun::unixfs::chunk_cases {

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

Bytes text_bytes(size_t size) {
  std::string s;
  for (uint64_t i = 0; s.size() < size; ++i) {
    s += "line " + std::to_string(i) + ": the quick brown fox jumps over " +
         std::to_string((i * 7919) % 1000) + " lazy dogs\n";
  }
  s.resize(size);
  return to_bytes(s);
}

Chunked chunk(const std::string& spec, const Bytes& data) {
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
  auto c = make_chunker(spec, src);
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

namespace {

uint64_t lengths_hash(const std::vector<size_t>& v) {
  uint64_t h = 14695981039346656037ull;
  for (size_t x : v) h = (h ^ x) * 1099511628211ull;
  return h;
}

}  // namespace

void expect_pinned(const Pinned& c) {
  SCOPED_TRACE(c.name);
  Chunked r = chunk(c.spec, c.data);
  ASSERT_EQ(r.lengths.size(), c.count);
  EXPECT_EQ(std::vector<size_t>(r.lengths.begin(), r.lengths.begin() + c.first.size()), c.first);
  EXPECT_EQ(lengths_hash(r.lengths), c.hash);
  EXPECT_TRUE(r.joined == c.data);
}

void expect_invariants(const std::string& spec, size_t min, size_t max, const Bytes& data) {
  SCOPED_TRACE(spec + " on " + std::to_string(data.size()) + " bytes");
  Chunked r = chunk(spec, data);
  ASSERT_TRUE(r.joined == data);
  for (size_t i = 0; i < r.lengths.size(); ++i) {
    EXPECT_LE(r.lengths[i], max);
    if (i + 1 < r.lengths.size()) {
      EXPECT_GE(r.lengths[i], min);
    }
  }
  EXPECT_EQ(chunk(spec, data).lengths, r.lengths);
  if (r.lengths.size() > 2) {
    size_t skip = r.lengths[0] + r.lengths[1];
    Chunked tail = chunk(spec, Bytes(data.begin() + static_cast<ptrdiff_t>(skip), data.end()));
    EXPECT_EQ(tail.lengths, std::vector<size_t>(r.lengths.begin() + 2, r.lengths.end()));
  }
}

}  // namespace cidrun::unixfs::chunk_cases
