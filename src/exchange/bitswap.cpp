#include "exchange/bitswap.h"

#include <algorithm>

#include "exchange/block_source.h"
#include "exchange/car_stream.h"
#include "p2p/frame.h"
#include "util/error.h"
#include "util/log.h"
#include "util/thread_pool.h"

namespace cidrun::exchange {
namespace {

using p2p::Clock;

std::string key_of(const Cid& c) {
  return std::string(as_string(c.multihash()));
}

constexpr auto kStreamTimeout = std::chrono::seconds(30);

}  // namespace

struct BitswapNode::Waiter {
  std::string key;
  Bytes peer;  // peer id bytes
  enum class State { kWaiting, kDone, kDontHave, kFailed, kCancelled } state = State::kWaiting;
  Bytes* data = nullptr;  // the caller's scratch
  ByteView result;        // the block, inside *data
  std::string error;
  // Woken alone (under mu_, so that the waiter cannot leave and take it with it while it is
  // notified): with one condition variable for all, every block woke every get() in flight, and
  // a pull with 128 wants in flight spent a quarter of its time in wake-ups.
  std::condition_variable cv;
};

struct BitswapNode::Peer {
  p2p::PeerId id;
  // Client side: every CID ever asked of this peer (a block outside it is a lie) and the stream
  // our wants go on.
  std::unordered_set<std::string> asked;
  std::mutex write_mu;  // one writer at a time on `out`
  std::shared_ptr<p2p::Stream> out;
  // Server side: the peer's wantlist, in arrival order, and where it is queued.
  std::deque<bitswap::Want> wants;
  std::unordered_set<std::string> wanted;  // keys in `wants` (cancels remove from both)
  std::weak_ptr<p2p::Connection> conn;
  bool queued = false;
  // Client side: when the peer last sent blocks or presences (under mu_). A peer busy sending
  // what we asked before is not stalled, however long our queue at it is.
  Clock::time_point last_heard{};
  // Client side, want_ahead: CIDs to want once the window has room (soon_keys: those still to
  // send; a get() that asks first takes its CID out), the wants sent ahead and not yet
  // answered, and where the peer was dialled.
  std::deque<Cid> soon;
  std::unordered_set<std::string> soon_keys;
  size_t ahead_out = 0;
  std::optional<p2p::Multiaddr> addr;
};

// One inbound bitswap stream: length-prefixed messages, each assembled in a buffer of its exact
// size and handed to the node whole (blocks are then viewed in place, never copied again).
class BitswapNode::Handler : public p2p::StreamHandler {
 public:
  explicit Handler(BitswapNode& node) : node_(node) {}
  size_t on_data(p2p::Stream& s, ByteView data) override {
    try {
      while (!data.empty()) {
        if (!msg_) {
          uint8_t b = data[0];
          data = data.subspan(1);
          if (shift_ >= 63) throw Error("malformed message length");
          want_ |= uint64_t{static_cast<uint8_t>(b & 0x7f)} << shift_;
          shift_ += 7;
          if (b & 0x80) continue;
          if (want_ > bitswap::kMaxMessage)
            throw Error("sent a message of " + std::to_string(want_) + " bytes (limit 4 MiB)");
          msg_ = std::make_shared<Bytes>();
          msg_->reserve(want_);
        }
        size_t take = std::min<size_t>(data.size(), want_ - msg_->size());
        msg_->insert(msg_->end(), data.begin(), data.begin() + static_cast<std::ptrdiff_t>(take));
        data = data.subspan(take);
        if (msg_->size() == want_) {
          auto whole = std::move(msg_);
          msg_.reset();
          want_ = 0;
          shift_ = 0;
          node_.on_message(s.connection(), whole);
        }
      }
    } catch (const Error& e) {
      node_.drop(s.connection(), e.what());
      return 0;
    }
    return msg_ ? msg_->size() : 0;
  }

 private:
  BitswapNode& node_;
  std::shared_ptr<Bytes> msg_;  // the message being assembled (after its length)
  uint64_t want_ = 0;
  int shift_ = 0;
};

BitswapNode::BitswapNode(p2p::Host& host, BlockStore* serve_from, BitswapOptions opts)
    : host_(host), store_(serve_from), opts_(opts) {
  for (auto proto : {bitswap::kProtocol120, bitswap::kProtocol110, bitswap::kProtocol100,
                     bitswap::kProtocolBare}) {
    host_.handle(std::string(proto),
                 [this](p2p::Stream&) { return std::make_unique<Handler>(*this); });
  }
  size_t n = std::max<size_t>(1, opts_.server_threads);
  for (size_t i = 0; i < n; ++i) workers_.push_back(signal_free_thread([this] { serve_loop(); }));
}

BitswapNode::~BitswapNode() {
  {
    std::lock_guard l(mu_);
    stopping_ = true;
  }
  work_cv_.notify_all();
  for (auto& t : workers_) t.join();
}

BitswapNode& BitswapNode::client() {
  // Lives for the whole process: the host's threads end with it.
  static p2p::Host* host = new p2p::Host(p2p::Ed25519Key::generate());
  static BitswapNode* node = new BitswapNode(*host, nullptr, BitswapOptions{.server_threads = 1});
  return *node;
}

BitswapStats BitswapNode::stats() const {
  std::lock_guard l(mu_);
  BitswapStats s = stats_;
  s.waiting = waiting_.size();
  return s;
}

std::shared_ptr<BitswapNode::Peer> BitswapNode::peer_state(const p2p::PeerId& id) {
  std::lock_guard l(mu_);
  auto& p = peers_[id.bytes()];
  if (!p) {
    p = std::make_shared<Peer>();
    p->id = id;
  }
  return p;
}

void BitswapNode::send_message(Peer& p, p2p::Connection& conn, const Bytes& framed) {
  std::lock_guard w(p.write_mu);
  // A long-lived stream carries every message; a peer may close it at any time (js-libp2p closes
  // idle streams), so one failure gets a fresh stream.
  for (int attempt = 0; attempt < 2; ++attempt) {
    try {
      if (!p.out || &p.out->connection() != &conn)
        p.out = conn.open_stream(bitswap::kProtocol120, Clock::now() + kStreamTimeout);
      p.out->write(framed, Clock::now() + kStreamTimeout);
      return;
    } catch (const Error& e) {
      p.out.reset();
      if (attempt == 1 || conn.closed()) throw;
      log::debug("bitswap: stream to " + p.id.str() + " failed (" + e.what() + "); reopening");
    }
  }
}

std::optional<ByteView> BitswapNode::get(const p2p::Multiaddr& addr, const Cid& cid,
                                         Bytes& scratch) {
  std::string where = addr.str();
  std::shared_ptr<p2p::Connection> conn;
  try {
    conn = host_.connect(addr, Clock::now() + std::chrono::seconds(10));
  } catch (const Error& e) {
    throw SourceError(e.what());
  }
  auto peer = peer_state(conn->peer());
  Waiter w;
  w.key = key_of(cid);
  w.peer = conn->peer().bytes();
  w.data = &scratch;
  bool wanted_ahead = false;  // by want_ahead, to this peer: no want of our own yet
  {
    std::lock_guard l(mu_);
    if (auto it = parked_.find(w.key); it != parked_.end()) {
      // Came already (verified when it was identified): nothing to ask.
      scratch = std::move(it->second);
      parked_bytes_ -= scratch.size();
      parked_.erase(it);
      return ByteView(scratch);
    }
    auto ahead = ahead_.find(w.key);
    wanted_ahead = ahead != ahead_.end() && ahead->second == w.peer;
    peer->soon_keys.erase(w.key);  // asked for now: not again from the queue
    peer->asked.insert(w.key);
    waiting_.emplace(w.key, &w);
  }
  // w lives on this stack frame: it must leave waiting_ before get() returns, whatever ended
  // the wait (an answer, DONT_HAVE, a dropped peer, a cancel, the deadline).
  auto unregister_locked = [&] {
    auto [b, e] = waiting_.equal_range(w.key);
    for (auto it = b; it != e; ++it) {
      if (it->second == &w) {
        waiting_.erase(it);
        break;
      }
    }
  };
  auto unregister = [&] {
    std::lock_guard l(mu_);
    unregister_locked();
  };
  auto send_want = [&] {
    try {
      Bytes msg = bitswap::encode(
          {{.cid = cid, .priority = 1, .type = bitswap::WantType::kBlock, .send_dont_have = true}},
          false, {}, {}, bitswap::Framing::kLengthPrefixed);
      send_message(*peer, *conn, msg);
    } catch (const Error& e) {
      unregister();
      throw SourceError(where + ": " + e.what());
    }
  };
  if (!wanted_ahead) send_want();
  // A want fails when the peer has sent nothing for block_timeout (a slow link shared by many
  // wants makes each wait long while blocks keep coming), and in any case after
  // kMaxWaitTimeouts times that (a peer that answers others but never this one).
  auto sent = Clock::now();
  auto hard_deadline = sent + opts_.block_timeout * kMaxWaitTimeouts;
  std::unique_lock l(mu_);
  while (w.state == Waiter::State::kWaiting) {
    auto now = Clock::now();
    if (now >= std::max(sent, peer->last_heard) + opts_.block_timeout || now >= hard_deadline ||
        conn->closed())
      break;
    if (!pending_.empty()) {
      l.unlock();
      take_pending(true);  // ours or another's: identified here, on a thread that waits anyway
      l.lock();
      continue;
    }
    if (wanted_ahead && now >= std::max(sent, peer->last_heard) + kAheadGrace) {
      // Wanted ahead, and the peer has gone quiet without it: ask for it ourselves.
      wanted_ahead = false;
      l.unlock();
      send_want();
      l.lock();
      continue;
    }
    w.cv.wait_for(l, std::chrono::milliseconds(100));
  }
  Waiter::State st = w.state;
  unregister_locked();
  l.unlock();
  switch (st) {
    case Waiter::State::kDone:
      return w.result;
    case Waiter::State::kDontHave:
      return std::nullopt;
    case Waiter::State::kFailed:
      throw SourceError(where + ": " + w.error);
    case Waiter::State::kCancelled:
    case Waiter::State::kWaiting:
      break;
  }
  if (st == Waiter::State::kCancelled) {
    try {
      send_message(*peer, *conn,
                   bitswap::encode({{.cid = cid, .cancel = true}}, false, {}, {},
                                   bitswap::Framing::kLengthPrefixed));
    } catch (const Error&) {
    }
    return std::nullopt;
  }
  if (conn->closed()) throw SourceError(where + ": connection lost (" + conn->close_reason() + ")");
  // Tell the peer to stop: it may still be working on it.
  try {
    Bytes cancel = bitswap::encode({{.cid = cid, .cancel = true}}, false, {}, {},
                                   bitswap::Framing::kLengthPrefixed);
    send_message(*peer, *conn, cancel);
  } catch (const Error&) {
  }
  throw SourceError(where + ": no answer for " + cid.str() + " (nothing from the peer for " +
                    std::to_string(opts_.block_timeout.count() / 1000) + " s, or waited " +
                    std::to_string(opts_.block_timeout.count() * kMaxWaitTimeouts / 1000) + " s)");
}

void BitswapNode::want_ahead(const p2p::Multiaddr& addr, std::span<const Cid> cids) {
  auto conn = host_.connect(addr, Clock::now() + std::chrono::seconds(10));
  auto peer = peer_state(conn->peer());
  std::vector<bitswap::Want> wants;
  {
    std::lock_guard l(mu_);
    peer->addr = addr;
    for (const Cid& c : cids) {
      if (peer->soon.size() >= kMaxSoon) break;
      if (c.is_identity()) continue;
      std::string k = key_of(c);
      if (parked_.count(k) || waiting_.count(k) || ahead_.count(k)) continue;
      if (!peer->soon_keys.insert(k).second) continue;
      peer->soon.push_back(c);
    }
    wants = fill_window_locked(*peer);
  }
  if (!wants.empty()) send_ahead(peer, wants);
}

void BitswapNode::cancel(const p2p::PeerId& peer, const Cid& cid) {
  {
    std::lock_guard l(mu_);
    auto [beg, end] = waiting_.equal_range(key_of(cid));
    for (auto it = beg; it != end; ++it) {
      Waiter& w = *it->second;
      if (w.peer == peer.bytes() && w.state == Waiter::State::kWaiting) {
        w.state = Waiter::State::kCancelled;
        w.cv.notify_one();
      }
    }
  }
}

void BitswapNode::drop(p2p::Connection& conn, const std::string& why) {
  log::warn("bitswap: dropping peer " + conn.peer().str() + ": " + why);
  {
    std::lock_guard l(mu_);
    ++stats_.peers_dropped;
    for (auto& [k, w] : waiting_) {
      if (w->peer == conn.peer().bytes() && w->state == Waiter::State::kWaiting) {
        w->state = Waiter::State::kFailed;
        w->error = why;
        w->cv.notify_one();
      }
    }
    auto it = peers_.find(conn.peer().bytes());
    if (it != peers_.end()) {
      it->second->wants.clear();
      it->second->wanted.clear();
    }
    std::erase_if(ahead_, [&](const auto& a) { return a.second == conn.peer().bytes(); });
    if (it != peers_.end()) {
      it->second->soon.clear();
      it->second->soon_keys.clear();
      it->second->ahead_out = 0;
    }
  }
  conn.close(why);
}

// On the reactor thread: must not block. Blocks are not hashed here: they wait in `pending_` for
// the threads blocked in get(), which hash them in parallel (hashing is what identifies a block)
// and hand each to whoever wanted it. Past kMaxPendingBytes the reactor hashes them itself, which
// slows reading from the peers: the bound on memory.
void BitswapNode::on_message(p2p::Connection& conn, const std::shared_ptr<Bytes>& frame) {
  bitswap::Message m = bitswap::decode(*frame, opts_.max_peer_wants);
  const Bytes& from = conn.peer().bytes();
  for (const auto& b : m.blocks) {
    if (b.data.size() > kMaxBlockSize)
      throw Error("sent a block of " + std::to_string(b.data.size()) +
                  " bytes, over the 2 MiB block limit");
  }
  if (!m.blocks.empty() || !m.presences.empty()) {
    bool inline_hash = false;
    {
      std::lock_guard l(mu_);
      if (auto pit = peers_.find(from); pit != peers_.end()) pit->second->last_heard = Clock::now();
      for (const auto& p : m.presences) {
        if (p.type != bitswap::Presence::kDontHave) continue;
        std::string k = key_of(p.cid);
        if (auto a = ahead_.find(k); a != ahead_.end() && a->second == from) {
          ahead_answered_locked(k);
        }
        auto [beg, end] = waiting_.equal_range(k);
        for (auto it = beg; it != end; ++it) {
          Waiter& w = *it->second;
          if (w.peer == from && w.state == Waiter::State::kWaiting) {
            w.state = Waiter::State::kDontHave;
            w.cv.notify_one();
          }
        }
      }
      for (const auto& b : m.blocks) {
        pending_.push_back({frame, b, from, conn.weak_from_this()});
        pending_bytes_ += b.data.size();
      }
      inline_hash = pending_bytes_ > kMaxPendingBytes;
      wake_hashers_locked(m.blocks.size());
    }
    if (inline_hash) {
      while (take_pending(false)) {
      }
    }
  }
  if (m.wants.empty() && !m.full_wantlist) return;
  auto peer = peer_state(conn.peer());
  bool queue = false;
  {
    std::lock_guard l(mu_);
    peer->conn = conn.shared_from_this();
    if (m.full_wantlist) {
      peer->wants.clear();
      peer->wanted.clear();
    }
    for (auto& w : m.wants) {
      std::string k = key_of(w.cid);
      if (w.cancel) {
        if (peer->wanted.erase(k)) {
          std::erase_if(peer->wants, [&](const bitswap::Want& x) { return key_of(x.cid) == k; });
        }
        continue;
      }
      if (!peer->wanted.insert(k).second) continue;
      peer->wants.push_back(std::move(w));
      if (peer->wants.size() > opts_.max_peer_wants)
        throw Error("wants more than " + std::to_string(opts_.max_peer_wants) + " blocks at once");
    }
    if (!peer->wants.empty() && !peer->queued) {
      peer->queued = true;
      work_.push_back(peer);
      queue = true;
    }
  }
  if (queue) work_cv_.notify_one();
}

// Blocks are hashed by the threads waiting in get(): wake as many as there are new blocks (no
// more than the machine has cores), whichever blocks they wait for.
void BitswapNode::wake_hashers_locked(size_t blocks) {
  size_t n = std::min<size_t>(blocks, std::max(1u, std::thread::hardware_concurrency()));
  for (auto it = waiting_.begin(); it != waiting_.end() && n > 0; ++it) {
    if (it->second->state != Waiter::State::kWaiting) continue;
    it->second->cv.notify_one();
    --n;
  }
}

bool BitswapNode::take_pending(bool may_send) {
  Pending item;
  {
    std::lock_guard l(mu_);
    if (pending_.empty()) return false;
    item = std::move(pending_.front());
    pending_.pop_front();
    pending_bytes_ -= item.block.data.size();
  }
  std::string lie;
  std::string k;
  std::shared_ptr<Peer> top_up;
  std::vector<bitswap::Want> refill;
  try {
    k = key_of(bitswap::block_cid(item.block));
  } catch (const Error& e) {
    lie = e.what();
  }
  {
    std::lock_guard l(mu_);
    if (lie.empty()) {
      auto [beg, end] = waiting_.equal_range(k);
      bool any = false;
      for (auto it = beg; it != end; ++it) {
        Waiter& w = *it->second;
        if (w.state != Waiter::State::kWaiting) continue;
        if (!any && item.message.use_count() == 1) {
          // The message's last block: its buffer becomes the waiter's (a vector's move keeps
          // the bytes where they are, so the view stays valid).
          *w.data = std::move(*item.message);
          w.result = item.block.data;
        } else {
          w.data->assign(item.block.data.begin(), item.block.data.end());
          w.result = *w.data;
        }
        w.state = Waiter::State::kDone;
        w.cv.notify_one();
        any = true;
      }
      bool was_ahead = ahead_answered_locked(k);
      if (was_ahead && !any && !parked_.count(k) &&
          parked_bytes_ + item.block.data.size() <= kMaxParkedBytes) {
        // Wanted ahead and not asked for yet: kept for its get(). Past the bound the newest
        // are dropped (the oldest are the ones a walk in order asks for first).
        parked_bytes_ += item.block.data.size();
        parked_.emplace(k, Bytes(item.block.data.begin(), item.block.data.end()));
      }
      auto pit = peers_.find(item.peer);
      if (!any && (pit == peers_.end() || !pit->second->asked.count(k))) {
        // Nobody asked this peer for it: wrong bytes for a want, or junk.
        lie = "sent bytes that do not hash to any block it was asked for";
      } else {
        ++stats_.blocks_received;
        stats_.bytes_received += item.block.data.size();
        if (was_ahead && may_send && pit != peers_.end()) {
          top_up = pit->second;
          refill = fill_window_locked(*top_up);
        }
      }
    }
  }
  if (!lie.empty()) {
    if (auto c = item.conn.lock()) drop(*c, lie);
  } else if (!refill.empty()) {
    send_ahead(top_up, refill);
  }
  return true;
}

std::vector<bitswap::Want> BitswapNode::fill_window_locked(Peer& p) {
  std::vector<bitswap::Want> out;
  // Topped up only once half the window is answered: fewer, bigger messages.
  if (p.soon.empty() || p.ahead_out > kAheadWindow / 2) return out;
  while (p.ahead_out < kAheadWindow && !p.soon.empty()) {
    Cid c = std::move(p.soon.front());
    p.soon.pop_front();
    std::string k = key_of(c);
    if (!p.soon_keys.erase(k)) continue;  // a get() asked for it meanwhile
    if (parked_.count(k) || waiting_.count(k) || !ahead_.emplace(k, p.id.bytes()).second) continue;
    p.asked.insert(k);
    ++p.ahead_out;
    out.push_back({.cid = std::move(c),
                   .priority = 1,
                   .type = bitswap::WantType::kBlock,
                   .send_dont_have = true});
  }
  return out;
}

bool BitswapNode::ahead_answered_locked(const std::string& key) {
  auto a = ahead_.find(key);
  if (a == ahead_.end()) return false;
  if (auto pit = peers_.find(a->second); pit != peers_.end() && pit->second->ahead_out > 0) {
    --pit->second->ahead_out;
  }
  ahead_.erase(a);
  return true;
}

void BitswapNode::send_ahead(const std::shared_ptr<Peer>& p,
                             const std::vector<bitswap::Want>& wants) {
  std::optional<p2p::Multiaddr> addr;
  {
    std::lock_guard l(mu_);
    addr = p->addr;
  }
  try {
    if (!addr) throw Error("no address");
    auto conn = host_.connect(*addr, Clock::now() + std::chrono::seconds(10));
    send_message(*p, *conn,
                 bitswap::encode(wants, false, {}, {}, bitswap::Framing::kLengthPrefixed));
  } catch (const Error& e) {
    // Their get() calls ask for themselves once the peer has been quiet for kAheadGrace.
    log::debug("bitswap: wanting ahead from " + p->id.str() + ": " + e.what());
    std::lock_guard l(mu_);
    for (const auto& w : wants) ahead_answered_locked(key_of(w.cid));
  }
}

void BitswapNode::serve_loop() {
  for (;;) {
    std::shared_ptr<Peer> p;
    {
      std::unique_lock l(mu_);
      work_cv_.wait(l, [&] { return stopping_ || !work_.empty(); });
      if (stopping_) return;
      p = std::move(work_.front());
      work_.pop_front();
    }
    // A peer whose link is still busy with what we sent went to the back of the queue: when it
    // is the only work, poll its link now and then rather than spin.
    if (!answer(p)) std::this_thread::sleep_for(kBacklogPoll);
  }
}

// One response message for one peer, then the peer goes to the back of the queue if it wants
// more: peers are served in turn, each message bounded by max_response. A peer whose link has not
// yet taken what we sent (more than half a message still unsent) waits at the back: blocks are
// chosen, least sent first, only as its link drains, with the cancels and wants that arrived
// meanwhile. Filling a slow link's queue ahead would commit seconds of it to blocks that other
// peers may deliver first (a seed sending each block once, not once per peer, needs this). And a
// worker never blocks writing to a peer that stopped reading (half a message plus a whole one
// stays below the host's send_high_water), so one such peer cannot hold up the others.
bool BitswapNode::answer(const std::shared_ptr<Peer>& p) {
  std::vector<bitswap::Want> batch;
  std::shared_ptr<p2p::Connection> conn = [&] {
    std::lock_guard l(mu_);
    return p->conn.lock();
  }();
  if (conn && !conn->closed() && conn->unsent_bytes() > opts_.max_response / 2) {
    std::lock_guard l(mu_);
    if (stopping_) return true;
    work_.push_back(p);  // still queued; this worker comes back for it after kBacklogPoll
    return false;
  }
  {
    std::lock_guard l(mu_);
    // The wants of this peer that we sent least often lately go first (a stable order: among
    // equals, the peer's own order).
    if (p->wants.size() > 1 && !sent_count_.empty()) {
      // Each want's count looked up once, not once per comparison.
      std::vector<std::pair<uint32_t, size_t>> order;
      order.reserve(p->wants.size());
      for (size_t i = 0; i < p->wants.size(); ++i) {
        auto it = sent_count_.find(key_of(p->wants[i].cid));
        order.emplace_back(it == sent_count_.end() ? 0u : it->second, i);
      }
      std::stable_sort(order.begin(), order.end(),
                       [](const auto& a, const auto& b) { return a.first < b.first; });
      std::deque<bitswap::Want> sorted;
      for (const auto& o : order) sorted.push_back(std::move(p->wants[o.second]));
      p->wants.swap(sorted);
    }
    // Answers are bounded by size, which only reading the blocks tells: take a handful of
    // wants now and stop reading once the message is full.
    while (!p->wants.empty() && batch.size() < 64) {
      batch.push_back(std::move(p->wants.front()));
      p->wants.pop_front();
    }
  }
  std::vector<Bytes> datas;
  std::vector<Cid> cids;
  std::vector<bitswap::BlockPresence> presences;
  size_t bytes = 0;
  size_t used = 0;
  for (; used < batch.size() && bytes < opts_.max_response; ++used) {
    const bitswap::Want& w = batch[used];
    std::optional<Bytes> data;
    bool have = false;
    if (store_) {
      try {
        if (w.type == bitswap::WantType::kBlock) {
          data = store_->get(w.cid);
          have = data.has_value();
        } else {
          have = store_->has(w.cid);
        }
      } catch (const Error& e) {
        log::warn("bitswap: reading " + w.cid.str() + ": " + e.what());
      }
    }
    if (data) {
      bytes += data->size();
      cids.push_back(w.cid);
      datas.push_back(std::move(*data));
    } else if (have) {
      presences.push_back({w.cid, bitswap::Presence::kHave});
    } else if (w.send_dont_have) {
      presences.push_back({w.cid, bitswap::Presence::kDontHave});
    }
  }
  {
    std::lock_guard l(mu_);
    // What did not fit goes back to the front, in order; answered wants leave the wantlist.
    for (size_t i = batch.size(); i > used; --i) p->wants.push_front(std::move(batch[i - 1]));
    for (size_t i = 0; i < used; ++i) p->wanted.erase(key_of(batch[i].cid));
  }
  if (conn && !conn->closed() && (!datas.empty() || !presences.empty())) {
    std::vector<bitswap::OutBlock> blocks;
    for (size_t i = 0; i < datas.size(); ++i) blocks.push_back({&cids[i], datas[i]});
    try {
      send_message(
          *p, *conn,
          bitswap::encode({}, false, blocks, presences, bitswap::Framing::kLengthPrefixed));
      std::lock_guard l(mu_);
      stats_.blocks_sent += datas.size();
      stats_.bytes_sent += bytes;
      // Bounded: forgotten wholesale when it grows large (the order is only a preference).
      if (sent_count_.size() > (1u << 20)) sent_count_.clear();
      for (const auto& c : cids) ++sent_count_[key_of(c)];
    } catch (const Error& e) {
      log::debug("bitswap: answering " + p->id.str() + ": " + e.what());
    }
  }
  bool again = false;
  {
    std::lock_guard l(mu_);
    p->queued = false;
    if (!p->wants.empty() && conn && !conn->closed()) {
      p->queued = true;
      work_.push_back(p);
      again = true;
    } else if (!conn || conn->closed()) {
      p->wants.clear();
      p->wanted.clear();
    }
  }
  if (again) work_cv_.notify_one();
  return true;
}

}  // namespace cidrun::exchange
