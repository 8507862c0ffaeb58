// Bitswap 1.2.0 over libp2p (p2p/host.h), both roles on one node, as every IPFS peer has them:
//
// Client: get() sends a WANT_BLOCK (asking for DONT_HAVE) to one peer on a long-lived stream and
// waits for the block, which the peer sends on a stream it opens to us. Blocks carry only a CID
// prefix: the receiver hashes the bytes to learn which CID they are, so a block handed out is
// verified by construction. A peer that sends a block nobody asked it for is lying (or broken):
// it is dropped and its pending wants fail as a lie. A want fails (SourceError) when the peer
// has sent nothing for block_timeout, or after kMaxWaitTimeouts times that in any case, and so do
// the wants of a peer whose connection ends.
//
// Server: each peer's wants go into its own bounded wantlist (cancels remove, a full wantlist
// replaces); worker threads answer the peers in turn from the block store, in messages of about
// max_response bytes, on one stream per peer, blocks sent least often first (so that peers
// pulling the same DAG from us at once get different blocks, and can trade them). A peer is
// answered again only once its link has taken most of the last answer (Connection::
// unsent_bytes): a slow link is never filled seconds ahead with blocks chosen before the peer's
// cancels arrived, and a peer that stops reading never holds a worker. A peer whose wantlist
// outgrows max_peer_wants, or whose message is malformed or oversized, is dropped.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "exchange/bitswap_message.h"
#include "p2p/host.h"
#include "store/blockstore.h"

namespace cidrun::exchange {

struct BitswapOptions {
  std::chrono::milliseconds block_timeout{20'000};
  size_t max_peer_wants = 16384;
  size_t server_threads = 4;
  size_t max_response = 2u << 20;
};

struct BitswapStats {
  uint64_t blocks_sent = 0, bytes_sent = 0, blocks_received = 0, bytes_received = 0;
  uint64_t peers_dropped = 0;
  uint64_t waiting = 0;  // get() calls waiting for an answer now
};

class BitswapNode {
 public:
  // serve_from: the store wants are answered from; nullptr for a client that answers every
  // want with DONT_HAVE (when asked to).
  BitswapNode(p2p::Host& host, BlockStore* serve_from, BitswapOptions opts = {});
  ~BitswapNode();
  BitswapNode(const BitswapNode&) = delete;
  BitswapNode& operator=(const BitswapNode&) = delete;

  // The process's client node (an ephemeral identity, listening nowhere), made on first use.
  static BitswapNode& client();

  // The block from peer, verified, in scratch (valid until scratch changes); nullopt when the
  // peer says it does not have it. Throws SourceError when the peer cannot be reached, times
  // out, or lies.
  std::optional<ByteView> get(const p2p::Multiaddr& peer, const Cid& cid, Bytes& scratch);

  // Ends the waits of get() calls for cid from peer (they return nullopt) and tells the peer.
  void cancel(const p2p::PeerId& peer, const Cid& cid);

  // Asks peer for cids ahead of the get() calls that will want them (a pull that just fetched
  // a directory wants its entries next): a few big wantlists instead of one message per block,
  // and the blocks are on their way when get() asks. At most kAheadWindow such wants are out
  // per peer; the rest wait in a queue (up to kMaxSoon) and go as answers free the window. A
  // block that arrives before its get() is parked for it (at most kMaxParkedBytes; one that
  // does not fit is dropped and its get() asks again). A get() for a CID wanted ahead sends no
  // want of its own unless the peer has been silent for kAheadGrace (a peer that ignored part
  // of a long wantlist). CIDs already wanted, queued or parked are skipped.
  void want_ahead(const p2p::Multiaddr& peer, std::span<const Cid> cids);

  BitswapStats stats() const;
  p2p::Host& host() { return host_; }

 private:
  struct Peer;
  struct Waiter;
  class Handler;
  friend class Handler;

  std::shared_ptr<Peer> peer_state(const p2p::PeerId& id);
  struct Pending {
    std::shared_ptr<Bytes> message;  // holds the bytes `block` views
    bitswap::WireBlock block;
    Bytes peer;
    std::weak_ptr<p2p::Connection> conn;
  };
  static constexpr size_t kMaxPendingBytes = 64u << 20;
  static constexpr size_t kMaxParkedBytes = 64u << 20;
  // Wants sent ahead and not yet answered, per peer (a sliding window, topped up when half of it
  // is answered), and the CIDs queued behind it.
  static constexpr size_t kAheadWindow = 1024;
  static constexpr size_t kMaxSoon = 1u << 16;
  static constexpr auto kAheadGrace = std::chrono::milliseconds(500);
  static constexpr int kMaxWaitTimeouts = 8;
  void on_message(p2p::Connection& conn, const std::shared_ptr<Bytes>& frame);
  // Hashes one received block and hands it to its waiters; false when none is pending.
  // may_send: the caller may block sending (not the reactor), and so tops up want_ahead's
  // window when it has room.
  bool take_pending(bool may_send);
  // Moves CIDs from p's want_ahead queue into its window; returns the wants to send.
  std::vector<bitswap::Want> fill_window_locked(Peer& p);
  void send_ahead(const std::shared_ptr<Peer>& p, const std::vector<bitswap::Want>& wants);
  // A want sent ahead was answered (block or DONT_HAVE): frees its room in the window. False
  // when key was not wanted ahead.
  bool ahead_answered_locked(const std::string& key);
  void wake_hashers_locked(size_t blocks);
  void drop(p2p::Connection& conn, const std::string& why);
  void send_message(Peer& p, p2p::Connection& conn, const Bytes& msg);
  void serve_loop();
  // False when the peer's link was still busy and it went back to the queue unanswered.
  bool answer(const std::shared_ptr<Peer>& p);
  static constexpr auto kBacklogPoll = std::chrono::milliseconds(2);

  p2p::Host& host_;
  BlockStore* store_;
  BitswapOptions opts_;

  mutable std::mutex mu_;
  std::unordered_multimap<std::string, Waiter*> waiting_;  // by multihash
  std::deque<Pending> pending_;                            // received, not yet identified
  size_t pending_bytes_ = 0;
  std::map<Bytes, std::shared_ptr<Peer>> peers_;
  // Client: CIDs wanted ahead (by multihash) and the peer asked; blocks that came before their
  // get(), the oldest first in parked_order_ (which may name blocks taken since).
  std::unordered_map<std::string, Bytes> ahead_;
  std::unordered_map<std::string, Bytes> parked_;
  size_t parked_bytes_ = 0;
  BitswapStats stats_;
  // How often each block was sent lately (server): each peer's wants are answered least-sent
  // first, so that peers pulling the same DAG at once get different blocks from us and can
  // trade them among themselves (BitTorrent's super-seeding).
  std::unordered_map<std::string, uint32_t> sent_count_;

  std::condition_variable work_cv_;
  std::deque<std::shared_ptr<Peer>> work_;
  std::vector<std::thread> workers_;
  bool stopping_ = false;
};

}  // namespace cidrun::exchange
