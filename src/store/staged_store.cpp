#include "store/staged_store.h"

#include "util/thread_pool.h"

namespace cidrun {

StagedStore::StagedStore(BlockStore& below) : below_(below) {
  writer_ = signal_free_thread([this] { write_loop(); });
}

StagedStore::~StagedStore() {
  {
    std::unique_lock l(mu_);
    cv_.wait(l, [&] { return queue_.empty() && writing_ == 0; });
    stopping_ = true;
  }
  cv_.notify_all();
  writer_.join();
}

void StagedStore::stage(const Cid& cid, ByteView data) {
  if (cid.is_identity()) return;
  std::string key(as_string(cid.multihash()));
  std::lock_guard l(mu_);
  auto [it, fresh] = blocks_.try_emplace(key, cid, Bytes(data.begin(), data.end()));
  if (!fresh) return;
  queue_.push_back(key);
  cv_.notify_all();
}

void StagedStore::hold(const Cid& cid, ByteView data) {
  if (cid.is_identity()) return;
  std::lock_guard l(mu_);
  blocks_.try_emplace(std::string(as_string(cid.multihash())), cid,
                      Bytes(data.begin(), data.end()));
}

void StagedStore::write_loop() {
  std::unique_lock l(mu_);
  for (;;) {
    cv_.wait(l, [&] { return stopping_ || !queue_.empty(); });
    if (queue_.empty()) return;  // stopping, and all written
    std::string key = std::move(queue_.front());
    queue_.pop_front();
    ++writing_;
    // The entry is never erased while the store lives: the reference stays valid unlocked.
    const auto& [cid, data] = blocks_.at(key);
    l.unlock();
    try {
      below_.put(cid, data);
    } catch (...) {
      l.lock();
      if (!error_) error_ = std::current_exception();
      --writing_;
      cv_.notify_all();
      continue;
    }
    l.lock();
    --writing_;
    cv_.notify_all();
  }
}

void StagedStore::flush() {
  std::unique_lock l(mu_);
  cv_.wait(l, [&] { return queue_.empty() && writing_ == 0; });
  if (error_) std::rethrow_exception(error_);
}

const Bytes* StagedStore::staged(const Cid& cid) {
  auto it = blocks_.find(std::string(as_string(cid.multihash())));
  return it == blocks_.end() ? nullptr : &it->second.second;
}

bool StagedStore::has(const Cid& cid) {
  {
    std::lock_guard l(mu_);
    if (staged(cid)) return true;
  }
  return below_.has(cid);
}

std::optional<Bytes> StagedStore::get(const Cid& cid) {
  {
    std::lock_guard l(mu_);
    if (const Bytes* b = staged(cid)) return *b;
  }
  return below_.get(cid);
}

std::optional<uint64_t> StagedStore::size(const Cid& cid) {
  {
    std::lock_guard l(mu_);
    if (const Bytes* b = staged(cid)) return b->size();
  }
  return below_.size(cid);
}

bool StagedStore::remove(const Cid& cid) {
  flush();  // a staged block written after its removal would come back
  return below_.remove(cid);
}

std::optional<BlockFile> StagedStore::open_block_file(const Cid& cid) {
  {
    std::lock_guard l(mu_);
    // A staged block has no file yet (or only just): callers fall back to get().
    if (staged(cid)) return std::nullopt;
  }
  return below_.open_block_file(cid);
}

void StagedStore::for_each(const std::function<void(ByteView multihash)>& fn) {
  flush();
  below_.for_each(fn);
}

void StagedStore::sync() {
  flush();
  below_.sync();
}

}  // namespace cidrun
