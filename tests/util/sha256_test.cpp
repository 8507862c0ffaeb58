#include "util/sha256.h"

#include <gtest/gtest.h>

#include <random>
#include <thread>
#include <vector>

namespace cidrun {
namespace {

TEST(Sha256, KnownDigests) {
  EXPECT_EQ(to_hex(sha256(as_bytes(""))),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(to_hex(sha256(as_bytes("abc"))),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(Sha256, IncrementalEqualsOneShot) {
  Sha256 h;
  h.update(as_bytes("a"));
  h.update(as_bytes("bc"));
  EXPECT_EQ(h.finish(), sha256(as_bytes("abc")));
}

Bytes random_bytes(std::mt19937_64& rng, size_t n) {
  Bytes b(n);
  for (auto& x : b) x = static_cast<uint8_t>(rng());
  return b;
}

TEST(Sha256, PairOfKnownDigests) {
  Sha256Digest a{};
  Sha256Digest b{};
  sha256_pair(as_bytes("abc"), as_bytes(""), a, b);
  EXPECT_EQ(to_hex(a), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(to_hex(b), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

// Every length across the padding boundaries (55/56/64 bytes and their multiples), paired with
// every other, and large buffers of unequal length: each digest equals OpenSSL's.
TEST(Sha256, PairEqualsOneAtATime) {
  std::mt19937_64 rng(7);
  Bytes x = random_bytes(rng, 200);
  Bytes y = random_bytes(rng, 200);
  for (size_t i = 0; i <= 200; i += 1) {
    for (size_t j : {size_t{0}, size_t{55}, size_t{56}, size_t{63}, size_t{64}, size_t{119},
                     size_t{120}, size_t{128}, size_t{200}}) {
      ByteView a(x.data(), i);
      ByteView b(y.data(), j);
      Sha256Digest da{};
      Sha256Digest db{};
      sha256_pair(a, b, da, db);
      ASSERT_EQ(da, sha256(a)) << i << " with " << j;
      ASSERT_EQ(db, sha256(b)) << j << " with " << i;
    }
  }
  Bytes big_a = random_bytes(rng, (1 << 20) + 37);
  Bytes big_b = random_bytes(rng, (1 << 19) + 5);
  Sha256Digest da{};
  Sha256Digest db{};
  sha256_pair(big_a, big_b, da, db);
  EXPECT_EQ(da, sha256(big_a));
  EXPECT_EQ(db, sha256(big_b));
}

// Many threads hashing large buffers at once, as a pull's workers do: every digest is right,
// and buffers were hashed in pairs.
TEST(Sha256, SharedFromManyThreadsEqualsOneAtATime) {
  constexpr int kThreads = 8;
  constexpr int kEach = 12;
  std::vector<std::vector<Bytes>> data(kThreads);
  std::mt19937_64 rng(11);
  for (auto& d : data) {
    for (int i = 0; i < kEach; ++i) d.push_back(random_bytes(rng, 200000 + rng() % 900000));
  }
  uint64_t pairs_before = sha256_shared_pairs();
  std::vector<std::vector<Sha256Digest>> got(kThreads);
  std::vector<std::thread> threads;
  threads.reserve(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (const auto& b : data[t]) got[t].push_back(sha256_shared(b));
    });
  }
  for (auto& th : threads) th.join();
  for (int t = 0; t < kThreads; ++t) {
    for (int i = 0; i < kEach; ++i) ASSERT_EQ(got[t][i], sha256(data[t][i])) << t << "/" << i;
  }
  EXPECT_GT(sha256_shared_pairs(), pairs_before);
}

}  // namespace
}  // namespace cidrun
