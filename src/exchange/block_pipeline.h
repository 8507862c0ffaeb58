// Verification of a CAR stream's blocks off the receiving thread. A stream arrives on one thread;
// hashing (and storing) a 1 MiB leaf costs more than receiving it, so big raw leaves go to the
// thread pool while the stream keeps being read. Raw leaves have no links, so nothing later in the
// stream depends on them; every other block is verified and handed on in order, on the caller's
// thread, because the blocks after it are accepted by its links. Memory is bounded by the bytes
// in flight.
#pragma once

#include <condition_variable>
#include <exception>
#include <mutex>
#include <string>

#include "exchange/block_source.h"

namespace cidrun::exchange {

class BlockPipeline {
 public:
  // on_block must be callable from several threads at once.
  BlockPipeline(std::string source, const CarBlockHandler& on_block,
                size_t max_inflight_bytes = 64u << 20);
  ~BlockPipeline();  // waits for the blocks in flight
  BlockPipeline(const BlockPipeline&) = delete;
  BlockPipeline& operator=(const BlockPipeline&) = delete;

  // Verifies the block and hands it to on_block, now or on the pool. Throws the first failure
  // seen so far (of this block or an earlier one), so that a bad stream stops early.
  void submit(const Cid& cid, ByteView data);
  // Waits for every block in flight; throws the first failure.
  void finish();

  // Whether the first failure came from on_block (the receiver) rather than the source's bytes.
  bool handler_failed() const { return handler_failed_; }

 private:
  void fail(std::exception_ptr e, bool handler);
  void rethrow_failure();

  std::string source_;
  const CarBlockHandler& on_block_;
  size_t max_inflight_;
  std::mutex mu_;
  std::condition_variable cv_;
  size_t inflight_bytes_ = 0;
  size_t inflight_blocks_ = 0;
  std::exception_ptr failure_;
  bool handler_failed_ = false;
};

}  // namespace cidrun::exchange
