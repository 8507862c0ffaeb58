// A store that takes blocks into memory first and writes them to the store below on a thread of
// its own. For a burst of blocks someone waits to read: a lazy mount's start (its metadata and
// start set arrive as thousands of small blocks, and creating a file for each, plus the shard
// directories of a new repository, can take seconds on a cold disk). Reads see a staged block at
// once; the store below has it soon after; flush() waits for that.
#pragma once

#include <condition_variable>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>

#include "store/blockstore.h"

namespace cidrun {

class StagedStore : public BlockStore {
 public:
  explicit StagedStore(BlockStore& below);
  ~StagedStore() override;  // flushes
  StagedStore(const StagedStore&) = delete;
  StagedStore& operator=(const StagedStore&) = delete;

  // Held in memory and queued for the store below (which gets it as given).
  void stage(const Cid& cid, ByteView data);
  // Held in memory only: for blocks the store below has already, read from a copy that costs
  // one read where the store below costs one per block (image/meta_pack.h).
  void hold(const Cid& cid, ByteView data);
  // Waits until every staged block is in the store below; rethrows the first write error.
  void flush();

  bool has(const Cid& cid) override;
  std::optional<Bytes> get(const Cid& cid) override;
  std::optional<uint64_t> size(const Cid& cid) override;
  // Straight to the store below (only stage() stages).
  void put_parts(const Cid& cid, std::span<const ByteView> parts) override {
    below_.put_parts(cid, parts);
  }
  bool remove(const Cid& cid) override;
  std::optional<BlockFile> open_block_file(const Cid& cid) override;
  void for_each(const std::function<void(ByteView multihash)>& fn) override;
  void sync() override;

 private:
  void write_loop();
  const Bytes* staged(const Cid& cid);  // under mu_

  BlockStore& below_;
  std::mutex mu_;
  std::condition_variable cv_;
  // Staged blocks by multihash, kept after they are written (reads stay in memory).
  std::unordered_map<std::string, std::pair<Cid, Bytes>> blocks_;
  std::deque<std::string> queue_;  // keys not written yet
  size_t writing_ = 0;
  bool stopping_ = false;
  std::exception_ptr error_;
  std::thread writer_;
};

}  // namespace cidrun
