// Where blocks live. Blocks are keyed by their multihash (as kubo does since 0.12), so the same
// bytes under a CIDv0 and a CIDv1, or under dag-pb and raw codecs, are stored once.
#pragma once

#include <functional>
#include <optional>
#include <span>
#include <string>

#include "multiformats/cid.h"
#include "util/bytes.h"
#include "util/fd.h"

namespace cidrun {

// A block's bytes as a byte range of an open file, for zero-copy reads (copy_file_range into a
// checkout, sendfile to a client).
struct BlockFile {
  UniqueFd fd;
  uint64_t offset = 0;
  uint64_t size = 0;
  // The range lies in a file the store does not own (a reference into a checkout's file): its
  // bytes were checked when the reference was made but may have changed since. Whoever hands
  // them to others (the gateway) uses get(), which checks them again.
  bool referenced = false;
};

class BlockStore {
 public:
  virtual ~BlockStore() = default;

  virtual bool has(const Cid& cid) = 0;
  // The block's bytes, or nullopt when absent. Stored bytes are trusted here (they were verified
  // on the way in); `repo verify` rehashes everything.
  virtual std::optional<Bytes> get(const Cid& cid) = 0;
  virtual std::optional<uint64_t> size(const Cid& cid) = 0;
  // Stores a block whose bytes are the concatenation of parts; the caller guarantees that the
  // bytes hash to cid. Storing a present block is a cheap no-op.
  virtual void put_parts(const Cid& cid, std::span<const ByteView> parts) = 0;
  void put(const Cid& cid, ByteView data) {
    ByteView parts[1] = {data};
    put_parts(cid, parts);
  }
  // Verifies data against cid, then stores it; throws cidrun::Error on a mismatch.
  void put_verified(const Cid& cid, ByteView data);
  virtual bool remove(const Cid& cid) = 0;
  // An optional ability (asked for, never found by casting to a concrete store): the block as a
  // range of a file. Stores that keep blocks in files answer; wrappers forward to what they wrap
  // (a fetching one fetches a missing block first); nullopt when absent or not file-backed, and
  // the caller then uses get().
  virtual std::optional<BlockFile> open_block_file(const Cid& cid) {
    (void)cid;
    return std::nullopt;
  }
  // An optional ability (kubo's filestore idea): hold the block as a reference to bytes
  // [offset, offset + size) of the file at path instead of as a copy of its own. The caller
  // guarantees that the range holds exactly the block's bytes and that the file never changes
  // (an image checkout's cached file: nothing writes one after it is complete). Done only where it
  // frees the copy: the block is held now as a file that nothing else links. True when the block
  // is now a reference.
  virtual bool put_ref(const Cid& cid, const std::string& path, uint64_t offset, uint64_t size) {
    (void)cid;
    (void)path;
    (void)offset;
    (void)size;
    return false;
  }
  // Calls fn with the multihash of every stored block (order unspecified).
  virtual void for_each(const std::function<void(ByteView multihash)>& fn) = 0;
  // Makes every completed put durable (one syncfs for a whole command instead of one fsync per
  // block).
  virtual void sync() = 0;
};

// A store over another that passes every call through: a wrapper overrides only what it changes
// (noting reads, refusing writes).
class ForwardingStore : public BlockStore {
 public:
  explicit ForwardingStore(BlockStore& inner) : inner_(inner) {}
  bool has(const Cid& cid) override { return inner_.has(cid); }
  std::optional<Bytes> get(const Cid& cid) override { return inner_.get(cid); }
  std::optional<uint64_t> size(const Cid& cid) override { return inner_.size(cid); }
  void put_parts(const Cid& cid, std::span<const ByteView> parts) override {
    inner_.put_parts(cid, parts);
  }
  bool remove(const Cid& cid) override { return inner_.remove(cid); }
  std::optional<BlockFile> open_block_file(const Cid& cid) override {
    return inner_.open_block_file(cid);
  }
  bool put_ref(const Cid& cid, const std::string& path, uint64_t offset, uint64_t size) override {
    return inner_.put_ref(cid, path, offset, size);
  }
  void for_each(const std::function<void(ByteView multihash)>& fn) override { inner_.for_each(fn); }
  void sync() override { inner_.sync(); }

 protected:
  BlockStore& inner_;
};

}  // namespace cidrun
