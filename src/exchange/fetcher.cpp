#include "exchange/fetcher.h"

#include <algorithm>
#include <atomic>
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
#include "util/thread_pool.h"

namespace cidrun::exchange {
namespace {

// Blocks are identified by multihash while walking: a link may name a block as CIDv0 while a
// CAR carries it as CIDv1 (or the reverse); the store keys them the same way.
std::string key_of(const Cid& c) {
  return std::string(as_string(c.multihash()));
}

// One block can be linked both ways: a cidrun image's metadata links the structure blocks of
// its tree (dag-pb) by raw CIDs, so that a CAR of the metadata stops at them. Reached by a raw
// link a block is a leaf; reached by a dag-pb link its links must be followed too. The walk keeps
// the two apart: what was seen as a leaf is seen again as a node.
std::string walk_key_of(const Cid& c) {
  return c.codec() == kCodecRaw ? key_of(c) + 'r' : key_of(c);
}

// A subtree no bigger than this (by its links' cumulative sizes) comes in one CAR stream.
constexpr uint64_t kWholeCarMax = 16u << 20;
// From a source that compresses its answers: a long stream shares its compression context and
// splitting buys little where the link, not the cores, is the limit (a Debian root: 7% fewer
// bytes on the wire than with 16 MiB).
constexpr uint64_t kWholeCarMaxCoded = 64u << 20;
// A node whose links average at least this is split: each child is asked for on its own, so
// that several requests (and their hashing and writing) run at once. Below it the per-request
// cost outweighs the parallelism, and one CAR of the node is better.
constexpr uint64_t kSplitMinLink = 64u << 10;
// Below a node that is partly here, a missing subtree no bigger than this comes as one CAR
// rather than its root alone and then its links (see plan()).
constexpr uint64_t kSmallCar = 4u << 10;
// A directory's entries are announced to the sources before they are asked for one by one
// (BlockSource::want_soon): those of at most kWantSoonEntry bytes by their links, and no more
// than kWantSoonBytes per directory, so that a directory of big files is not pulled in whole
// ahead of the walk.
constexpr uint64_t kWantSoonEntry = 1u << 20;
constexpr uint64_t kWantSoonBytes = 8u << 20;

// What the walk does with a CID: make its block present and look at its links (kBlock), or ask
// for its whole subtree in one CAR stream (kCar).
struct Item {
  Cid cid;
  bool car = false;  // ask for the whole subtree as one CAR (else the block alone)
  // Whether the CIDs below may still be asked for as CARs: not below a CAR that failed or came
  // back incomplete (the block-by-block walk finishes those), and not while resuming.
  bool car_ok = true;
  // The CID was queued already and is now asked for a second way (a node fetched alone, then
  // its subtree as a CAR; what a CAR left behind): queued even though seen.
  bool again = false;
};

}  // namespace

Fetcher::Fetcher(BlockStore& store, SourceSet& sources, FetchOptions opts)
    : store_(store), sources_(sources), opts_(opts) {
  if (opts_.parallel == 0) opts_.parallel = 1;
  if (opts_.car_streams == 0) opts_.car_streams = 1;
  // No source streams CARs (bitswap peers): planning CAR requests would only cost a failed
  // attempt and a second walk of each subtree.
  if (!sources_.can_stream_car()) opts_.use_car = false;
}

Bytes Fetcher::fetch_block(const Cid& cid) {
  if (auto b = store_.get(cid)) return std::move(*b);
  Bytes data = sources_.get(cid);  // verified by the source
  store_.put(cid, data);
  if (opts_.progress) opts_.progress->fetched(data.size());
  return data;
}

// One fetch_dag: a parallel walk over two queues, blocks and CAR subtrees. Workers take an item,
// make its blocks present (reading, fetching, or streaming them), and queue what lies below. The
// walk ends when both queues are empty and no worker is busy, or at the first error.
class Fetcher::Walk {
 public:
  Walk(Fetcher& f, const Cid& root)
      : f_(f), root_(root), car_max_(f.sources_.codes() ? kWholeCarMaxCoded : kWholeCarMax) {}

  FetchResult run() {
    seen_.insert(walk_key_of(root_));
    bool have_root = root_.is_identity() || f_.store_.has(root_);
    if (!have_root && f_.opts_.use_car && root_.codec() == kCodecDagPb) {
      // One raw request for the root says how big the DAG is and how it is shaped (one CAR for a
      // tree of small files, parallel requests for big files); a source that answers only CARs
      // gets one CAR of everything.
      try {
        Bytes b = f_.sources_.get(root_);
        arriving(root_);
        f_.store_.put(root_, b);
        count(root_, b.size(), true);
        if (progress()) progress()->set_total(estimated_total(root_, b));
        enqueue(plan(Item{.cid = root_}, b, true));
      } catch (const NotFound&) {
        enqueue({Item{.cid = root_, .car = true, .again = true}});
      }
    } else {
      // Present root: a resumed pull walks what is here and fetches what is not, block by block.
      enqueue({Item{.cid = root_, .car_ok = !have_root, .again = true}});
    }
    std::vector<std::thread> threads;
    threads.reserve(f_.opts_.parallel);
    for (size_t i = 0; i < f_.opts_.parallel; ++i)
      threads.push_back(signal_free_thread([this] { work(); }));
    for (auto& t : threads) t.join();
    if (failure_) std::rethrow_exception(failure_);
    FetchResult r;
    r.blocks = blocks_;
    r.fetched_blocks = fetched_blocks_;
    r.fetched_bytes = fetched_bytes_;
    return r;
  }

 private:
  FetchProgress* progress() const { return f_.opts_.progress; }

  // The DAG's expected size, for the progress bar: the root block plus its links' Tsize.
  static uint64_t estimated_total(const Cid& cid, ByteView block) {
    if (cid.codec() != kCodecDagPb) return block.size();
    try {
      uint64_t total = block.size();
      for (const auto& l : dagpb::decode(block).links) total += l.tsize.value_or(0);
      return total;
    } catch (const Error&) {
      return 0;
    }
  }

  // Counts a block of the DAG once, however many requests brought it.
  void count(const Cid& cid, uint64_t size, bool fetched) {
    {
      std::lock_guard l(count_mu_);
      if (!counted_.insert(key_of(cid)).second) return;
    }
    ++blocks_;
    if (fetched) {
      ++fetched_blocks_;
      fetched_bytes_ += size;
      if (progress()) progress()->fetched(size);
    } else if (progress()) {
      progress()->present(size);
    }
  }

  // What to do below a block that is here now. fetched: it just came from the network, so what
  // it links to most likely is not here either.
  std::vector<Item> plan(const Item& item, ByteView block, bool fetched) {
    const Cid& cid = item.cid;
    std::vector<Item> out;
    bool car_ok = item.car_ok && fetched && f_.opts_.use_car;
    if (cid.codec() != kCodecDagPb) return out;  // links only in dag-pb, as block_links reads them
    if (!car_ok) {
      dagpb::Node node = decode_dagpb_block(cid, block);
      want_entries_soon(node);
      for (auto& l : node.links) out.push_back(Item{.cid = std::move(l.hash), .car_ok = false});
      return out;
    }
    dagpb::Node node;
    try {
      node = dagpb::decode(block);
    } catch (const Error& e) {
      throw Error(cid.str() + ": " + e.what());
    }
    if (node.links.empty()) return out;
    if (std::any_of(node.links.begin(), node.links.end(),
                    [this](const dagpb::Link& l) { return held_before(l.hash); })) {
      // Part of what this node links to was here before this pull: an update of a DAG this
      // store holds, or a root that shares subtrees with one it holds. A CAR of the node would
      // bring all of that again (replacing one binary of a Debian root: 27 MB for a 318 KB file),
      // so each link goes on its own: what is here is walked locally, what is not is fetched alone
      // and planned by this same rule, so that only missing blocks cross the wire. A small missing
      // subtree comes as one CAR: at most kSmallCar bytes that may be here already, for one
      // round trip less.
      for (auto& l : node.links) {
        if (l.hash.is_identity() || held_before(l.hash)) {
          out.push_back(Item{.cid = std::move(l.hash), .car_ok = false});
        } else {
          bool small = l.hash.codec() == kCodecDagPb && l.tsize && *l.tsize <= kSmallCar;
          out.push_back(Item{.cid = std::move(l.hash), .car = small});
        }
      }
      return out;
    }
    uint64_t total = 0;
    for (const auto& l : node.links) total += l.tsize.value_or(0);
    if (total <= car_max_ || total / node.links.size() < kSplitMinLink) {
      // The node's block comes again at the head of its CAR: a few bytes for one request.
      out.push_back(Item{.cid = cid, .car = true, .again = true});
      return out;
    }
    for (auto& l : node.links) {
      bool small_subtree = l.hash.codec() == kCodecDagPb && l.tsize && *l.tsize <= car_max_;
      out.push_back(Item{.cid = std::move(l.hash), .car = small_subtree});
    }
    return out;
  }

  // Whether the store held the block before this walk began. Blocks that came during it do not
  // count: a cold pull of an image gets its structure blocks with the metadata CAR, and those
  // say nothing about the file data below them. Identity CIDs carry their block: they say
  // nothing either.
  bool held_before(const Cid& cid) {
    if (cid.is_identity()) return false;
    {
      std::lock_guard l(count_mu_);
      if (arrived_.count(key_of(cid))) return false;
    }
    return f_.store_.has(cid);
  }
  // Called before a fetched block is stored, so that held_before never sees it as old.
  void arriving(const Cid& cid) {
    std::lock_guard l(count_mu_);
    arrived_.insert(key_of(cid));
  }

  // The small missing entries of a directory, announced to the sources (kWantSoonEntry).
  void want_entries_soon(const dagpb::Node& node) {
    if (node.links.empty() || !node.data) return;
    try {
      auto type = unixfs_pb::decode(*node.data).type;
      if (type != unixfs_pb::Type::kDirectory && type != unixfs_pb::Type::kHamtShard) return;
    } catch (const Error&) {
      return;  // the walk reports malformed nodes itself
    }
    std::vector<Cid> soon;
    uint64_t bytes = 0;
    for (const auto& l : node.links) {
      if (l.hash.is_identity() || !l.tsize || *l.tsize > kWantSoonEntry) continue;
      if (bytes + *l.tsize > kWantSoonBytes) break;
      if (f_.store_.has(l.hash)) continue;
      bytes += *l.tsize;
      soon.push_back(l.hash);
    }
    if (!soon.empty()) f_.sources_.want_soon(soon);
  }

  // scratch: the worker's block buffer, reused from block to block (SourceSet::get_into).
  std::vector<Item> block_item(const Item& item, Bytes& scratch) {
    const Cid& cid = item.cid;
    if (cid.is_identity()) return plan(Item{.cid = cid, .car_ok = false}, cid.digest(), false);
    std::optional<Bytes> data;
    if (cid.codec() == kCodecRaw) {
      // A raw leaf has no links: knowing it is present is enough (no read).
      if (auto size = f_.store_.size(cid)) {
        count(cid, *size, false);
        return {};
      }
    } else {
      data = f_.store_.get(cid);
      if (data) count(cid, data->size(), false);
    }
    if (data) return plan(item, *data, false);
    ByteView fetched = f_.sources_.get_into(cid, scratch);
    arriving(cid);
    f_.store_.put(cid, fetched);
    count(cid, fetched.size(), true);
    if (cid == root_ && progress()) progress()->set_total(estimated_total(cid, fetched));
    return plan(item, fetched, true);
  }

  // One CAR stream of the subtree. Only blocks linked from what this stream delivered so far
  // are accepted (so a source cannot plant unrelated blocks); what it lacks is returned, to be
  // fetched block by block.
  std::vector<Item> car_item(const Item& item) {
    const Cid& sub = item.cid;
    // By multihash: the CID to decode a block as when it comes (the link that asked for it;
    // a dag-pb link wins over a raw one, see walk_key_of), and whether a block received so far
    // had its links followed.
    std::unordered_map<std::string, Cid> wanted{{key_of(sub), sub}};
    std::unordered_map<std::string, bool> received;
    std::vector<Cid> extra;  // linked as nodes after coming as leaves, not readable yet
    // Called from the stream's thread and, for big raw leaves, from the pool (block_pipeline.h):
    // the bookkeeping is under mu, the store write is not.
    std::mutex mu;
    // Under mu: children are now linked (by a block that came). A block that came as a leaf
    // and is now linked as a node is read back and its own links wanted in turn; one not yet
    // stored (its write still under way) is left to the block-by-block walk.
    auto want = [&](std::vector<Cid> children) {
      while (!children.empty()) {
        Cid child = std::move(children.back());
        children.pop_back();
        std::string ck = key_of(child);
        bool node = child.codec() != kCodecRaw;
        if (auto r = received.find(ck); r != received.end()) {
          if (!node || r->second) continue;
          r->second = true;
          if (auto data = f_.store_.get(child)) {
            for (auto& c : block_links(child, *data)) children.push_back(std::move(c));
          } else {
            extra.push_back(std::move(child));
          }
          continue;
        }
        auto [it, added] = wanted.emplace(std::move(ck), child);
        if (!added && node) it->second = std::move(child);
      }
    };
    auto on_block = [&](const Cid& cid, ByteView data) {
      std::string k = key_of(cid);
      Cid as_linked;
      {
        std::lock_guard l(mu);
        auto it = wanted.find(k);
        if (it == wanted.end()) {
          if (received.count(k)) return;  // a retry from another source resends: harmless
          throw SourceError("CAR for " + sub.str() + " contains block " + cid.str() +
                            ", which the DAG does not link to");
        }
        as_linked = it->second;  // decode by the codec of the link that asked for it
        wanted.erase(it);
        received.emplace(k, as_linked.codec() != kCodecRaw);
      }
      arriving(as_linked);
      f_.store_.put(as_linked, data);
      auto links = block_links(as_linked, data);
      if (!links.empty()) {
        std::lock_guard l(mu);
        want(std::move(links));
      }
      if (as_linked == root_ && progress()) progress()->set_total(estimated_total(root_, data));
      count(as_linked, data.size(), true);
    };
    try {
      bool complete = f_.sources_.stream_car(sub, DagScope::kAll, on_block);
      if (complete && !wanted.empty()) {
        log::warn("CAR stream for " + sub.str() + " lacked " + std::to_string(wanted.size()) +
                  " blocks; fetching them one by one");
      }
    } catch (const SourceError& e) {
      log::warn(e.what());
    }
    std::vector<Item> rest;
    rest.reserve(wanted.size() + extra.size());
    for (auto& [k, c] : wanted) rest.push_back(Item{.cid = c, .car_ok = false, .again = true});
    for (auto& c : extra) rest.push_back(Item{.cid = std::move(c), .car_ok = false, .again = true});
    return rest;
  }

  // Queues items not seen before (under mu_, or before the workers start).
  void enqueue(std::vector<Item> items) {
    for (auto& it : items) {
      if (!seen_.insert(walk_key_of(it.cid)).second && !it.again) continue;
      (it.car ? cars_ : blocks_q_).push_back(std::move(it));
    }
  }

  void work() {
    Bytes scratch;
    std::unique_lock l(mu_);
    for (;;) {
      auto car_ready = [&] { return !cars_.empty() && cars_active_ < f_.opts_.car_streams; };
      cv_.wait(l, [&] { return failure_ || !blocks_q_.empty() || car_ready() || busy_ == 0; });
      if (failure_) return;
      Item item;
      if (car_ready()) {
        item = std::move(cars_.front());
        cars_.pop_front();
        ++cars_active_;
      } else if (!blocks_q_.empty()) {
        item = std::move(blocks_q_.front());
        blocks_q_.pop_front();
      } else {
        return;  // nothing queued and nobody busy (a CAR waiting on the limit implies busy)
      }
      ++busy_;
      l.unlock();
      std::vector<Item> next;
      std::exception_ptr err;
      try {
        next = item.car ? car_item(item) : block_item(item, scratch);
      } catch (...) {
        err = std::current_exception();
      }
      l.lock();
      --busy_;
      if (item.car) --cars_active_;
      if (err && !failure_) failure_ = err;
      enqueue(std::move(next));
      cv_.notify_all();
    }
  }

  Fetcher& f_;
  Cid root_;
  uint64_t car_max_;  // kWholeCarMax, or kWholeCarMaxCoded from compressing sources
  std::mutex mu_;
  std::condition_variable cv_;
  std::unordered_set<std::string> seen_;  // multihashes queued (under mu_)
  std::deque<Item> blocks_q_, cars_;
  size_t busy_ = 0, cars_active_ = 0;
  std::exception_ptr failure_;
  std::mutex count_mu_;
  std::unordered_set<std::string> counted_;
  std::unordered_set<std::string> arrived_;  // multihashes fetched by this walk (under count_mu_)
  std::atomic<uint64_t> blocks_{0}, fetched_blocks_{0}, fetched_bytes_{0};
};

FetchResult Fetcher::fetch_dag(const Cid& root) {
  return Walk(*this, root).run();
}

}  // namespace cidrun::exchange
