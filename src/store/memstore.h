// An in-memory block store: for `add -n` (hashing only) and for tests.
#pragma once

#include <mutex>
#include <unordered_map>

#include "store/blockstore.h"

namespace cidrun {

class MemoryStore : public BlockStore {
 public:
  // With keep_data=false, put only remembers that a block exists (enough for `add -n`).
  explicit MemoryStore(bool keep_data = true) : keep_data_(keep_data) {}

  bool has(const Cid& cid) override;
  std::optional<Bytes> get(const Cid& cid) override;
  std::optional<uint64_t> size(const Cid& cid) override;
  void put_parts(const Cid& cid, std::span<const ByteView> parts) override;
  bool remove(const Cid& cid) override;
  void for_each(const std::function<void(ByteView multihash)>& fn) override;
  void sync() override {}

 private:
  bool keep_data_;
  std::mutex mu_;
  std::unordered_map<Bytes, Bytes, BytesHash> blocks_;
};

}  // namespace cidrun
