#include "util/stream_read_ahead.h"

#include <algorithm>
#include <cstring>

#include "util/error.h"
#include "util/thread_pool.h"

namespace cidrun {
namespace {
constexpr size_t kBuffers = 4;
constexpr size_t kMinBufferBytes = 4096;
}  // namespace

ReadAheadSource::ReadAheadSource(std::unique_ptr<ByteSource> inner, size_t buffer_bytes)
    : inner_(std::move(inner)), ring_(kBuffers) {
  if (!inner_) throw Error("read-ahead: no source");
  for (Buffer& b : ring_) b.data.resize(std::max(buffer_bytes / kBuffers, kMinBufferBytes));
  thread_ = signal_free_thread([this] { produce(); });
}

ReadAheadSource::~ReadAheadSource() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void ReadAheadSource::produce() {
  for (;;) {
    Buffer* b = nullptr;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return stop_ || filled_ - released_ < ring_.size(); });
      if (stop_) return;
      b = &ring_[filled_ % ring_.size()];
    }
    // The consumer never touches a buffer between its release and the producer's publish.
    size_t n = 0;
    std::exception_ptr error;
    try {
      n = inner_->read(b->data.data(), b->data.size());
    } catch (...) {
      error = std::current_exception();
    }
    {
      std::lock_guard lock(mu_);
      if (error || n == 0) {
        error_ = error;
        ended_ = true;
      } else {
        b->size = n;
        ++filled_;
      }
    }
    cv_.notify_all();
    if (error || n == 0) return;
  }
}

size_t ReadAheadSource::read(uint8_t* buf, size_t n) {
  if (!current_) {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return filled_ > released_ || ended_; });
    if (filled_ == released_) {
      if (error_) std::rethrow_exception(error_);
      return 0;
    }
    current_ = true;
    pos_ = 0;
  }
  Buffer& b = ring_[released_ % ring_.size()];  // released_ only changes on this thread
  size_t take = std::min(n, b.size - pos_);
  std::memcpy(buf, b.data.data() + pos_, take);
  pos_ += take;
  if (pos_ == b.size) {
    current_ = false;
    {
      std::lock_guard lock(mu_);
      ++released_;
    }
    cv_.notify_all();
  }
  return take;
}

}  // namespace cidrun
