#include "exchange/source_set.h"

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <functional>
#include <thread>

#include "util/log.h"
#include "util/thread_pool.h"

namespace cidrun::exchange {
namespace {

using Clock = std::chrono::steady_clock;

// A SourceError whose message says the bytes were wrong is a lie, not a hiccup.
bool is_lie(const SourceError& e) {
  std::string_view m = e.what();
  return m.find("do not hash") != std::string_view::npos ||
         m.find("block limit") != std::string_view::npos ||
         m.find("larger than") != std::string_view::npos;
}

// A source that took a whole deadline to say nothing: asking it again for the same block would
// cost another one (issue 15: a source that accepted and never answered cost 46 s in retries).
bool is_hang(const SourceError& e) {
  std::string_view m = e.what();
  return m.find("no response within") != std::string_view::npos ||
         m.find("stalled") != std::string_view::npos ||
         m.find("timed out") != std::string_view::npos;
}

std::chrono::milliseconds backoff(int failures, bool lied) {
  if (lied) return std::chrono::minutes(5);
  int shift = std::min(failures, 8);
  return std::chrono::milliseconds(250L << shift);  // 0.5 s ... ~1 min
}

// Threads for scheduled attempts: a request and its hedges run here while the caller waits for
// the first answer. Grows when every thread is busy (a stalled source holds one until its own
// timeout), and a thread idle for a while exits. Process-wide and never destroyed: a SourceSet
// waits for its own attempts before it goes.
class AttemptPool {
 public:
  static AttemptPool& get() {
    static auto* pool = new AttemptPool();
    return *pool;
  }
  void submit(std::function<void()> task) {
    std::unique_lock l(mu_);
    tasks_.push_back(std::move(task));
    if (idle_ == 0) {
      signal_free_thread([this] { work(); }).detach();
    } else {
      cv_.notify_one();
    }
  }

 private:
  void work() {
    std::unique_lock l(mu_);
    for (;;) {
      ++idle_;
      bool got = cv_.wait_for(l, std::chrono::seconds(10), [&] { return !tasks_.empty(); });
      --idle_;
      if (!got) return;
      auto task = std::move(tasks_.front());
      tasks_.pop_front();
      l.unlock();
      task();
      l.lock();
    }
  }
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> tasks_;
  int idle_ = 0;
};

// A request still unanswered after this many times its source's usual answer time is also sent
// to the next best source.
constexpr double kHedgeFactor = 4.0;
constexpr auto kMinHedgeDelay = std::chrono::milliseconds(250);
constexpr auto kMaxHedgeDelay = std::chrono::milliseconds(5000);
// How fast the answer-time average follows change: each answer counts this much.
constexpr double kEwmaWeight = 0.2;
// A source that lacked a block is asked again this long after, while the block is still on its
// way from another source, at most kMaxAskAgain times per request.
constexpr auto kAskAgainDelay = std::chrono::milliseconds(400);
constexpr int kMaxAskAgain = 100;

}  // namespace

struct SourceSet::Request {
  Cid cid;
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  Bytes winner;
  size_t first_source = 0;
  int running = 0;
  bool transient = false;  // some source failed in a way worth retrying
  std::vector<bool> tried;
  std::vector<bool> running_on;
  std::vector<Clock::time_point> lacked_at;  // when a source said it lacked the block
  int asked_again = 0;
  std::string reasons;
};

void SourceSet::cancel(const Cid& cid) {
  for (auto& e : entries_) e.source->cancel(cid);
}

bool SourceSet::can_stream_car() const {
  return std::any_of(entries_.begin(), entries_.end(),
                     [](const Entry& e) { return e.source->can_stream_car(); });
}

void SourceSet::want_soon(std::span<const Cid> cids) {
  if (entries_.size() == 1) entries_[0].source->want_soon(cids);
}

size_t SourceSet::pick_again(const std::shared_ptr<Request>& r) {
  auto now = Clock::now();
  size_t best = static_cast<size_t>(-1);
  double best_ms = 0;
  std::lock_guard rl(r->mu);
  if (r->asked_again >= kMaxAskAgain) return best;
  std::lock_guard l(mu_);
  for (size_t i = 0; i < entries_.size(); ++i) {
    if (r->running_on[i] || r->lacked_at[i] == Clock::time_point{} ||
        now - r->lacked_at[i] < kAskAgainDelay || entries_[i].retry_after > now)
      continue;
    double ms = (entries_[i].inflight + 1) * std::max(entries_[i].ewma_ms, 1.0);
    if (best == static_cast<size_t>(-1) || ms < best_ms) {
      best = i;
      best_ms = ms;
    }
  }
  if (best != static_cast<size_t>(-1)) {
    ++r->asked_again;
    r->lacked_at[best] = {};
    ++entries_[best].inflight;
  }
  return best;
}

SourceSet::~SourceSet() {
  // Attempts that lost a race may still run (a slow source): they use this set's sources.
  std::unique_lock l(mu_);
  idle_cv_.wait(l, [&] { return attempts_running_ == 0; });
}

std::vector<SourceSet::SourceReport> SourceSet::report() const {
  std::lock_guard l(mu_);
  std::vector<SourceReport> out;
  for (const auto& e : entries_)
    out.push_back({e.source->url(), e.blocks, e.bytes, e.hedges_won, e.ewma_ms});
  return out;
}

size_t SourceSet::pick(const std::vector<bool>& tried, Resort resort) {
  std::lock_guard l(mu_);
  auto now = Clock::now();
  double known = 0;
  for (const auto& e : entries_) {
    if (e.ewma_ms > 0 && (known == 0 || e.ewma_ms < known)) known = e.ewma_ms;
  }
  // A source with no answer yet is assumed as fast as the fastest: every source gets tried.
  if (known == 0) known = 1;
  // Healthy sources by expected wait (answer time times the queue ahead), then backing-off
  // ones (a last resort) by when their back-off ends.
  size_t best = static_cast<size_t>(-1);
  std::pair<int, double> best_key{2, 0};
  size_t n = entries_.size();
  for (size_t k = 0; k < n; ++k) {
    size_t i = (k + next_) % n;
    if (tried[i]) continue;
    const Entry& e = entries_[i];
    std::pair<int, double> key =
        e.retry_after <= now
            ? std::pair{0, (e.inflight + 1) * (e.ewma_ms > 0 ? e.ewma_ms : known)}
            : std::pair{1, std::chrono::duration<double>(e.retry_after - now).count()};
    if (key.first == 1 && resort == Resort::kHealthyOnly) continue;
    if (key < best_key) {
      best = i;
      best_key = key;
    }
  }
  ++next_;
  if (best != static_cast<size_t>(-1)) ++entries_[best].inflight;
  return best;
}

void SourceSet::launch(const std::shared_ptr<Request>& r, size_t i) {
  {
    std::lock_guard l(r->mu);
    r->tried[i] = true;
    r->running_on[i] = true;
    ++r->running;
  }
  {
    std::lock_guard l(mu_);
    ++attempts_running_;
  }
  AttemptPool::get().submit([this, r, i] {
    Bytes buf;
    auto t0 = Clock::now();
    std::optional<ByteView> got;
    std::string error;
    bool lie = false, hang = false, failed = false;
    try {
      got = entries_[i].source->get_into(r->cid, buf);
    } catch (const SourceError& e) {
      failed = true;
      lie = is_lie(e);
      hang = is_hang(e);
      error = e.what();
    } catch (const std::exception& e) {
      failed = true;
      error = entries_[i].source->url() + ": " + e.what();
    }
    double ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
    bool lost;
    {
      std::lock_guard rl(r->mu);
      lost = r->done;
    }
    {
      std::lock_guard l(mu_);
      Entry& e = entries_[i];
      --e.inflight;
      // A block's answer time counts, and so does the time a source kept a request that another
      // answered first (it was at least that slow). A quick "not found" says nothing of speed.
      if (!failed && (got || lost))
        e.ewma_ms = e.ewma_ms == 0 ? ms : e.ewma_ms * (1 - kEwmaWeight) + ms * kEwmaWeight;
    }
    if (failed) {
      record(i, false, lie, error);
    } else if (got) {
      record(i, true, false, "");
    }
    std::vector<size_t> losers;
    {
      std::lock_guard l(r->mu);
      --r->running;
      r->running_on[i] = false;
      if (got && !r->done) {
        for (size_t j = 0; j < r->running_on.size(); ++j) {
          if (r->running_on[j]) losers.push_back(j);
        }
        r->done = true;
        if (got->data() == buf.data() && got->size() == buf.size()) {
          r->winner = std::move(buf);
        } else {
          r->winner.assign(got->begin(), got->end());
        }
        std::lock_guard m(mu_);
        Entry& e = entries_[i];
        ++e.blocks;
        e.bytes += r->winner.size();
        if (i != r->first_source) ++e.hedges_won;
      } else if (!got) {
        r->reasons += "; " + (failed ? error : entries_[i].source->url() + ": not found");
        // Asking a liar, or a source that hung, again for the same block cannot help.
        r->transient |= failed && !lie && !hang;
        if (!failed) r->lacked_at[i] = Clock::now();
      }
      r->cv.notify_all();
    }
    // The block is here: the slower attempts stop, and their peers forget the want.
    for (size_t j : losers) entries_[j].source->cancel(r->cid);
    std::lock_guard l(mu_);
    --attempts_running_;
    idle_cv_.notify_all();
  });
}

ByteView SourceSet::get_scheduled(const Cid& cid, Bytes& scratch) {
  for (int round = 0; round <= retries_; ++round) {
    auto r = std::make_shared<Request>();
    r->cid = cid;
    r->tried.assign(entries_.size(), false);
    r->running_on.assign(entries_.size(), false);
    r->lacked_at.assign(entries_.size(), Clock::time_point{});
    size_t first = pick(r->tried);
    if (first == static_cast<size_t>(-1)) break;
    r->first_source = first;
    auto hedge_delay = [&](size_t i) {
      double ewma;
      {
        std::lock_guard l(mu_);
        ewma = entries_[i].ewma_ms;
      }
      if (ewma == 0) return std::chrono::duration_cast<Clock::duration>(std::chrono::seconds(1));
      auto d = std::chrono::duration_cast<Clock::duration>(
          std::chrono::duration<double, std::milli>(ewma * kHedgeFactor));
      return std::clamp<Clock::duration>(d, kMinHedgeDelay, kMaxHedgeDelay);
    };
    launch(r, first);
    auto hedge_at = Clock::now() + hedge_delay(first);
    std::unique_lock l(r->mu);
    for (;;) {
      r->cv.wait_until(l, hedge_at, [&] { return r->done || r->running == 0; });
      if (r->done) {
        scratch.swap(r->winner);
        return scratch;
      }
      bool all_failed = r->running == 0;
      if (!all_failed && Clock::now() < hedge_at) continue;
      l.unlock();
      size_t next = pick(r->tried, all_failed ? Resort::kAny : Resort::kHealthyOnly);
      // Nothing new to try: while the block is on its way from a slower source, ask again one
      // that lacked it (it may have it by now).
      if (next == static_cast<size_t>(-1) && !all_failed) next = pick_again(r);
      l.lock();
      if (next == static_cast<size_t>(-1)) {
        if (all_failed) break;
        hedge_at = Clock::now() + kAskAgainDelay;
        continue;
      }
      l.unlock();
      launch(r, next);
      hedge_at = Clock::now() + std::min<Clock::duration>(hedge_delay(next), kAskAgainDelay * 4);
      l.lock();
    }
    std::string reasons = r->reasons;
    bool transient = r->transient;
    l.unlock();
    if (!transient) {
      throw NotFound("block " + cid.str() + " not found" +
                     (reasons.empty() ? "" : " (" + reasons.substr(2) + ")"));
    }
    if (round == retries_) {
      throw NotFound("block " + cid.str() + " not found" +
                     (reasons.empty() ? "" : " (" + reasons.substr(2) + ")"));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200 << round));
  }
  throw NotFound("block " + cid.str() + " not found (no source left to ask)");
}

SourceSet::SourceSet(std::vector<std::unique_ptr<BlockSource>> sources, int retries)
    : retries_(retries) {
  for (auto& s : sources) entries_.push_back(Entry{std::move(s)});
}

std::shared_ptr<SourceSet> SourceSet::open(const std::vector<std::string>& urls) {
  std::vector<std::unique_ptr<BlockSource>> sources;
  std::vector<std::string> seen;
  for (const auto& u : urls) {
    if (u.empty() || std::find(seen.begin(), seen.end(), u) != seen.end()) continue;
    seen.push_back(u);
    sources.push_back(open_source(u));
  }
  return std::make_shared<SourceSet>(std::move(sources));
}

bool SourceSet::codes() const {
  for (const auto& e : entries_) {
    if (e.source->can_stream_car() && e.source->codes()) return true;
  }
  return false;
}

std::vector<std::string> SourceSet::urls() const {
  std::vector<std::string> out;
  for (const auto& e : entries_) out.push_back(e.source->url());
  return out;
}

std::vector<size_t> SourceSet::order() {
  std::lock_guard l(mu_);
  auto now = Clock::now();
  std::vector<size_t> ready, waiting;
  for (size_t i = 0; i < entries_.size(); ++i) {
    (entries_[i].retry_after <= now ? ready : waiting).push_back(i);
  }
  std::stable_sort(waiting.begin(), waiting.end(), [&](size_t a, size_t b) {
    return entries_[a].retry_after < entries_[b].retry_after;
  });
  // Healthy sources take turns being asked first, so a parallel fetch spreads over all of them.
  if (ready.size() > 1) {
    std::rotate(ready.begin(), ready.begin() + static_cast<std::ptrdiff_t>(next_++ % ready.size()),
                ready.end());
  }
  ready.insert(ready.end(), waiting.begin(), waiting.end());
  return ready;
}

void SourceSet::record(size_t i, bool ok, bool lied, const std::string& why) {
  std::lock_guard l(mu_);
  Entry& e = entries_[i];
  if (ok) {
    e.failures = 0;
    e.retry_after = {};
    return;
  }
  ++e.failures;
  e.retry_after = Clock::now() + backoff(e.failures, lied);
  // A dead source fails every retry and every parallel request: say so once per run of failures
  // (the final error lists what each source said). Wrong bytes are always worth a line.
  if (lied || e.failures == 1) {
    log::warn(std::string(lied ? "bad source: " : "source failed: ") + why);
  } else {
    log::debug("source failed again (" + std::to_string(e.failures) + " in a row): " + why);
  }
}

void SourceSet::penalize(const std::string& url, const std::string& why, bool lied) {
  for (size_t i = 0; i < entries_.size(); ++i) {
    if (entries_[i].source->url() == url) record(i, false, lied, why);
  }
}

Bytes SourceSet::get(const Cid& cid) {
  Bytes b;
  ByteView v = get_into(cid, b);
  if (v.data() != b.data()) return Bytes(v.begin(), v.end());
  b.resize(v.size());
  return b;
}

ByteView SourceSet::get_into(const Cid& cid, Bytes& scratch) {
  if (cid.is_identity()) return cid.digest();
  if (entries_.size() > 1) return get_scheduled(cid, scratch);
  std::string reasons;
  for (int round = 0; round <= retries_; ++round) {
    reasons.clear();
    bool transient = false;
    for (size_t i : order()) {
      BlockSource& s = *entries_[i].source;
      try {
        if (auto data = s.get_into(cid, scratch)) {
          record(i, true, false, "");
          return *data;
        }
        reasons += "; " + s.url() + ": not found";
      } catch (const SourceError& e) {
        bool lie = is_lie(e);
        record(i, false, lie, e.what());
        reasons += "; " + std::string(e.what());
        // Asking a liar, or a source that hung, again for the same block cannot help.
        transient |= !lie && !is_hang(e);
      }
    }
    if (!transient) break;  // every source honestly said "don't have it": retrying won't help
    std::this_thread::sleep_for(std::chrono::milliseconds(200 << round));
  }
  if (entries_.empty())
    reasons = "; no block sources configured (--from, CIDRUN_SOURCES or config.json)";
  throw NotFound("block " + cid.str() + " not found" +
                 (reasons.empty() ? "" : " (" + reasons.substr(2) + ")"));
}

bool SourceSet::stream_car(const Cid& root, DagScope scope, const CarBlockHandler& on_block) {
  for (size_t i : order()) {
    BlockSource& s = *entries_[i].source;
    if (!s.can_stream_car()) continue;
    try {
      if (s.get_car(root, scope, on_block)) {
        record(i, true, false, "");
        return true;
      }
    } catch (const SourceError& e) {
      record(i, false, is_lie(e), e.what());
    }
  }
  return false;
}

}  // namespace cidrun::exchange
