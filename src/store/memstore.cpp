#include "store/memstore.h"

#include <string_view>

namespace cidrun {

static Bytes key(const Cid& c) {
  auto mh = c.multihash();
  return Bytes(mh.begin(), mh.end());
}

bool MemoryStore::has(const Cid& cid) {
  if (cid.is_identity()) return true;
  std::lock_guard l(mu_);
  return blocks_.count(key(cid)) > 0;
}

std::optional<Bytes> MemoryStore::get(const Cid& cid) {
  if (cid.is_identity()) return Bytes(cid.digest().begin(), cid.digest().end());
  std::lock_guard l(mu_);
  auto it = blocks_.find(key(cid));
  if (it == blocks_.end() || !keep_data_) return std::nullopt;
  return it->second;
}

std::optional<uint64_t> MemoryStore::size(const Cid& cid) {
  auto b = get(cid);
  if (!b) return std::nullopt;
  return b->size();
}

void MemoryStore::put_parts(const Cid& cid, std::span<const ByteView> parts) {
  if (cid.is_identity()) return;
  Bytes data;
  if (keep_data_) {
    for (auto p : parts) data.insert(data.end(), p.begin(), p.end());
  }
  std::lock_guard l(mu_);
  blocks_.emplace(key(cid), std::move(data));
}

bool MemoryStore::remove(const Cid& cid) {
  std::lock_guard l(mu_);
  return blocks_.erase(key(cid)) > 0;
}

void MemoryStore::for_each(const std::function<void(ByteView multihash)>& fn) {
  std::lock_guard l(mu_);
  for (const auto& [k, v] : blocks_) fn(k);
}

}  // namespace cidrun
