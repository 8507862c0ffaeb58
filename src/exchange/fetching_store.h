// A BlockStore that fetches what it lacks. Wrap the repo's store in it and every reader built on
// a BlockStore (unixfs::Dag, FileReader, walk_dag, so `get`, `cat`, `ls`, `run`) becomes
// network-aware without knowing it: a missing block is fetched from the configured sources,
// hash-checked, stored, and returned.
//
// How a command opens its store (instead of `repo->blocks()`):
//
//   auto repo = Repo::open(repo_path(g));
//   auto store = exchange::open_store_with_sources(*repo, flags.from);  // flags.from may be {}
//   unixfs::Dag dag(*store);
//
// Sources, in the order they are tried: `extra_sources` (a command's --from), then
// $CIDRUN_SOURCES (comma-separated URLs), then <repo>/config.json {"sources": ["...", ...]},
// then a local kubo daemon found through $IPFS_PATH/api or ~/.ipfs/api (unless
// CIDRUN_KUBO_AUTO=0). URL forms are listed in block_source.h. With no source at all the result
// behaves exactly like the repo's store; a block no source has throws NotFound naming its CID.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "exchange/fetcher.h"
#include "exchange/source_set.h"
#include "store/blockstore.h"
#include "store/repo.h"

namespace cidrun::exchange {

// Reading ahead: when a reader asks for a dag-pb node that came from the network, its children
// are fetched in the background (kPrefetchThreads in flight), so `cat` of a big file or `get` of
// a tree streams instead of paying one round trip per block. Only nodes a reader actually
// visits are expanded, so `ls` of a directory never downloads the files below it.
class FetchingStore : public BlockStore {
 public:
  FetchingStore(BlockStore& local, std::shared_ptr<SourceSet> sources);
  ~FetchingStore() override;
  FetchingStore(const FetchingStore&) = delete;
  FetchingStore& operator=(const FetchingStore&) = delete;

  // Only the local store: asking has() must stay cheap and never touch the network.
  bool has(const Cid& cid) override { return local_.has(cid); }
  std::optional<Bytes> get(const Cid& cid) override;
  std::optional<uint64_t> size(const Cid& cid) override;
  void put_parts(const Cid& cid, std::span<const ByteView> parts) override {
    local_.put_parts(cid, parts);
  }
  bool remove(const Cid& cid) override { return local_.remove(cid); }
  // The local store's file for the block, fetched first when missing.
  std::optional<BlockFile> open_block_file(const Cid& cid) override;
  void for_each(const std::function<void(ByteView multihash)>& fn) override { local_.for_each(fn); }
  void sync() override { local_.sync(); }

  // Fetches these in the background on the read-ahead threads, ahead of what is queued already
  // (the newest read is the one a reader waits for next). Present and in-flight blocks are
  // skipped by the workers.
  void prefetch(const std::vector<Cid>& cids);
  // With false, blocks a reader visits are no longer expanded: only prefetch() reads ahead. A
  // lazy mount says itself what a read will want next; expanding every fetched node would pull
  // whole files when one page of them is read.
  void set_auto_read_ahead(bool on) { auto_read_ahead_ = on; }

  // Fetches started so far (reads and read-ahead): a caller can tell when reading goes quiet.
  uint64_t fetches_started() const { return fetches_started_.load(); }

  BlockStore& local() { return local_; }
  SourceSet& sources() { return *sources_; }

 private:
  static constexpr size_t kPrefetchThreads = 16;
  static constexpr size_t kMaxQueued = 4096;
  // Fetches cid once even when several readers (or the prefetcher) ask at the same time.
  Bytes fetch(const Cid& cid);
  void read_ahead(const Cid& cid, ByteView block);
  void prefetch_loop();
  void start_workers_locked();

  BlockStore& local_;
  std::shared_ptr<SourceSet> sources_;
  std::mutex mu_;
  std::condition_variable work_;
  std::unordered_map<std::string, std::shared_future<Bytes>> inflight_;
  std::unordered_set<std::string> fetched_;   // came from the network: worth reading ahead
  std::unordered_set<std::string> expanded_;  // children already queued
  std::deque<Cid> queue_;
  std::vector<std::thread> workers_;
  bool stopping_ = false;
  bool auto_read_ahead_ = true;
  std::atomic<uint64_t> fetches_started_{0};
};

// Every source URL configured for this repo, in the order described above.
std::vector<std::string> configured_sources(const Repo& repo,
                                            const std::vector<std::string>& extra_sources);

// The repo's block store wrapped in a FetchingStore over configured_sources(). The repo must
// outlive the returned store.
std::unique_ptr<FetchingStore> open_store_with_sources(
    Repo& repo, const std::vector<std::string>& extra_sources);

}  // namespace cidrun::exchange
