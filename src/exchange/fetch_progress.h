// Progress of a DAG fetch: a one-line bar on a terminal (blocks, bytes, rate, ETA), JSON lines
// for machines (`--json`), or nothing. Redraws at most a few times a second, from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>

namespace cidrun::exchange {

class FetchProgress {
 public:
  enum class Mode { kNone, kTerminal, kJson };
  FetchProgress(std::string label, Mode mode);
  ~FetchProgress();
  FetchProgress(const FetchProgress&) = delete;
  FetchProgress& operator=(const FetchProgress&) = delete;

  // A block that had to be fetched (counts toward the rate) or was already present.
  void fetched(uint64_t bytes);
  void present(uint64_t bytes);
  // Expected total bytes of the DAG (from the root's cumulative sizes), 0 when unknown.
  void set_total(uint64_t bytes) { total_ = bytes; }
  void finish();

  uint64_t blocks() const { return fetched_blocks_ + present_blocks_; }
  uint64_t fetched_blocks() const { return fetched_blocks_; }
  uint64_t fetched_bytes() const { return fetched_bytes_; }
  double seconds() const;

 private:
  void maybe_draw();
  void draw(bool final);

  std::string label_;
  Mode mode_;
  std::atomic<uint64_t> total_{0};
  std::atomic<uint64_t> fetched_blocks_{0}, fetched_bytes_{0}, present_blocks_{0},
      present_bytes_{0};
  std::chrono::steady_clock::time_point start_;
  std::atomic<int64_t> last_draw_ns_{0};
  std::mutex mu_;
  bool finished_ = false;
};

}  // namespace cidrun::exchange
