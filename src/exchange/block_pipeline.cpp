#include "exchange/block_pipeline.h"

#include <memory>

#include "multiformats/cid.h"
#include "util/thread_pool.h"

namespace cidrun::exchange {
namespace {

// Below this, a block is cheaper to hash in place than to copy and hand over.
constexpr size_t kOffloadMin = 64 * 1024;

}  // namespace

BlockPipeline::BlockPipeline(std::string source, const CarBlockHandler& on_block,
                             size_t max_inflight_bytes)
    : source_(std::move(source)), on_block_(on_block), max_inflight_(max_inflight_bytes) {}

BlockPipeline::~BlockPipeline() {
  std::unique_lock l(mu_);
  cv_.wait(l, [&] { return inflight_blocks_ == 0; });
}

void BlockPipeline::fail(std::exception_ptr e, bool handler) {
  std::lock_guard l(mu_);
  if (!failure_) {
    failure_ = std::move(e);
    handler_failed_ = handler;
  }
}

void BlockPipeline::rethrow_failure() {
  std::exception_ptr e;
  {
    std::lock_guard l(mu_);
    e = failure_;
  }
  if (e) std::rethrow_exception(e);
}

void BlockPipeline::submit(const Cid& cid, ByteView data) {
  rethrow_failure();
  ThreadPool& pool = ThreadPool::shared();
  if (cid.codec() != kCodecRaw || data.size() < kOffloadMin || pool.size() < 2) {
    try {
      verify_block(source_, cid, data);
    } catch (...) {
      fail(std::current_exception(), false);
      throw;
    }
    try {
      on_block_(cid, data);
    } catch (...) {
      fail(std::current_exception(), true);
      throw;
    }
    return;
  }
  {
    std::unique_lock l(mu_);
    cv_.wait(l, [&] {
      return failure_ || inflight_bytes_ == 0 || inflight_bytes_ + data.size() <= max_inflight_;
    });
    if (failure_) {
      l.unlock();
      rethrow_failure();
    }
    inflight_bytes_ += data.size();
    ++inflight_blocks_;
  }
  auto block = std::make_shared<Bytes>(data.begin(), data.end());
  pool.submit([this, cid, block] {
    bool handler = false;
    try {
      verify_block(source_, cid, *block);
      handler = true;
      on_block_(cid, *block);
    } catch (...) {
      fail(std::current_exception(), handler);
    }
    std::lock_guard l(mu_);
    inflight_bytes_ -= block->size();
    --inflight_blocks_;
    cv_.notify_all();
  });
}

void BlockPipeline::finish() {
  {
    std::unique_lock l(mu_);
    cv_.wait(l, [&] { return inflight_blocks_ == 0; });
  }
  rethrow_failure();
}

}  // namespace cidrun::exchange
