#include "exchange/fetch_progress.h"

#include <cmath>
#include <cstdio>

#include "util/units.h"

namespace cidrun::exchange {

FetchProgress::FetchProgress(std::string label, Mode mode)
    : label_(std::move(label)), mode_(mode), start_(std::chrono::steady_clock::now()) {}

FetchProgress::~FetchProgress() {
  finish();
}

double FetchProgress::seconds() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

void FetchProgress::fetched(uint64_t bytes) {
  fetched_bytes_ += bytes;
  ++fetched_blocks_;
  maybe_draw();
}

void FetchProgress::present(uint64_t bytes) {
  present_bytes_ += bytes;
  ++present_blocks_;
  maybe_draw();
}

void FetchProgress::maybe_draw() {
  if (mode_ == Mode::kNone) return;
  int64_t now = std::chrono::duration_cast<std::chrono::nanoseconds>(
                    std::chrono::steady_clock::now() - start_)
                    .count();
  // Terminals get 5 redraws a second; JSON consumers one line a second.
  int64_t interval = mode_ == Mode::kTerminal ? 200'000'000 : 1'000'000'000;
  int64_t last = last_draw_ns_;
  if (now - last < interval || !last_draw_ns_.compare_exchange_strong(last, now)) return;
  std::unique_lock l(mu_, std::try_to_lock);
  if (l.owns_lock() && !finished_) draw(false);
}

void FetchProgress::finish() {
  if (mode_ == Mode::kNone) return;
  std::lock_guard l(mu_);
  if (finished_) return;
  finished_ = true;
  draw(true);
}

void FetchProgress::draw(bool final) {
  double secs = seconds();
  double rate = secs > 0 ? static_cast<double>(fetched_bytes_) / secs : 0;
  uint64_t done = fetched_bytes_ + present_bytes_;
  uint64_t total = total_;
  double eta = -1;
  if (total > done && rate > 0) eta = static_cast<double>(total - done) / rate;
  if (mode_ == Mode::kJson) {
    std::printf(
        "{\"event\":\"%s\",\"blocks\":%llu,\"fetched_blocks\":%llu,\"bytes\":%llu,"
        "\"fetched_bytes\":%llu,\"total_bytes\":%llu,\"seconds\":%.3f,\"rate\":%.0f,\"eta\":%.1f}"
        "\n",
        final ? "done" : "progress", static_cast<unsigned long long>(blocks()),
        static_cast<unsigned long long>(fetched_blocks_.load()),
        static_cast<unsigned long long>(done),
        static_cast<unsigned long long>(fetched_bytes_.load()),
        static_cast<unsigned long long>(total), secs, rate, eta < 0 ? 0 : eta);
    std::fflush(stdout);
    return;
  }
  std::string line = "\r" + label_ + " " + std::to_string(blocks()) + " blocks, " +
                     format_bytes(static_cast<double>(done));
  if (total > 0) {
    line += " / " + format_bytes(static_cast<double>(total)) + " (" +
            std::to_string(std::min<uint64_t>(100, done * 100 / total)) + "%)";
  }
  line += ", " + format_bytes(rate) + "/s";
  if (!final && eta >= 0) line += ", ETA " + std::to_string(std::lround(eta)) + "s";
  line += "\x1b[K";
  if (final) line += "\n";
  std::fputs(line.c_str(), stderr);
  std::fflush(stderr);
}

}  // namespace cidrun::exchange
