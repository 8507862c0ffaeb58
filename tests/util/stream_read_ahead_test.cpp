#include "util/stream_read_ahead.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "util/error.h"
#include "util/stream_compression.h"
#include "util/stream_test_support.h"

namespace cidrun {
namespace {

using namespace std::chrono_literals;
using stream_test::compressible_data;
using stream_test::random_data;
using stream_test::read_all;

// Owns its bytes (the read-ahead thread reads it after the test body moved on).
class OwnedSource : public ByteSource {
 public:
  OwnedSource(Bytes data, size_t step) : data_(std::move(data)), step_(step) {}
  size_t read(uint8_t* buf, size_t n) override {
    size_t take = std::min({n, step_, data_.size() - pos_});
    std::copy_n(data_.data() + pos_, take, buf);
    pos_ += take;
    return take;
  }

 private:
  Bytes data_;
  size_t step_;
  size_t pos_ = 0;
};

// Gives `good` bytes, then throws.
class FailingSource : public ByteSource {
 public:
  explicit FailingSource(size_t good) : good_(good) {}
  size_t read(uint8_t* buf, size_t n) override {
    if (pos_ == good_) throw Error("disk on fire at byte " + std::to_string(pos_));
    size_t take = std::min(n, good_ - pos_);
    std::fill_n(buf, take, static_cast<uint8_t>(7));
    pos_ += take;
    return take;
  }

 private:
  size_t good_;
  size_t pos_ = 0;
};

// Never ends; each read can be slow. Counts reads in progress so a test can see the thread stop.
class EndlessSource : public ByteSource {
 public:
  EndlessSource(std::chrono::milliseconds delay, std::atomic<int>& alive)
      : delay_(delay), alive_(alive) {
    ++alive_;
  }
  ~EndlessSource() override { --alive_; }
  EndlessSource(const EndlessSource&) = delete;
  EndlessSource& operator=(const EndlessSource&) = delete;
  size_t read(uint8_t* buf, size_t n) override {
    std::this_thread::sleep_for(delay_);
    std::fill_n(buf, n, static_cast<uint8_t>(1));
    return n;
  }

 private:
  std::chrono::milliseconds delay_;
  std::atomic<int>& alive_;
};

TEST(ReadAhead, GivesExactlyTheInnerBytes) {
  for (size_t buffer : {size_t{1}, size_t{16384}, size_t{1} << 20}) {
    for (size_t step : {size_t{1}, size_t{1000}, size_t{1} << 20}) {
      Bytes data = random_data(step == 1 ? 20000 : 3000000, 41);
      ReadAheadSource ra(std::make_unique<OwnedSource>(data, step), buffer);
      ASSERT_EQ(read_all(ra, 7777), data) << buffer << " " << step;
      uint8_t b = 0;
      EXPECT_EQ(ra.read(&b, 1), 0u);
    }
  }
}

TEST(ReadAhead, RunsAnInflaterOnItsThread) {
  Bytes data = compressible_data(5000000, 42);
  MemorySink gz;
  GzipSink sink(gz);
  sink.write(data);
  sink.finish();
  struct Owning : ByteSource {
    explicit Owning(Bytes b) : bytes(std::move(b)), mem(bytes), gzip(mem) {}
    size_t read(uint8_t* buf, size_t n) override { return gzip.read(buf, n); }
    Bytes bytes;
    MemorySource mem;
    GzipSource gzip;
  };
  ReadAheadSource ra(std::make_unique<Owning>(gz.data()), 4 << 20);
  EXPECT_EQ(read_all(ra, 100000), data);
}

TEST(ReadAhead, ErrorsReachTheConsumerAfterTheBytesBeforeThem) {
  ReadAheadSource ra(std::make_unique<FailingSource>(100000), 8192);
  Bytes got;
  std::string error;
  try {
    Bytes buf(3000);
    while (size_t n = ra.read(buf.data(), buf.size()))
      got.insert(got.end(), buf.data(), buf.data() + n);
  } catch (const Error& e) {
    error = e.what();
  }
  EXPECT_EQ(got.size(), 100000u);
  EXPECT_EQ(error, "disk on fire at byte 100000");
  uint8_t b = 0;
  EXPECT_THROW(ra.read(&b, 1), Error);  // and again on every later read
}

TEST(ReadAhead, ImmediateErrorReachesTheConsumer) {
  ReadAheadSource ra(std::make_unique<FailingSource>(0), 8192);
  uint8_t b = 0;
  EXPECT_THROW(ra.read(&b, 1), Error);
}

TEST(ReadAhead, DestructionNeverWaitsForTheConsumer) {
  std::atomic<int> alive = 0;
  auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 50; ++i) {
    // Never read: the producer fills the ring and waits for room.
    ReadAheadSource ra(std::make_unique<EndlessSource>(0ms, alive), 65536);
  }
  {
    ReadAheadSource ra(std::make_unique<EndlessSource>(0ms, alive), 65536);
    Bytes buf(1000);
    for (int i = 0; i < 100; ++i) ASSERT_EQ(read_fill(ra, buf.data(), buf.size()), 1000u);
  }
  EXPECT_EQ(alive.load(), 0);  // the inner source went with its thread
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
}

TEST(ReadAhead, DestructionWaitsOnlyForTheReadInProgress) {
  std::atomic<int> alive = 0;
  auto start = std::chrono::steady_clock::now();
  {
    ReadAheadSource ra(std::make_unique<EndlessSource>(200ms, alive), 65536);
    std::this_thread::sleep_for(50ms);  // the producer is inside a slow read
  }
  auto took = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(alive.load(), 0);
  EXPECT_LT(took, 2s);
}

}  // namespace
}  // namespace cidrun
