// The multi-source scheduler (SourceSet with several sources): faster sources get more requests,
// a stalled or lying source does not hold a pull back, a source that lacked a block is asked
// again while the block is slow to come from elsewhere, and losers are cancelled.
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <set>
#include <thread>

#include <gtest/gtest.h>

#include "exchange/source_set.h"
#include "util/error.h"

namespace cidrun::exchange {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// A source with a configurable delay per answer (interrupted by cancel), that has every block,
// none, or only after a moment, and may lie.
class FakeSource : public BlockSource {
 public:
  FakeSource(std::string url, std::chrono::milliseconds delay)
      : url_(std::move(url)), delay_(delay) {}
  const std::string& url() const override { return url_; }
  std::optional<Bytes> get(const Cid& cid) override {
    ++asked;
    auto start = Clock::now();
    {
      std::unique_lock l(mu_);
      cv_.wait_for(l, delay_, [&] { return cancelled_.count(cid.str()) > 0; });
      if (cancelled_.erase(cid.str())) {
        ++cancels;
        return std::nullopt;
      }
    }
    if (lie) throw SourceError(url_ + ": sent bytes that do not hash to " + cid.str());
    if (has_after.count() > 0 && Clock::now() - created_ < has_after) return std::nullopt;
    if (!has) return std::nullopt;
    (void)start;
    ++served;
    return Bytes(cid.digest().begin(), cid.digest().end());  // the "block" (tests do not verify)
  }
  void cancel(const Cid& cid) override {
    std::lock_guard l(mu_);
    cancelled_.insert(cid.str());
    cv_.notify_all();
  }

  std::atomic<int> asked{0}, served{0}, cancels{0};
  bool has = true;
  bool lie = false;
  std::chrono::milliseconds has_after{0};

 private:
  std::string url_;
  std::chrono::milliseconds delay_;
  Clock::time_point created_ = Clock::now();
  std::mutex mu_;
  std::condition_variable cv_;
  std::set<std::string> cancelled_;
};

Cid nth(int i) {
  return Cid::of(1, kCodecRaw, as_bytes("block " + std::to_string(i)));
}

struct Pool {
  std::vector<FakeSource*> raw;
  std::unique_ptr<SourceSet> set;
  explicit Pool(std::vector<std::unique_ptr<FakeSource>> sources) {
    std::vector<std::unique_ptr<BlockSource>> v;
    for (auto& s : sources) {
      raw.push_back(s.get());
      v.push_back(std::move(s));
    }
    set = std::make_unique<SourceSet>(std::move(v));
  }
};

void fetch_all(SourceSet& set, int blocks, int threads) {
  std::vector<std::thread> ts;
  ts.reserve(threads);
  std::atomic<int> next{0};
  for (int t = 0; t < threads; ++t) {
    ts.emplace_back([&] {
      Bytes scratch;
      for (int i; (i = next++) < blocks;) set.get_into(nth(i), scratch);
    });
  }
  for (auto& t : ts) t.join();
}

TEST(Scheduler, FasterSourcesGetMore) {
  std::vector<std::unique_ptr<FakeSource>> v;
  v.push_back(std::make_unique<FakeSource>("fast", 2ms));
  v.push_back(std::make_unique<FakeSource>("slow", 40ms));
  Pool p(std::move(v));
  fetch_all(*p.set, 400, 8);
  EXPECT_GT(p.raw[0]->served, 4 * p.raw[1]->served)
      << p.raw[0]->served << " vs " << p.raw[1]->served;
  EXPECT_GT(p.raw[1]->served, 0);  // the slow one still helps
  auto report = p.set->report();
  EXPECT_EQ(report[0].blocks + report[1].blocks, 400u);
}

TEST(Scheduler, StalledSourceIsHedgedAndCancelled) {
  std::vector<std::unique_ptr<FakeSource>> v;
  v.push_back(std::make_unique<FakeSource>("good", 5ms));
  v.push_back(std::make_unique<FakeSource>("stalled", 30s));
  Pool p(std::move(v));
  auto start = Clock::now();
  fetch_all(*p.set, 100, 8);
  EXPECT_LT(Clock::now() - start, 10s);
  EXPECT_EQ(p.raw[0]->served, 100);
  // Whatever was asked of the stalled source was cancelled once answered elsewhere (each attempt
  // ends on its own thread).
  for (int i = 0; i < 100 && p.raw[1]->cancels < p.raw[1]->asked; ++i)
    std::this_thread::sleep_for(10ms);
  EXPECT_EQ(p.raw[1]->cancels, p.raw[1]->asked);
}

TEST(Scheduler, LyingSourceIsDroppedMidPull) {
  std::vector<std::unique_ptr<FakeSource>> v;
  v.push_back(std::make_unique<FakeSource>("liar", 1ms));
  v.push_back(std::make_unique<FakeSource>("honest", 3ms));
  v[0]->lie = true;
  Pool p(std::move(v));
  fetch_all(*p.set, 200, 4);
  EXPECT_EQ(p.raw[1]->served, 200);
  EXPECT_LT(p.raw[0]->asked, 20);  // marked bad after its first lies
}

TEST(Scheduler, AsksAgainAPeerThatLackedABlock) {
  std::vector<std::unique_ptr<FakeSource>> v;
  v.push_back(std::make_unique<FakeSource>("peer", 1ms));
  v.push_back(std::make_unique<FakeSource>("seed", 5s));
  v[0]->has_after = 600ms;  // a peer that gets the block from elsewhere meanwhile
  Pool p(std::move(v));
  Bytes scratch;
  auto start = Clock::now();
  p.set->get_into(nth(1), scratch);
  EXPECT_LT(Clock::now() - start, 3s);
  EXPECT_EQ(p.raw[0]->served, 1);
  // The seed's attempt ends on its own thread once cancelled.
  for (int i = 0; i < 100 && p.raw[1]->cancels == 0; ++i) std::this_thread::sleep_for(10ms);
  EXPECT_EQ(p.raw[1]->cancels, 1);
}

TEST(Scheduler, NoSourceHasIt) {
  std::vector<std::unique_ptr<FakeSource>> v;
  v.push_back(std::make_unique<FakeSource>("a", 1ms));
  v.push_back(std::make_unique<FakeSource>("b", 1ms));
  v[0]->has = v[1]->has = false;
  Pool p(std::move(v));
  Bytes scratch;
  try {
    p.set->get_into(nth(1), scratch);
    FAIL();
  } catch (const NotFound& e) {
    EXPECT_NE(std::string(e.what()).find("a: not found"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace cidrun::exchange
