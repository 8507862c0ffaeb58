#include "util/stream.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <array>

#include "util/error.h"
#include "util/stream_test_support.h"

namespace cidrun {
namespace {

using stream_test::random_data;
using stream_test::read_all;

// Gives its bytes a few at a time, as a pipe or socket would.
class DribbleSource : public ByteSource {
 public:
  DribbleSource(ByteView data, size_t step) : data_(data), step_(step) {}
  size_t read(uint8_t* buf, size_t n) override {
    size_t take = std::min({n, step_, data_.size() - pos_});
    std::copy_n(data_.data() + pos_, take, buf);
    pos_ += take;
    return take;
  }

 private:
  ByteView data_;
  size_t step_;
  size_t pos_ = 0;
};

TEST(Stream, MemorySourceGivesItsBytesThenZeroForever) {
  Bytes data = random_data(1000, 1);
  MemorySource src(data);
  EXPECT_EQ(read_all(src, 7), data);
  uint8_t b = 0;
  EXPECT_EQ(src.read(&b, 1), 0u);
  EXPECT_EQ(src.read(&b, 1), 0u);
}

TEST(Stream, ReadFillCollectsShortReads) {
  Bytes data = random_data(100, 2);
  DribbleSource src(data, 3);
  Bytes buf(64);
  EXPECT_EQ(read_fill(src, buf.data(), buf.size()), 64u);
  EXPECT_TRUE(std::equal(buf.begin(), buf.end(), data.begin()));
  EXPECT_EQ(read_fill(src, buf.data(), buf.size()), 36u);
  EXPECT_EQ(read_fill(src, buf.data(), buf.size()), 0u);
}

// Counts the reads that reach it.
class CountingReads : public ByteSource {
 public:
  explicit CountingReads(ByteView data) : mem_(data) {}
  size_t read(uint8_t* buf, size_t n) override {
    ++reads;
    largest = std::max(largest, n);
    return mem_.read(buf, n);
  }
  size_t reads = 0;
  size_t largest = 0;

 private:
  MemorySource mem_;
};

TEST(Stream, BufferedSourceServesSmallReadsAndPassesBigOnes) {
  Bytes data = random_data(100000, 8);
  CountingReads inner(data);
  BufferedSource buffered(inner, 4096);
  Bytes out(data.size());
  size_t pos = 0;
  for (int i = 0; i < 8; ++i) pos += read_fill(buffered, out.data() + pos, 512);  // one refill
  EXPECT_EQ(inner.reads, 1u);
  pos += read_fill(buffered, out.data() + pos, 50000);  // the buffer's rest, then straight through
  EXPECT_EQ(inner.largest, 50000u);
  pos += read_fill(buffered, out.data() + pos, out.size() - pos);
  EXPECT_EQ(pos, data.size());
  EXPECT_EQ(out, data);
  uint8_t b = 0;
  EXPECT_EQ(buffered.read(&b, 1), 0u);
}

TEST(Stream, CopyAndDrainCountEveryByte) {
  Bytes data = random_data(700000, 3);
  MemorySource a(data);
  MemorySink sink;
  EXPECT_EQ(copy(a, sink), data.size());
  EXPECT_EQ(sink.data(), data);
  EXPECT_FALSE(sink.finished());
  MemorySource b(data);
  EXPECT_EQ(drain(b), data.size());
}

TEST(Stream, FdSourceAndSinkThroughAPipe) {
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  UniqueFd r(fds[0]);
  UniqueFd w(fds[1]);
  Bytes data = random_data(4000, 4);
  FdSink sink(w.get(), "pipe");
  sink.write(data);
  w.reset();
  FdSource src(r.get(), "pipe");
  EXPECT_EQ(read_all(src), data);
}

TEST(Stream, FdSourceErrorNamesTheStream) {
  FdSource src(-1, "layer.tar");
  uint8_t b = 0;
  try {
    src.read(&b, 1);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "read layer.tar: Bad file descriptor");
  }
}

TEST(Stream, HashingAndCountingSeeWhatPasses) {
  Bytes data = random_data(123457, 5);
  MemorySource mem(data);
  HashingSource hashing(mem);
  CountingSource counting(hashing);
  EXPECT_EQ(read_all(counting, 1000), data);
  EXPECT_EQ(counting.count(), data.size());
  EXPECT_EQ(hashing.digest(), sha256(data));

  MemorySink out;
  HashingSink hsink(out);
  CountingSink csink(hsink);
  csink.write(ByteView(data).first(100));
  csink.write(ByteView(data).subspan(100));
  csink.finish();
  EXPECT_TRUE(out.finished());  // finish() reaches the bottom sink
  EXPECT_EQ(out.data(), data);
  EXPECT_EQ(csink.count(), data.size());
  EXPECT_EQ(hsink.digest(), sha256(data));
}

TEST(Stream, VerifyingSourceAcceptsTheExpectedBlob) {
  Bytes data = random_data(5000, 6);
  MemorySource mem(data);
  VerifyingSource v(mem, {.size = data.size(), .sha256 = sha256(data), .what = "blob"});
  EXPECT_EQ(read_all(v, 999), data);
  EXPECT_TRUE(v.verified());
}

TEST(Stream, VerifyingSourceRefusesWrongSizeOrDigest) {
  Bytes data = random_data(5000, 7);
  auto message = [&](ExpectedBlob expected) {
    MemorySource mem(data);
    VerifyingSource v(mem, std::move(expected));
    try {
      read_all(v, 1000);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_EQ(message({.size = 4000, .sha256 = sha256(data), .what = "layer x"}),
            "layer x: more than the 4000 bytes expected");
  EXPECT_EQ(message({.size = 6000, .sha256 = sha256(data), .what = "layer x"}),
            "layer x: ends after 5000 bytes, expected 6000");
  Sha256Digest wrong = sha256(as_bytes("other"));
  EXPECT_EQ(message({.size = 5000, .sha256 = wrong, .what = "layer x"}),
            "layer x: digest mismatch: the bytes hash to sha256:" + to_hex(sha256(data)) +
                ", expected sha256:" + to_hex(wrong));
}

TEST(Stream, MemorySinkRefusesWritesAfterFinish) {
  MemorySink sink;
  sink.finish();
  EXPECT_THROW(sink.write(as_bytes("x")), Error);
}

}  // namespace
}  // namespace cidrun
