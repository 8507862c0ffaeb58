// A libp2p node over TCP: connections secured with Noise (noise.h) and multiplexed with yamux
// (yamux.h), streams whose protocol is chosen by multistream-select (multistream.h), and the
// two protocols every peer expects, Identify and Ping.
//
// Threads. One reactor thread per Host reads every connection (epoll): it decrypts, parses yamux
// frames and hands stream bytes either to a StreamHandler (the protocols peers open to us: they
// run on the reactor and must never block) or to a Stream's buffer, where a thread that opened
// the stream reads them with a deadline. Writes come from any thread: a frame is encrypted into
// the connection's send queue under its lock and flushed without blocking; a writer other than
// the reactor then waits while the queue is over its high-water mark, so the reactor never waits
// on a peer and a slow peer slows only the threads that write to it. Handshakes run on a thread
// per connection being set up, bounded in number and in time.
//
// Bounds against hostile peers: streams a peer may keep open at once, bytes its handlers may hold
// (partial messages), the yamux windows we grant, handshake time, and stalled partial messages;
// a peer that breaks the protocol (frames beyond its window, bad Noise frames, unknown frame
// types) loses the connection.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "p2p/crypto.h"
#include "p2p/frame.h"
#include "p2p/multiaddr.h"
#include "p2p/multistream.h"
#include "p2p/noise.h"
#include "p2p/peer_id.h"
#include "p2p/yamux.h"
#include "util/bytes.h"
#include "util/fd.h"

namespace cidrun::p2p {

using Clock = std::chrono::steady_clock;

class Connection;
class Host;
class StreamHandler;

class Stream : public std::enable_shared_from_this<Stream> {
 public:
  Stream(std::shared_ptr<Connection> conn, uint32_t id, bool outbound);
  uint32_t id() const { return id_; }
  const std::string& protocol() const { return protocol_; }
  const PeerId& peer() const;
  Connection& connection() const { return conn_; }

  // Up to len bytes; 0 once the peer closed its side. Throws Error when the stream was reset, the
  // connection closed, or the deadline passed. Not for the reactor thread.
  size_t read(uint8_t* buf, size_t len, Clock::time_point deadline);
  // One length-prefixed message of at most max bytes; nullopt at a clean end before its first
  // byte. Throws as read(), and for a message over max.
  std::optional<Bytes> read_frame(size_t max, Clock::time_point deadline);
  // Writes all of data, waiting for the peer's window (on the reactor thread: only what the
  // window takes now, else Error). Throws Error when reset, closed, or past the deadline.
  void write(ByteView data, Clock::time_point deadline);
  void close_write();  // our half-close (FIN); idempotent
  void reset();        // abort both directions (RST); idempotent

 private:
  friend class Connection;
  std::shared_ptr<Connection> conn_ptr_;  // keeps the connection alive while a reader holds us
  Connection& conn_;
  const uint32_t id_;
  const bool outbound_;
  std::string protocol_;
  // Under the connection's mutex:
  uint32_t send_window_ = yamux::kInitialWindow;
  uint32_t recv_window_ = yamux::kInitialWindow;  // what the peer may still send
  uint32_t recv_credit_ = 0;                      // consumed, not yet granted back
  std::deque<Bytes> rx_;                          // for a blocking reader
  size_t rx_offset_ = 0;                          // into rx_.front()
  bool remote_closed_ = false, local_closed_ = false, reset_ = false;
  // Reactor-only state of a stream the peer opened:
  std::unique_ptr<MssListener> negotiation_;
  std::unique_ptr<FrameReader> negotiation_frames_;
  std::unique_ptr<StreamHandler> handler_;
  size_t handler_held_ = 0;
  Clock::time_point last_data_{};
};

// A protocol a peer opens streams for. Called on the reactor thread: must not block (hand work
// to another thread). Throwing resets the stream.
class StreamHandler {
 public:
  virtual ~StreamHandler() = default;
  // Bytes arrived; returns how many bytes the handler now holds back (a partial message), which
  // count against the connection's budget.
  virtual size_t on_data(Stream& s, ByteView data) = 0;
  // The peer closed its side.
  virtual void on_fin(Stream& s) { s.close_write(); }
  virtual void on_reset(Stream& /*s*/) {}
};
using HandlerFactory = std::function<std::unique_ptr<StreamHandler>(Stream&)>;

struct HostOptions {
  std::string agent_version = "cidrun";
  size_t max_connections = 512;
  size_t max_handshakes = 64;          // set up at once
  size_t max_inbound_streams = 256;    // a peer's open streams per connection
  size_t max_held_bytes = 64u << 20;   // partial messages held per connection
  uint32_t stream_window = 16u << 20;  // yamux receive window granted per stream
  size_t send_high_water = 4u << 20;   // queued bytes at which writers wait
  std::chrono::milliseconds handshake_timeout{10'000};
  std::chrono::milliseconds write_timeout{60'000};    // a peer that reads nothing this long
  std::chrono::milliseconds stalled_message{30'000};  // a partial message that stops growing
};

struct ConnectionStats {
  uint64_t bytes_in = 0, bytes_out = 0;
};

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  ~Connection();
  const PeerId& peer() const { return peer_; }
  const Multiaddr& remote_addr() const { return remote_; }
  bool dialer() const { return dialer_; }
  bool closed() const;
  const std::string& close_reason() const { return close_reason_; }

  // Opens a stream and agrees on `protocol` with multistream-select. Throws Error when the peer
  // does not speak it, or on a closed connection or the deadline.
  std::shared_ptr<Stream> open_stream(std::string_view protocol, Clock::time_point deadline);
  // Ends the connection (any thread): every stream is reset.
  void close(const std::string& why);
  ConnectionStats stats() const;
  // Bytes written to the connection that have not left this host yet: the sealed frames queued
  // here plus those the socket holds unsent. A sender that tops up a slow peer only while this is
  // small commits little to that peer's link, so what it sends next is chosen with fresh news
  // (cancels, other peers' wants) instead of seconds of queue chosen long before.
  size_t unsent_bytes() const;

 private:
  friend class Host;
  friend class Stream;
  struct Handshaked;
  Connection(Host& host, UniqueFd fd, Handshaked hs);

  enum class Block { kNo, kYes };
  void send_frame(const yamux::Header& h, ByteView payload, Block block,
                  Clock::time_point deadline = Clock::time_point::max());
  void flush_locked();
  void arm_write_locked(bool want);
  bool on_reactor() const;

  // Reactor side.
  void on_readable();
  bool process_input();  // false once the connection closed
  void on_writable();
  void on_tick(Clock::time_point now);
  void process_plain();
  void handle_header(const yamux::Header& h);
  void deliver(const std::shared_ptr<Stream>& s, ByteView data);
  void apply_flags(const std::shared_ptr<Stream>& s, uint16_t flags);
  std::shared_ptr<Stream> accept_stream(uint32_t id);
  void negotiate(const std::shared_ptr<Stream>& s, ByteView data);
  void reset_stream_locked(Stream& s, bool send_rst);
  void forget_if_done_locked(const Stream& s);
  void credit(Stream& s, size_t n);
  void teardown();  // reactor: after close, drop from epoll and release the socket

  Host& host_;
  UniqueFd fd_;
  PeerId peer_;
  Multiaddr remote_;
  bool dialer_;
  NoiseCipher send_cipher_, recv_cipher_;

  mutable std::mutex mu_;  // streams and their state
  std::condition_variable cv_;
  std::map<uint32_t, std::shared_ptr<Stream>> streams_;
  uint32_t next_stream_id_;
  size_t inbound_open_ = 0;
  size_t held_bytes_ = 0;
  bool closed_ = false;
  std::string close_reason_;

  mutable std::mutex write_mu_;  // send queue and the socket's write side
  std::condition_variable write_cv_;
  bool write_armed_ = false;
  bool write_closed_ = false;
  ConnectionStats stats_;

  // Reactor-only parse state: bytes read and not yet decrypted, decrypted and not yet parsed;
  // and the send queue. Plain buffers of their own: a vector zero-fills what it grows by, for
  // every read and every sealed frame (a tenth of a bitswap server's time).
  class Buffer {
   public:
    // Room for n more bytes at the end (moving what is left to the front, or growing).
    uint8_t* reserve(size_t n);
    void commit(size_t n) { end_ += n; }
    void append(ByteView b);
    ByteView view() const { return {data_.get() + begin_, end_ - begin_}; }
    size_t size() const { return end_ - begin_; }
    void consume(size_t n);

   private:
    std::unique_ptr<uint8_t[]> data_;
    size_t cap_ = 0, begin_ = 0, end_ = 0;
  };
  Buffer raw_, plain_;
  Buffer tx_;  // sealed frames not yet sent (under write_mu_)
  uint32_t data_stream_ = 0;
  uint32_t data_left_ = 0;
  uint16_t data_flags_ = 0;
  bool in_epoll_ = false;
};

class Host {
 public:
  explicit Host(Ed25519Key identity, HostOptions opts = {});
  ~Host();
  Host(const Host&) = delete;
  Host& operator=(const Host&) = delete;

  const PeerId& id() const { return id_; }
  const Ed25519Key& identity() const { return identity_; }
  const HostOptions& options() const { return opts_; }

  // Registers a protocol that peers may open streams for (before listen/connect).
  void handle(std::string protocol, HandlerFactory factory);
  std::vector<std::string> protocols() const;

  // Listens on a /ip4|ip6/H/tcp/P address (port 0 = any); returns the bound address with /p2p.
  Multiaddr listen(const Multiaddr& addr);
  std::vector<Multiaddr> listen_addrs() const;

  // An open connection to addr's peer, or a new one: TCP, Noise (the peer must prove it is
  // addr's /p2p id), yamux. Throws Error naming the address and what failed.
  std::shared_ptr<Connection> connect(const Multiaddr& addr, Clock::time_point deadline);
  std::vector<std::shared_ptr<Connection>> connections() const;

  // Closes every connection and stops the threads (the destructor does it too).
  void stop();

 private:
  friend class Connection;
  struct Listener {
    UniqueFd fd;
    Multiaddr addr;
  };
  void reactor_loop();
  void accept_ready(int fd);
  void handshake_thread(UniqueFd fd, const Multiaddr& remote);
  std::shared_ptr<Connection> adopt(UniqueFd fd, Multiaddr remote, bool dialer,
                                    struct Connection::Handshaked hs);
  void epoll_mod(Connection& c, bool want_write);
  void drop(Connection* c);
  void wake();
  void closing(std::shared_ptr<Connection> c);
  HandlerFactory factory_for(std::string_view protocol) const;
  bool supports(std::string_view protocol) const;
  Bytes identify_message(const Connection& c) const;

  Ed25519Key identity_;
  PeerId id_;
  HostOptions opts_;
  X25519Key noise_static_;
  std::map<std::string, HandlerFactory, std::less<>> handlers_;
  std::vector<Listener> listeners_;

  UniqueFd epoll_, wake_fd_;
  std::thread reactor_;
  std::thread::id reactor_id_;
  mutable std::mutex mu_;
  std::condition_variable handshakes_cv_;
  std::map<Connection*, std::shared_ptr<Connection>> conns_;
  std::vector<std::shared_ptr<Connection>> fresh_, closing_;  // for the reactor
  size_t handshakes_ = 0;
  std::vector<int> handshake_fds_;
  bool stopping_ = false;
};

// Loads the node's identity from path (a PrivateKey protobuf), creating it (mode 0600) when
// absent. Throws Error for an unreadable or malformed key file.
Ed25519Key load_or_create_identity(const std::string& path);

}  // namespace cidrun::p2p
