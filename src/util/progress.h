// A progress line on stderr for long transfers, drawn only when stderr is a terminal (or when
// forced), at most a few times a second so it never costs throughput.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>

namespace cidrun {

class Progress {
 public:
  // total = 0 when unknown. enabled=false makes every call a no-op.
  Progress(std::string label, uint64_t total, bool enabled);
  ~Progress();
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  void add(uint64_t bytes, uint64_t items = 0);
  void set_total(uint64_t total) { total_ = total; }
  void finish();
  static bool stderr_is_tty();

 private:
  void draw(bool final);
  std::string label_;
  std::atomic<uint64_t> total_;
  std::atomic<uint64_t> bytes_{0};
  std::atomic<uint64_t> items_{0};
  bool enabled_;
  bool finished_ = false;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_draw_;
  std::mutex mu_;
};

}  // namespace cidrun
