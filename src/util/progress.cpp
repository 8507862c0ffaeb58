#include "util/progress.h"

#include <unistd.h>

#include <cstdio>

#include "util/units.h"

namespace cidrun {

Progress::Progress(std::string label, uint64_t total, bool enabled)
    : label_(std::move(label)),
      total_(total),
      enabled_(enabled),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_) {}

Progress::~Progress() {
  finish();
}

bool Progress::stderr_is_tty() {
  return ::isatty(STDERR_FILENO) == 1;
}

void Progress::add(uint64_t bytes, uint64_t items) {
  if (!enabled_) return;
  bytes_ += bytes;
  items_ += items;
  auto now = std::chrono::steady_clock::now();
  if (now - last_draw_ < std::chrono::milliseconds(200)) return;
  std::unique_lock lock(mu_, std::try_to_lock);
  if (!lock.owns_lock()) return;
  last_draw_ = now;
  draw(false);
}

void Progress::finish() {
  if (!enabled_ || finished_) return;
  std::lock_guard lock(mu_);
  finished_ = true;
  draw(true);
}

void Progress::draw(bool final) {
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  double rate = secs > 0 ? static_cast<double>(bytes_) / secs : 0;
  char line[256];
  uint64_t total = total_;
  if (total > 0) {
    double pct = 100.0 * static_cast<double>(bytes_) / static_cast<double>(total);
    double eta =
        rate > 0 ? static_cast<double>(total - std::min<uint64_t>(total, bytes_)) / rate : 0;
    std::snprintf(line, sizeof line, "\r%s %s / %s (%.0f%%) %s/s ETA %.0fs\x1b[K", label_.c_str(),
                  format_bytes(static_cast<double>(bytes_)).c_str(),
                  format_bytes(static_cast<double>(total)).c_str(), pct, format_bytes(rate).c_str(),
                  eta);
  } else {
    std::snprintf(line, sizeof line, "\r%s %s %s/s%s\x1b[K", label_.c_str(),
                  format_bytes(static_cast<double>(bytes_)).c_str(), format_bytes(rate).c_str(),
                  items_ ? (" " + std::to_string(items_.load()) + " items").c_str() : "");
  }
  std::fputs(line, stderr);
  if (final) std::fputs("\n", stderr);
  std::fflush(stderr);
}

}  // namespace cidrun
