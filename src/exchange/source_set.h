// Several block sources used as one. A source that fails is backed off (exponentially, so a dead
// gateway stops costing a timeout per block) and one that sends wrong bytes is marked bad for much
// longer; both remain a last resort, because one bad answer can be a transient fault.
//
// With one source, get() asks it on the caller's thread. With several, each block request is
// scheduled (the scheduler below): it goes to the source expected to answer first, judged by each
// source's recent answer times (an average that follows changes within a few requests) times the
// requests it already has in flight, so faster sources get more of a pull's requests and a source
// that slows down mid-pull gets fewer. A request still unanswered after a few times its source's
// usual answer time is also sent to the next best source (a hedge); the first verified answer
// wins and the others are cancelled (a bitswap peer is told), so a stalled or slow peer never
// holds a pull back. A source that says it lacks a block is skipped for that block at once, and
// asked again after a while if the block is still on its way from a slower source: peers that
// pull the same DAG at the same time fetch blocks from each other instead of each from the
// slowest. Every answer is verified by the source before it counts.
#pragma once

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "exchange/block_source.h"

namespace cidrun::exchange {

class SourceSet {
 public:
  explicit SourceSet(std::vector<std::unique_ptr<BlockSource>> sources, int retries = 2);

  // Opens every URL (duplicates dropped, order kept); throws Error for an unusable one.
  static std::shared_ptr<SourceSet> open(const std::vector<std::string>& urls);

  bool empty() const { return entries_.empty(); }
  // Whether a CAR-capable source answers compressed (BlockSource::codes).
  bool codes() const;
  std::vector<std::string> urls() const;

  // The verified block from the first source that has it. Throws NotFound naming the CID (and
  // what each source said) when none does after the retries.
  Bytes get(const Cid& cid);
  // The same, in scratch (BlockSource::get_into): the view is valid until the next call with
  // scratch.
  ByteView get_into(const Cid& cid, Bytes& scratch);

  // Streams root's DAG in `scope` from the healthiest CAR-capable source, trying the next on
  // failure. Returns true when one stream ran to its end; false when no source could (failures
  // are logged and the sources backed off). Blocks delivered before a failure stay delivered.
  bool stream_car(const Cid& root, DagScope scope, const CarBlockHandler& on_block);

  // Whether any source streams CARs (BlockSource::can_stream_car).
  bool can_stream_car() const;
  // Tells every source to stop waiting for cid (BlockSource::cancel).
  void cancel(const Cid& cid);
  // BlockSource::want_soon, passed on when there is one source: with several, which of them
  // will be asked is the scheduler's choice at get time, and asking all would fetch each block
  // several times.
  void want_soon(std::span<const Cid> cids);

  // Reports a failure found by the caller (e.g. a CAR that lacked blocks or added strangers).
  void penalize(const std::string& url, const std::string& why, bool lied);

  // What each source contributed so far (for summaries and benchmarks).
  struct SourceReport {
    std::string url;
    uint64_t blocks = 0, bytes = 0, hedges_won = 0;
    double answer_ms = 0;  // the recent average answer time
  };
  std::vector<SourceReport> report() const;

  ~SourceSet();

 private:
  struct Entry {
    std::unique_ptr<BlockSource> source;
    int failures = 0;
    std::chrono::steady_clock::time_point retry_after{};
    // Scheduling state (under mu_).
    double ewma_ms = 0;  // 0 until the first answer
    int inflight = 0;
    uint64_t blocks = 0, bytes = 0, hedges_won = 0;
  };
  struct Request;
  ByteView get_scheduled(const Cid& cid, Bytes& scratch);
  // The source to ask next for a request that already tried `tried` (size_t(-1) when none is
  // left); marks it in flight. Backing-off sources only as a last resort (not for a hedge).
  enum class Resort { kHealthyOnly, kAny };
  size_t pick(const std::vector<bool>& tried, Resort resort = Resort::kAny);
  // A source that said it lacked the block long enough ago to ask it again, or size_t(-1).
  size_t pick_again(const std::shared_ptr<Request>& r);
  void launch(const std::shared_ptr<Request>& r, size_t source);
  // Indexes in the order to try: sources not backing off first (rotated), then the others by
  // the time their back-off ends.
  std::vector<size_t> order();
  void record(size_t i, bool ok, bool lied, const std::string& why);

  std::vector<Entry> entries_;
  int retries_;
  size_t next_ = 0;  // rotation among healthy sources (under mu_)
  mutable std::mutex mu_;
  std::condition_variable idle_cv_;
  int attempts_running_ = 0;  // scheduled attempts still running (the destructor waits)
};

}  // namespace cidrun::exchange
