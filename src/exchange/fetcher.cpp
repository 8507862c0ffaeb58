#include "exchange/fetcher.h"

#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include "ipld/dagpb.h"
#include "ipld/unixfs_pb.h"
#include "store/reachable.h"
#include "util/log.h"

namespace cidrun::exchange {
namespace {

// Blocks are identified by multihash while walking: a link may name a block as CIDv0 while a
// CAR carries it as CIDv1 (or the reverse); the store keys them the same way.
std::string key_of(const Cid& c) {
  return std::string(as_string(c.multihash()));
}

// The DAG's expected size, for the progress bar: the root block plus its links' Tsize.
uint64_t estimated_total(const Cid& cid, ByteView block) {
  if (cid.codec() != kCodecDagPb) return block.size();
  try {
    uint64_t total = block.size();
    for (const auto& l : dagpb::decode(block).links) total += l.tsize.value_or(0);
    return total;
  } catch (const Error&) {
    return 0;
  }
}

bool is_unixfs_file(ByteView block) {
  try {
    auto node = dagpb::decode(block);
    return node.data && unixfs_pb::decode(*node.data).type == unixfs_pb::Type::kFile;
  } catch (const Error&) {
    return false;
  }
}

}  // namespace

Fetcher::Fetcher(BlockStore& store, SourceSet& sources, FetchOptions opts)
    : store_(store), sources_(sources), opts_(opts) {
  if (opts_.parallel == 0) opts_.parallel = 1;
}

Bytes Fetcher::fetch_block(const Cid& cid) {
  if (auto b = store_.get(cid)) return std::move(*b);
  Bytes data = sources_.get(cid);  // verified by the source
  store_.put(cid, data);
  if (opts_.progress) opts_.progress->fetched(data.size());
  return data;
}

FetchResult Fetcher::fetch_dag(const Cid& root) {
  std::mutex mu;
  std::condition_variable cv;
  std::unordered_set<std::string> seen;  // multihashes already queued or handled
  std::deque<Cid> queue;
  FetchResult result;
  std::atomic<uint64_t> blocks{0}, fetched_blocks{0}, fetched_bytes{0};
  FetchProgress* progress = opts_.progress;

  seen.insert(key_of(root));
  bool have_root = root.is_identity() || store_.has(root);
  bool stream = !have_root && opts_.use_car && root.codec() == kCodecDagPb;
  bool root_fetched = false;  // already counted as fetched: the walk must not count it again
  if (stream) {
    // A file's blocks are big and independent: parallel block requests beat one stream (which
    // serializes hashing and writing on both ends). Trees of small files are the opposite: one
    // CAR saves a round trip per block. One raw request for the root tells which case this is.
    try {
      Bytes b = sources_.get(root);
      store_.put(root, b);
      have_root = true;
      root_fetched = true;
      ++fetched_blocks;
      fetched_bytes += b.size();
      if (progress) {
        progress->set_total(estimated_total(root, b));
        progress->fetched(b.size());
      }
      stream = !is_unixfs_file(b);
    } catch (const NotFound&) {
      // No source answers raw blocks for it: a CAR may still work.
    }
  }
  if (stream) {
    // Phase 1: one CAR stream. Only blocks linked from what arrived so far are accepted (so a
    // source cannot plant unrelated blocks); what the stream lacks is left for the walk.
    std::unordered_map<std::string, Cid> wanted{{key_of(root), root}};
    std::unordered_set<std::string> received;
    bool first = true;
    // Called from the stream's thread and, for big raw leaves, from the pool (block_pipeline.h):
    // the bookkeeping is under car_mu, the store write is not.
    std::mutex car_mu;
    auto on_block = [&](const Cid& cid, ByteView data) {
      std::string k = key_of(cid);
      Cid as_linked;
      bool first_block;
      {
        std::lock_guard l(car_mu);
        auto it = wanted.find(k);
        if (it == wanted.end()) {
          if (received.count(k)) return;  // a retry from another source resends: harmless
          throw SourceError("CAR for " + root.str() + " contains block " + cid.str() +
                            ", which the DAG does not link to");
        }
        as_linked = it->second;  // decode by the codec of the link that asked for it
        wanted.erase(it);
        received.insert(k);
        first_block = std::exchange(first, false);
      }
      store_.put(as_linked, data);
      if (first_block && progress) progress->set_total(estimated_total(as_linked, data));
      auto links = block_links(as_linked, data);
      if (!links.empty()) {
        std::lock_guard l(car_mu);
        for (auto& child : links) {
          std::string ck = key_of(child);
          if (seen.insert(ck).second) wanted.emplace(std::move(ck), std::move(child));
        }
      }
      ++blocks;
      if (root_fetched && as_linked == root) return;  // counted when it was fetched raw
      ++fetched_blocks;
      fetched_bytes += data.size();
      if (progress) progress->fetched(data.size());
    };
    try {
      bool complete = sources_.stream_car(root, DagScope::kAll, on_block);
      if (complete && !wanted.empty()) {
        log::warn("CAR stream for " + root.str() + " lacked " + std::to_string(wanted.size()) +
                  " blocks; fetching them one by one");
      }
    } catch (const SourceError& e) {
      log::warn(e.what());
    }
    for (auto& [k, c] : wanted) queue.push_back(c);
  } else {
    queue.push_back(root);
  }

  // Phase 2: the parallel walk. Workers take a CID, make sure its block is present (reading or
  // fetching it), and queue its children; the walk ends when the queue is empty and no worker
  // is busy, or at the first error.
  size_t busy = 0;
  std::exception_ptr failure;
  auto process = [&](const Cid& cid) -> std::vector<Cid> {
    if (cid.is_identity()) return block_links(cid, cid.digest());
    std::optional<Bytes> data;
    if (cid.codec() == kCodecRaw) {
      // A raw leaf has no links: knowing it is present is enough (no read).
      if (auto size = store_.size(cid)) {
        ++blocks;
        if (progress) progress->present(*size);
        return {};
      }
    } else {
      data = store_.get(cid);
      if (data) {
        ++blocks;
        if (progress && !(root_fetched && cid == root)) progress->present(data->size());
      }
    }
    if (!data) {
      data = sources_.get(cid);
      store_.put(cid, *data);
      ++blocks;
      ++fetched_blocks;
      fetched_bytes += data->size();
      if (progress) {
        if (cid == root) progress->set_total(estimated_total(cid, *data));
        progress->fetched(data->size());
      }
    }
    return block_links(cid, *data);
  };
  auto worker = [&] {
    std::unique_lock l(mu);
    for (;;) {
      cv.wait(l, [&] { return failure || !queue.empty() || busy == 0; });
      if (failure || queue.empty()) return;
      Cid cid = std::move(queue.front());
      queue.pop_front();
      ++busy;
      l.unlock();
      std::vector<Cid> children;
      std::exception_ptr err;
      try {
        children = process(cid);
      } catch (...) {
        err = std::current_exception();
      }
      l.lock();
      --busy;
      if (err && !failure) failure = err;
      for (auto& c : children) {
        if (seen.insert(key_of(c)).second) queue.push_back(std::move(c));
      }
      cv.notify_all();
    }
  };
  std::vector<std::thread> threads;
  for (size_t i = 0; i < opts_.parallel; ++i) threads.emplace_back(worker);
  for (auto& t : threads) t.join();
  if (failure) std::rethrow_exception(failure);
  result.blocks = blocks;
  result.fetched_blocks = fetched_blocks;
  result.fetched_bytes = fetched_bytes;
  return result;
}

}  // namespace cidrun::exchange
