#include "p2p/host.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "net/conn.h"
#include "p2p/identify.h"
#include "util/error.h"
#include "util/log.h"
#include "util/thread_pool.h"
#include "util/varint.h"

namespace cidrun::p2p {
namespace {

using std::chrono::milliseconds;

int poll_ms(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now()).count();
  if (left <= 0) return 0;
  return static_cast<int>(std::min<long long>(left, 1000));
}

void set_nonblocking(int fd) {
  int fl = ::fcntl(fd, F_GETFL);
  if (fl < 0 || ::fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) throw_errno("fcntl(O_NONBLOCK)");
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

Multiaddr sockaddr_to_multiaddr(const sockaddr_storage& ss) {
  Multiaddr m;
  char buf[INET6_ADDRSTRLEN];
  if (ss.ss_family == AF_INET) {
    const auto& a = reinterpret_cast<const sockaddr_in&>(ss);
    inet_ntop(AF_INET, &a.sin_addr, buf, sizeof buf);
    m.ip4 = buf;
    m.port = ntohs(a.sin_port);
  } else {
    const auto& a = reinterpret_cast<const sockaddr_in6&>(ss);
    inet_ntop(AF_INET6, &a.sin6_addr, buf, sizeof buf);
    m.ip6 = buf;
    m.port = ntohs(a.sin6_port);
  }
  m.has_tcp = true;
  return m;
}

// Blocking I/O with deadlines for the handshake: multistream-select on the raw socket, Noise,
// then multistream-select for yamux inside Noise. What the peer sent beyond the handshake stays
// in the buffers and is handed to the connection.
class HandshakeIo {
 public:
  HandshakeIo(int fd, Clock::time_point deadline) : fd_(fd), deadline_(deadline) {}

  void write_raw(ByteView data) {
    size_t off = 0;
    while (off < data.size()) {
      ssize_t n = ::send(fd_, data.data() + off, data.size() - off, MSG_NOSIGNAL);
      if (n > 0) {
        off += static_cast<size_t>(n);
        continue;
      }
      if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) throw_errno("send");
      wait(POLLOUT);
    }
  }

  // Ensures n raw bytes are buffered.
  ByteView raw(size_t n) {
    while (raw_.size() - raw_pos_ < n) fill();
    return ByteView(raw_).subspan(raw_pos_, n);
  }
  void consume_raw(size_t n) { raw_pos_ += n; }

  // One multistream frame from the raw bytes (before Noise) or the decrypted ones (after).
  ByteView mss_frame() {
    for (;;) {
      Bytes& b = secure_ ? plain_ : raw_;
      size_t& pos = secure_ ? plain_pos_ : raw_pos_;
      ByteView avail = ByteView(b).subspan(pos);
      size_t p = 0;
      auto len = get_varint(avail, p);
      if (len) {
        if (*len > kMaxMssLine) throw Error("multistream-select: message too long");
        if (avail.size() - p >= *len) {
          pos += p + *len;
          return avail.subspan(p, *len);
        }
      } else if (avail.size() >= 10) {
        throw Error("multistream-select: malformed length");
      }
      if (secure_) {
        read_transport_frame();
      } else {
        fill();
      }
    }
  }

  Bytes noise_message() {
    ByteView len = raw(2);
    size_t n = (size_t{len[0]} << 8) | len[1];
    consume_raw(2);
    Bytes m(raw(n).begin(), raw(n).end());
    consume_raw(n);
    return m;
  }
  void send_noise_message(ByteView m) {
    Bytes out{static_cast<uint8_t>(m.size() >> 8), static_cast<uint8_t>(m.size())};
    out.insert(out.end(), m.begin(), m.end());
    write_raw(out);
  }

  void secure(const Key32& send, const Key32& recv) {
    send_.emplace(send);
    recv_.emplace(recv);
    secure_ = true;
  }
  void write_secure(ByteView plaintext) {
    Bytes sealed;
    send_->encrypt({}, plaintext, sealed);
    send_noise_message(sealed);
  }
  void read_transport_frame() {
    Bytes m = noise_message();
    if (m.size() < kNoiseTag) throw Error("Noise: frame shorter than its tag");
    size_t at = plain_.size();
    plain_.resize(at + m.size() - kNoiseTag);
    recv_->decrypt_into(m, plain_.data() + at);
  }

  NoiseCipher take_send() { return std::move(*send_); }
  NoiseCipher take_recv() { return std::move(*recv_); }
  Bytes leftover_raw() const {
    return Bytes(raw_.begin() + static_cast<long>(raw_pos_), raw_.end());
  }
  Bytes leftover_plain() const {
    return Bytes(plain_.begin() + static_cast<long>(plain_pos_), plain_.end());
  }

 private:
  void wait(short events) {
    for (;;) {
      if (Clock::now() >= deadline_) throw Error("handshake timed out");
      pollfd p{fd_, events, 0};
      int r = ::poll(&p, 1, poll_ms(deadline_));
      if (r > 0) return;
      if (r < 0 && errno != EINTR) throw_errno("poll");
    }
  }
  void fill() {
    uint8_t buf[16384];
    for (;;) {
      ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n > 0) {
        raw_.insert(raw_.end(), buf, buf + n);
        return;
      }
      if (n == 0) throw Error("the peer closed the connection during the handshake");
      if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) throw_errno("recv");
      wait(POLLIN);
    }
  }

  int fd_;
  Clock::time_point deadline_;
  Bytes raw_, plain_;
  size_t raw_pos_ = 0, plain_pos_ = 0;
  bool secure_ = false;
  std::optional<NoiseCipher> send_, recv_;
};

constexpr std::string_view kNoiseProtocol = "/noise";

void dial_mss(HandshakeIo& io, std::string_view protocol, bool secure) {
  Bytes out;
  put_mss(out, kMultistream);
  put_mss(out, protocol);
  if (secure) {
    io.write_secure(out);
  } else {
    io.write_raw(out);
  }
  MssDialer d{std::string(protocol)};
  for (;;) {
    switch (d.on_frame(io.mss_frame())) {
      case MssDialer::Result::kMore:
        continue;
      case MssDialer::Result::kAccepted:
        return;
      case MssDialer::Result::kRefused:
        throw Error("the peer does not speak " + std::string(protocol));
    }
  }
}

void listen_mss(HandshakeIo& io, std::string_view protocol, bool secure) {
  MssListener l([&](std::string_view p) { return p == protocol; });
  for (;;) {
    Bytes reply;
    auto chosen = l.on_frame(io.mss_frame(), reply);
    if (secure) {
      io.write_secure(reply);
    } else {
      io.write_raw(reply);
    }
    if (chosen) return;
  }
}

}  // namespace

struct Connection::Handshaked {
  PeerId peer;
  NoiseCipher send, recv;
  Bytes raw, plain;
};

// ---- Stream --------------------------------------------------------------------------------

Stream::Stream(std::shared_ptr<Connection> conn, uint32_t id, bool outbound)
    : conn_ptr_(std::move(conn)), conn_(*conn_ptr_), id_(id), outbound_(outbound) {}

const PeerId& Stream::peer() const {
  return conn_.peer();
}

size_t Stream::read(uint8_t* buf, size_t len, Clock::time_point deadline) {
  std::unique_lock l(conn_.mu_);
  for (;;) {
    if (!rx_.empty()) {
      size_t n = 0;
      while (n < len && !rx_.empty()) {
        Bytes& front = rx_.front();
        size_t take = std::min(len - n, front.size() - rx_offset_);
        std::memcpy(buf + n, front.data() + rx_offset_, take);
        n += take;
        rx_offset_ += take;
        if (rx_offset_ == front.size()) {
          rx_.pop_front();
          rx_offset_ = 0;
        }
      }
      l.unlock();
      conn_.credit(*this, n);
      return n;
    }
    if (reset_) throw Error("stream " + protocol_ + " was reset by " + conn_.peer().str());
    if (remote_closed_) return 0;
    if (conn_.closed_)
      throw Error("connection to " + conn_.peer().str() + " closed: " + conn_.close_reason_);
    if (conn_.cv_.wait_until(l, deadline) == std::cv_status::timeout && Clock::now() >= deadline &&
        rx_.empty())
      throw Error("timed out reading from " + conn_.peer().str());
  }
}

std::optional<Bytes> Stream::read_frame(size_t max, Clock::time_point deadline) {
  // The length prefix byte by byte (it is at most 10 bytes), then the body in one piece.
  uint64_t len = 0;
  int shift = 0;
  for (int i = 0;; ++i) {
    uint8_t b = 0;
    if (read(&b, 1, deadline) == 0) {
      if (i == 0) return std::nullopt;
      throw Error("stream ended inside a message length");
    }
    if (i >= 9) throw Error("malformed message length");
    len |= uint64_t{static_cast<uint8_t>(b & 0x7f)} << shift;
    shift += 7;
    if (!(b & 0x80)) break;
  }
  if (len > max)
    throw Error("message of " + std::to_string(len) + " bytes from " + conn_.peer().str() +
                " is over the limit of " + std::to_string(max));
  Bytes out(len);
  size_t got = 0;
  while (got < len) {
    size_t n = read(out.data() + got, len - got, deadline);
    if (n == 0) throw Error("stream ended inside a message");
    got += n;
  }
  return out;
}

void Stream::write(ByteView data, Clock::time_point deadline) {
  bool reactor = conn_.on_reactor();
  size_t off = 0;
  while (off < data.size()) {
    size_t n = 0;
    {
      std::unique_lock l(conn_.mu_);
      for (;;) {
        if (reset_) throw Error("stream " + protocol_ + " was reset by " + conn_.peer().str());
        if (conn_.closed_) throw Error("connection to " + conn_.peer().str() + " closed");
        if (local_closed_) throw Error("write after close");
        if (send_window_ > 0) break;
        if (reactor) throw Error("stream window exhausted");
        if (conn_.cv_.wait_until(l, deadline) == std::cv_status::timeout &&
            Clock::now() >= deadline)
          throw Error("timed out writing to " + conn_.peer().str() + " (no window)");
      }
      n = std::min<size_t>({data.size() - off, send_window_, 256u << 10});
      send_window_ -= static_cast<uint32_t>(n);
    }
    conn_.send_frame({yamux::Type::kData, 0, id_, static_cast<uint32_t>(n)}, data.subspan(off, n),
                     reactor ? Connection::Block::kNo : Connection::Block::kYes, deadline);
    off += n;
  }
}

void Stream::close_write() {
  {
    std::lock_guard l(conn_.mu_);
    if (local_closed_ || reset_ || conn_.closed_) return;
    local_closed_ = true;
  }
  try {
    conn_.send_frame({yamux::Type::kWindowUpdate, yamux::kFin, id_, 0}, {}, Connection::Block::kNo);
  } catch (const Error&) {
    return;  // the connection is gone: nothing to close
  }
  std::lock_guard l(conn_.mu_);
  conn_.forget_if_done_locked(*this);
}

void Stream::reset() {
  std::lock_guard l(conn_.mu_);
  conn_.reset_stream_locked(*this, true);
}

// ---- Connection ----------------------------------------------------------------------------

Connection::Connection(Host& host, UniqueFd fd, Handshaked hs)
    : host_(host),
      fd_(std::move(fd)),
      peer_(std::move(hs.peer)),
      dialer_(false),
      send_cipher_(std::move(hs.send)),
      recv_cipher_(std::move(hs.recv)),
      next_stream_id_(0) {
  raw_.append(hs.raw);
  plain_.append(hs.plain);
}

uint8_t* Connection::Buffer::reserve(size_t n) {
  if (cap_ - end_ >= n) return data_.get() + end_;
  size_t used = end_ - begin_;
  if (cap_ - used >= n && begin_ > 0) {
    std::memmove(data_.get(), data_.get() + begin_, used);
  } else {
    size_t cap = std::max(cap_ * 2, used + n);
    auto bigger = std::make_unique_for_overwrite<uint8_t[]>(cap);
    if (used) std::memcpy(bigger.get(), data_.get() + begin_, used);
    data_ = std::move(bigger);
    cap_ = cap;
  }
  begin_ = 0;
  end_ = used;
  return data_.get() + end_;
}

void Connection::Buffer::append(ByteView b) {
  if (b.empty()) return;
  std::memcpy(reserve(b.size()), b.data(), b.size());
  commit(b.size());
}

void Connection::Buffer::consume(size_t n) {
  begin_ += n;
  if (begin_ == end_) begin_ = end_ = 0;
}

Connection::~Connection() = default;

bool Connection::closed() const {
  std::lock_guard l(mu_);
  return closed_;
}

ConnectionStats Connection::stats() const {
  std::lock_guard l(write_mu_);
  return stats_;
}

size_t Connection::unsent_bytes() const {
  std::lock_guard w(write_mu_);
  int queued = 0;
  // SIOCOUTQNSD: bytes in the send queue not yet sent (SIOCOUTQ would count sent, unacknowledged
  // ones too). On error (a closed socket) only the queue here counts.
  if (write_closed_ || ::ioctl(fd_.get(), SIOCOUTQNSD, &queued) != 0) queued = 0;
  return tx_.size() + static_cast<size_t>(std::max(queued, 0));
}

bool Connection::on_reactor() const {
  return std::this_thread::get_id() == host_.reactor_id_;
}

void Connection::close(const std::string& why) {
  std::vector<std::shared_ptr<Stream>> streams;
  {
    std::lock_guard l(mu_);
    if (closed_) return;
    closed_ = true;
    close_reason_ = why;
    for (auto& [id, s] : streams_) {
      s->reset_ = true;
      streams.push_back(s);
    }
    streams_.clear();
  }
  cv_.notify_all();
  {
    std::lock_guard w(write_mu_);
    write_closed_ = true;
    if (fd_.valid()) ::shutdown(fd_.get(), SHUT_RDWR);
  }
  write_cv_.notify_all();
  log::debug("p2p: connection to " + peer_.str() + " closed: " + why);
  host_.closing(shared_from_this());
}

void Connection::arm_write_locked(bool want) {
  if (want == write_armed_ || write_closed_) return;
  write_armed_ = want;
  host_.epoll_mod(*this, want);
}

void Connection::flush_locked() {
  while (tx_.size() > 0) {
    ByteView pending = tx_.view();
    ssize_t n = ::send(fd_.get(), pending.data(), pending.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      tx_.consume(static_cast<size_t>(n));
      stats_.bytes_out += static_cast<uint64_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    write_closed_ = true;  // the peer is gone; the reader will see it too
    tx_.consume(tx_.size());
    return;
  }
  arm_write_locked(tx_.size() > 0);
}

void Connection::send_frame(const yamux::Header& h, ByteView payload, Block block,
                            Clock::time_point deadline) {
  std::unique_lock w(write_mu_);
  if (write_closed_) throw Error("connection to " + peer_.str() + " closed");
  // The yamux bytes (header then payload) are one byte stream cut into Noise frames, each sealed
  // straight from the pieces (no gathering copy).
  uint8_t header[yamux::kHeaderSize];
  {
    Bytes hb;
    yamux::put_header(hb, h);
    std::copy(hb.begin(), hb.end(), header);
  }
  ByteView head(header, sizeof header);
  size_t off = 0;
  bool first = true;
  for (;;) {
    ByteView parts[2];
    size_t n = 0;
    size_t room = kNoiseMaxPlaintext;
    if (first) {
      parts[n++] = head;
      room -= head.size();
    }
    size_t take = std::min(payload.size() - off, room);
    if (take > 0) parts[n++] = payload.subspan(off, take);
    off += take;
    size_t len = (first ? head.size() : 0) + take + kNoiseTag;
    uint8_t* frame = tx_.reserve(2 + len);
    frame[0] = static_cast<uint8_t>(len >> 8);
    frame[1] = static_cast<uint8_t>(len);
    send_cipher_.encrypt_parts(std::span<const ByteView>(parts, n), frame + 2);
    tx_.commit(2 + len);
    first = false;
    if (off == payload.size()) break;
  }
  flush_locked();
  if (block == Block::kNo) return;
  Clock::time_point limit = std::min(deadline, Clock::now() + host_.opts_.write_timeout);
  while (!write_closed_ && tx_.size() > host_.opts_.send_high_water) {
    if (write_cv_.wait_until(w, limit) == std::cv_status::timeout && Clock::now() >= limit) {
      w.unlock();
      if (limit < deadline) close("the peer read nothing for too long");
      throw Error("timed out writing to " + peer_.str());
    }
  }
}

void Connection::on_writable() {
  {
    std::lock_guard w(write_mu_);
    flush_locked();
  }
  write_cv_.notify_all();
}

void Connection::credit(Stream& s, size_t n) {
  uint32_t grant = 0;
  {
    std::lock_guard l(mu_);
    if (s.reset_ || closed_) return;
    s.recv_credit_ += static_cast<uint32_t>(n);
    uint32_t target = host_.opts_.stream_window;
    // Grant back in large steps (fewer frames), long before the peer runs dry.
    if (s.recv_credit_ >= target / 4 || s.recv_window_ + s.recv_credit_ < target / 2) {
      grant = s.recv_credit_;
      s.recv_window_ += grant;
      s.recv_credit_ = 0;
    }
  }
  if (grant > 0) {
    try {
      send_frame({yamux::Type::kWindowUpdate, 0, s.id_, grant}, {}, Block::kNo);
    } catch (const Error&) {
    }
  }
}

std::shared_ptr<Stream> Connection::open_stream(std::string_view protocol,
                                                Clock::time_point deadline) {
  std::shared_ptr<Stream> s;
  uint32_t extra = host_.opts_.stream_window - yamux::kInitialWindow;
  {
    std::lock_guard l(mu_);
    if (closed_) throw Error("connection to " + peer_.str() + " closed: " + close_reason_);
    uint32_t id = next_stream_id_;
    next_stream_id_ += 2;
    s = std::make_shared<Stream>(shared_from_this(), id, true);
    s->protocol_ = std::string(protocol);
    s->recv_window_ = host_.opts_.stream_window;
    streams_[id] = s;
  }
  // SYN with our bigger window, then the header and the proposal without waiting (the listener
  // answers both).
  send_frame({yamux::Type::kWindowUpdate, yamux::kSyn, s->id_, extra}, {}, Block::kNo);
  Bytes hello;
  put_mss(hello, kMultistream);
  put_mss(hello, protocol);
  s->write(hello, deadline);
  MssDialer d{std::string(protocol)};
  for (;;) {
    auto frame = s->read_frame(kMaxMssLine, deadline);
    if (!frame) throw Error(peer_.str() + " closed the stream while negotiating " + s->protocol_);
    switch (d.on_frame(*frame)) {
      case MssDialer::Result::kMore:
        continue;
      case MssDialer::Result::kAccepted:
        return s;
      case MssDialer::Result::kRefused:
        s->reset();
        throw Error(peer_.str() + " does not speak " + std::string(protocol));
    }
  }
}

void Connection::reset_stream_locked(Stream& s, bool send_rst) {
  if (s.reset_) return;
  bool was_open = !(s.local_closed_ && s.remote_closed_);
  s.reset_ = true;
  if (!s.outbound_ && streams_.count(s.id_)) --inbound_open_;
  held_bytes_ -= std::min(held_bytes_, s.handler_held_);
  s.handler_held_ = 0;
  streams_.erase(s.id_);
  cv_.notify_all();
  if (send_rst && was_open && !closed_) {
    try {
      send_frame({yamux::Type::kWindowUpdate, yamux::kRst, s.id_, 0}, {}, Block::kNo);
    } catch (const Error&) {
    }
  }
}

void Connection::forget_if_done_locked(const Stream& s) {
  if (!(s.local_closed_ && s.remote_closed_)) return;
  auto it = streams_.find(s.id_);
  if (it == streams_.end() || it->second.get() != &s) return;
  // A blocking reader may still hold the stream and read what is buffered; the map lets go.
  if (!s.outbound_) --inbound_open_;
  held_bytes_ -= std::min(held_bytes_, s.handler_held_);
  streams_.erase(it);
}

// Reactor: bytes from the socket -> Noise frames -> yamux frames.
void Connection::on_readable() {
  constexpr size_t kRead = 256 * 1024;
  for (int rounds = 0; rounds < 16; ++rounds) {
    ssize_t n = ::recv(fd_.get(), raw_.reserve(kRead), kRead, MSG_DONTWAIT);
    if (n == 0) {
      close("the peer closed the connection");
      return;
    }
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      close(std::string("read failed: ") + std::strerror(errno));
      return;
    }
    raw_.commit(static_cast<size_t>(n));
    {
      std::lock_guard w(write_mu_);
      stats_.bytes_in += static_cast<uint64_t>(n);
    }
    if (!process_input()) return;
  }
}

bool Connection::process_input() {
  try {
    process_plain();  // what the handshake had decrypted already comes first
    while (!closed() && raw_.size() >= 2) {
      ByteView r = raw_.view();
      size_t len = (size_t{r[0]} << 8) | r[1];
      if (r.size() - 2 < len) break;
      if (len < kNoiseTag) throw Error("Noise frame shorter than its tag");
      recv_cipher_.decrypt_into(r.subspan(2, len), plain_.reserve(len - kNoiseTag));
      plain_.commit(len - kNoiseTag);
      raw_.consume(2 + len);
      process_plain();
    }
    return !closed();
  } catch (const Error& e) {
    try {
      send_frame(
          {yamux::Type::kGoAway, 0, 0, static_cast<uint32_t>(yamux::GoAwayCode::kProtocolError)},
          {}, Block::kNo);
    } catch (const Error&) {
    }
    close(std::string("protocol error: ") + e.what());
    return false;
  }
}

void Connection::process_plain() {
  for (;;) {
    size_t avail = plain_.size();
    if (data_left_ > 0) {
      if (avail == 0) break;
      size_t n = std::min<size_t>(avail, data_left_);
      ByteView data = plain_.view().first(n);
      data_left_ -= static_cast<uint32_t>(n);
      std::shared_ptr<Stream> s;
      {
        std::lock_guard l(mu_);
        auto it = streams_.find(data_stream_);
        if (it != streams_.end()) s = it->second;
      }
      if (s) deliver(s, data);
      plain_.consume(n);
      if (data_left_ == 0 && s && data_flags_) apply_flags(s, data_flags_);
      continue;
    }
    if (avail < yamux::kHeaderSize) break;
    yamux::Header h = yamux::parse_header(plain_.view().data());
    plain_.consume(yamux::kHeaderSize);
    handle_header(h);
    if (closed()) return;
  }
}

std::shared_ptr<Stream> Connection::accept_stream(uint32_t id) {
  // The dialer opens odd stream ids, the listener even ones; 0 is the session.
  bool peer_is_dialer = !dialer_;
  if (id == 0 || (id % 2 == 1) != peer_is_dialer)
    throw Error("the peer opened stream " + std::to_string(id) + " with our parity");
  std::shared_ptr<Stream> s;
  bool refuse = false;
  {
    std::lock_guard l(mu_);
    if (streams_.count(id)) throw Error("the peer reopened stream " + std::to_string(id));
    if (inbound_open_ >= host_.opts_.max_inbound_streams) {
      refuse = true;
    } else {
      s = std::make_shared<Stream>(shared_from_this(), id, false);
      s->recv_window_ = host_.opts_.stream_window;
      s->negotiation_ =
          std::make_unique<MssListener>([this](std::string_view p) { return host_.supports(p); });
      s->negotiation_frames_ = std::make_unique<FrameReader>(kMaxMssLine);
      s->last_data_ = Clock::now();
      streams_[id] = s;
      ++inbound_open_;
    }
  }
  if (refuse) {
    log::debug("p2p: " + peer_.str() + " has too many streams open; refusing another");
    send_frame({yamux::Type::kWindowUpdate, yamux::kRst, id, 0}, {}, Block::kNo);
    return nullptr;
  }
  send_frame({yamux::Type::kWindowUpdate, yamux::kAck, id,
              host_.opts_.stream_window - yamux::kInitialWindow},
             {}, Block::kNo);
  return s;
}

void Connection::handle_header(const yamux::Header& h) {
  switch (h.type) {
    case yamux::Type::kPing:
      if (h.has(yamux::kSyn))
        send_frame({yamux::Type::kPing, yamux::kAck, 0, h.length}, {}, Block::kNo);
      return;
    case yamux::Type::kGoAway:
      close("the peer went away (code " + std::to_string(h.length) + ")");
      return;
    case yamux::Type::kData:
    case yamux::Type::kWindowUpdate:
      break;
  }
  std::shared_ptr<Stream> s;
  if (h.has(yamux::kSyn)) {
    s = accept_stream(h.stream);
  } else {
    std::lock_guard l(mu_);
    auto it = streams_.find(h.stream);
    if (it != streams_.end()) s = it->second;
  }
  if (h.type == yamux::Type::kData) {
    if (s) {
      std::lock_guard l(mu_);
      if (h.length > s->recv_window_)
        throw Error("the peer sent " + std::to_string(h.length) + " bytes beyond its window");
      s->recv_window_ -= h.length;
    } else if (h.length > host_.opts_.stream_window) {
      throw Error("data frame larger than any window");
    }
    // Data for a stream we no longer know (reset, or refused) is skipped.
    data_stream_ = h.stream;
    data_left_ = h.length;
    data_flags_ = h.flags & (yamux::kFin | yamux::kRst);
    if (h.length == 0 && s && data_flags_) apply_flags(s, data_flags_);
    return;
  }
  if (!s) return;
  {
    std::lock_guard l(mu_);
    uint64_t w = uint64_t{s->send_window_} + h.length;
    s->send_window_ = static_cast<uint32_t>(std::min<uint64_t>(w, 0xffffffffu));
  }
  cv_.notify_all();
  apply_flags(s, h.flags);
}

void Connection::apply_flags(const std::shared_ptr<Stream>& s, uint16_t flags) {
  if (flags & yamux::kRst) {
    StreamHandler* handler = nullptr;
    {
      std::lock_guard l(mu_);
      reset_stream_locked(*s, false);
      handler = s->handler_.get();
    }
    if (handler) handler->on_reset(*s);
    return;
  }
  if (flags & yamux::kFin) {
    StreamHandler* handler = nullptr;
    bool negotiating = false;
    {
      std::lock_guard l(mu_);
      if (s->remote_closed_ || s->reset_) return;
      s->remote_closed_ = true;
      handler = s->handler_.get();
      negotiating = s->negotiation_ != nullptr;
      forget_if_done_locked(*s);
    }
    cv_.notify_all();
    if (handler) {
      try {
        handler->on_fin(*s);
      } catch (const Error& e) {
        log::debug("p2p: " + s->protocol_ + " handler: " + e.what());
        s->reset();
      }
    } else if (negotiating) {
      s->reset();  // closed before agreeing on a protocol
    }
  }
}

void Connection::negotiate(const std::shared_ptr<Stream>& s, ByteView data) {
  s->negotiation_frames_->feed(data);
  while (auto frame = s->negotiation_frames_->next()) {
    Bytes reply;
    auto chosen = s->negotiation_->on_frame(*frame, reply);
    s->write(reply, Clock::now());
    if (!chosen) continue;
    Bytes rest(s->negotiation_frames_->rest().begin(), s->negotiation_frames_->rest().end());
    s->protocol_ = *chosen;
    s->negotiation_.reset();
    s->negotiation_frames_.reset();
    HandlerFactory factory = host_.factory_for(*chosen);
    s->handler_ = factory(*s);
    if (!rest.empty()) deliver(s, rest);
    return;
  }
}

void Connection::deliver(const std::shared_ptr<Stream>& s, ByteView data) {
  if (s->outbound_) {
    {
      std::lock_guard l(mu_);
      if (s->reset_) return;
      s->rx_.emplace_back(data.begin(), data.end());
    }
    cv_.notify_all();
    return;
  }
  s->last_data_ = Clock::now();
  try {
    if (s->negotiation_) {
      negotiate(s, data);
    } else if (s->handler_) {
      size_t held = s->handler_->on_data(*s, data);
      std::lock_guard l(mu_);
      held_bytes_ = held_bytes_ - std::min(held_bytes_, s->handler_held_) + held;
      s->handler_held_ = held;
      if (held_bytes_ > host_.opts_.max_held_bytes)
        throw Error("holds more than " + std::to_string(host_.opts_.max_held_bytes >> 20) +
                    " MiB of partial messages");
    }
    credit(*s, data.size());
  } catch (const Error& e) {
    std::string why = e.what();
    if (why.find("partial messages") != std::string::npos) {
      close("the peer " + why);
      return;
    }
    log::debug("p2p: stream " + s->protocol_ + " from " + peer_.str() + ": " + why);
    s->reset();
    if (s->handler_) s->handler_->on_reset(*s);
  }
}

void Connection::on_tick(Clock::time_point now) {
  std::vector<std::shared_ptr<Stream>> stalled;
  {
    std::lock_guard l(mu_);
    for (auto& [id, s] : streams_) {
      bool idle = now - s->last_data_ > host_.opts_.stalled_message;
      if (!s->outbound_ && idle && (s->handler_held_ > 0 || s->negotiation_)) stalled.push_back(s);
    }
  }
  for (auto& s : stalled) {
    log::debug("p2p: " + peer_.str() + " stalled mid-message on " + s->protocol_ + "; reset");
    s->reset();
  }
}

void Connection::teardown() {
  std::lock_guard w(write_mu_);
  write_closed_ = true;
  fd_.reset();
}

// ---- Host ----------------------------------------------------------------------------------

namespace {

class IdentifyHandler : public StreamHandler {
 public:
  explicit IdentifyHandler(Bytes message) : message_(std::move(message)) {}
  size_t on_data(Stream&, ByteView) override { return 0; }  // the asker sends nothing
  Bytes message_;
};

class PushHandler : public StreamHandler {
 public:
  size_t on_data(Stream&, ByteView data) override {
    got_ += data.size();
    if (got_ > kMaxIdentifyMessage + 10) throw Error("identify push too large");
    return got_;
  }
  size_t got_ = 0;
};

class PingHandler : public StreamHandler {
 public:
  size_t on_data(Stream& s, ByteView data) override {
    pending_.insert(pending_.end(), data.begin(), data.end());
    while (pending_.size() >= 32) {
      s.write(ByteView(pending_).first(32), Clock::now());
      pending_.erase(pending_.begin(), pending_.begin() + 32);
    }
    return pending_.size();
  }
  Bytes pending_;
};

}  // namespace

Host::Host(Ed25519Key identity, HostOptions opts)
    : identity_(identity),
      id_(PeerId::from_public_key(identity.public_key)),
      opts_(std::move(opts)),
      noise_static_(X25519Key::generate()) {
  epoll_ = UniqueFd(::epoll_create1(EPOLL_CLOEXEC));
  if (!epoll_.valid()) throw_errno("epoll_create1");
  wake_fd_ = UniqueFd(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  if (!wake_fd_.valid()) throw_errno("eventfd");
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.ptr = nullptr;
  ::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, wake_fd_.get(), &ev);
  handle(std::string(kIdentifyProtocol), [this](Stream& s) {
    auto h = std::make_unique<IdentifyHandler>(identify_message(s.connection()));
    Bytes framed;
    put_frame(framed, h->message_);
    s.write(framed, Clock::now());
    s.close_write();
    return h;
  });
  handle(std::string(kIdentifyPushProtocol),
         [](Stream&) { return std::make_unique<PushHandler>(); });
  handle(std::string(kPingProtocol), [](Stream&) { return std::make_unique<PingHandler>(); });
  reactor_ = signal_free_thread([this] { reactor_loop(); });
  reactor_id_ = reactor_.get_id();
}

Host::~Host() {
  stop();
}

void Host::stop() {
  std::vector<std::shared_ptr<Connection>> conns;
  {
    std::lock_guard l(mu_);
    if (stopping_) return;
    stopping_ = true;
    for (auto& [p, c] : conns_) conns.push_back(c);
    for (int fd : handshake_fds_) ::shutdown(fd, SHUT_RDWR);
  }
  for (auto& c : conns) c->close("the node is stopping");
  {
    std::unique_lock l(mu_);
    handshakes_cv_.wait(l, [&] { return handshakes_ == 0; });
  }
  wake();
  if (reactor_.joinable()) reactor_.join();
  std::lock_guard l(mu_);
  for (auto& [p, c] : conns_) c->teardown();
  conns_.clear();
  listeners_.clear();
}

void Host::handle(std::string protocol, HandlerFactory factory) {
  handlers_[std::move(protocol)] = std::move(factory);
}

std::vector<std::string> Host::protocols() const {
  std::vector<std::string> out;
  for (const auto& [p, f] : handlers_) out.push_back(p);
  return out;
}

bool Host::supports(std::string_view protocol) const {
  return handlers_.find(protocol) != handlers_.end();
}

HandlerFactory Host::factory_for(std::string_view protocol) const {
  return handlers_.find(protocol)->second;
}

Bytes Host::identify_message(const Connection& c) const {
  IdentifyInfo info;
  info.public_key = encode_public_key(identity_.public_key);
  for (const auto& m : listen_addrs()) {
    Multiaddr bare = m;
    bare.peer.reset();
    info.listen_addrs.push_back(bare.bytes());
  }
  info.protocols = protocols();
  Multiaddr observed = c.remote_addr();
  observed.peer.reset();
  info.observed_addr = observed.bytes();
  info.agent_version = opts_.agent_version;
  return encode_identify(info);
}

void Host::closing(std::shared_ptr<Connection> c) {
  {
    std::lock_guard l(mu_);
    closing_.push_back(std::move(c));
  }
  wake();
}

void Host::wake() {
  uint64_t one = 1;
  [[maybe_unused]] ssize_t n = ::write(wake_fd_.get(), &one, sizeof one);
}

Multiaddr Host::listen(const Multiaddr& addr) {
  if (!addr.has_tcp || (addr.ip4.empty() && addr.ip6.empty()))
    throw Error("--p2p-listen needs /ip4/ADDR/tcp/PORT or /ip6/ADDR/tcp/PORT, not " + addr.str());
  sockaddr_storage ss{};
  socklen_t len = 0;
  if (!addr.ip4.empty()) {
    auto& a = reinterpret_cast<sockaddr_in&>(ss);
    a.sin_family = AF_INET;
    a.sin_port = htons(addr.port);
    inet_pton(AF_INET, addr.ip4.c_str(), &a.sin_addr);
    len = sizeof a;
  } else {
    auto& a = reinterpret_cast<sockaddr_in6&>(ss);
    a.sin6_family = AF_INET6;
    a.sin6_port = htons(addr.port);
    inet_pton(AF_INET6, addr.ip6.c_str(), &a.sin6_addr);
    len = sizeof a;
  }
  UniqueFd fd(::socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd.valid()) throw_errno("socket");
  int one = 1;
  ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&ss), len) != 0)
    throw_errno("cannot listen on " + addr.str());
  if (::listen(fd.get(), 512) != 0) throw_errno("listen on " + addr.str());
  sockaddr_storage bound{};
  socklen_t blen = sizeof bound;
  ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&bound), &blen);
  Multiaddr m = sockaddr_to_multiaddr(bound);
  m.peer = id_;
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = static_cast<uint64_t>(fd.get()) | (1ULL << 63);
  if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd.get(), &ev) != 0) throw_errno("epoll_ctl");
  std::lock_guard l(mu_);
  listeners_.push_back({std::move(fd), m});
  return m;
}

std::vector<Multiaddr> Host::listen_addrs() const {
  std::lock_guard l(mu_);
  std::vector<Multiaddr> out;
  for (const auto& li : listeners_) out.push_back(li.addr);
  return out;
}

std::vector<std::shared_ptr<Connection>> Host::connections() const {
  std::lock_guard l(mu_);
  std::vector<std::shared_ptr<Connection>> out;
  for (const auto& [p, c] : conns_) out.push_back(c);
  return out;
}

std::shared_ptr<Connection> Host::adopt(UniqueFd fd, Multiaddr remote, bool dialer,
                                        Connection::Handshaked hs) {
  int raw_fd = fd.get();
  std::shared_ptr<Connection> c(new Connection(*this, std::move(fd), std::move(hs)));
  c->remote_ = std::move(remote);
  c->remote_.peer = c->peer_;
  c->dialer_ = dialer;
  c->next_stream_id_ = dialer ? 1 : 2;
  {
    std::lock_guard l(mu_);
    if (stopping_) throw Error("the node is stopping");
    if (conns_.size() >= opts_.max_connections) throw Error("too many connections");
    conns_[c.get()] = c;
  }
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLRDHUP;
  ev.data.ptr = c.get();
  c->in_epoll_ = true;
  if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, raw_fd, &ev) != 0) {
    std::lock_guard l(mu_);
    conns_.erase(c.get());
    throw_errno("epoll_ctl");
  }
  {
    std::lock_guard l(mu_);
    fresh_.push_back(c);
  }
  wake();
  return c;
}

void Host::epoll_mod(Connection& c, bool want_write) {
  if (!c.fd_.valid()) return;
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLRDHUP | (want_write ? uint32_t{EPOLLOUT} : 0u);
  ev.data.ptr = &c;
  ::epoll_ctl(epoll_.get(), EPOLL_CTL_MOD, c.fd_.get(), &ev);
}

std::shared_ptr<Connection> Host::connect(const Multiaddr& addr, Clock::time_point deadline) {
  if (!addr.peer) throw Error(addr.str() + ": a peer address needs /p2p/<peer id>");
  if (!addr.has_tcp) throw Error(addr.str() + ": only TCP addresses can be dialed");
  {
    std::lock_guard l(mu_);
    for (auto& [p, c] : conns_) {
      if (c->peer() == *addr.peer && !c->closed()) return c;
    }
  }
  // Names are resolved as the HTTP client resolves them (net/conn.h); the socket is ours.
  auto addrs = net::resolve_addresses(addr.host(), deadline);
  UniqueFd fd;
  std::string last_error = "no address";
  for (const auto& a : addrs) {
    sockaddr_storage ss{};
    socklen_t len = 0;
    if (a.size() == 4) {
      auto& s4 = reinterpret_cast<sockaddr_in&>(ss);
      s4.sin_family = AF_INET;
      s4.sin_port = htons(addr.port);
      std::memcpy(&s4.sin_addr, a.data(), 4);
      len = sizeof s4;
    } else {
      auto& s6 = reinterpret_cast<sockaddr_in6&>(ss);
      s6.sin6_family = AF_INET6;
      s6.sin6_port = htons(addr.port);
      std::memcpy(&s6.sin6_addr, a.data(), 16);
      len = sizeof s6;
    }
    UniqueFd s(::socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!s.valid()) throw_errno("socket");
    if (::connect(s.get(), reinterpret_cast<sockaddr*>(&ss), len) != 0 && errno != EINPROGRESS) {
      last_error = std::strerror(errno);
      continue;
    }
    pollfd p{s.get(), POLLOUT, 0};
    int r = 0;
    while ((r = ::poll(&p, 1, poll_ms(deadline))) == 0 && Clock::now() < deadline) {
    }
    int err = 0;
    socklen_t elen = sizeof err;
    ::getsockopt(s.get(), SOL_SOCKET, SO_ERROR, &err, &elen);
    if (r <= 0) {
      last_error = "timed out";
      continue;
    }
    if (err != 0) {
      last_error = std::strerror(err);
      continue;
    }
    fd = std::move(s);
    break;
  }
  if (!fd.valid()) throw Error("cannot connect to " + addr.str() + ": " + last_error);
  set_nonblocking(fd.get());
  try {
    HandshakeIo io(fd.get(), deadline);
    dial_mss(io, kNoiseProtocol, false);
    NoiseXX hs(NoiseXX::Role::kInitiator, noise_static_);
    io.send_noise_message(hs.write_message({}));
    Bytes payload = hs.read_message(io.noise_message());
    PeerId remote = verify_noise_payload(payload, hs.remote_static());
    if (!(remote == *addr.peer))
      throw Error("the peer's key belongs to " + remote.str() + ", not the " + addr.peer->str() +
                  " that was dialed");
    io.send_noise_message(
        hs.write_message(make_noise_payload(identity_, noise_static_.public_key)));
    auto [send, recv] = hs.split();
    io.secure(send, recv);
    dial_mss(io, yamux::kProtocol, true);
    Connection::Handshaked done{remote, io.take_send(), io.take_recv(), io.leftover_raw(),
                                io.leftover_plain()};
    Multiaddr remote_addr = addr;
    auto c = adopt(std::move(fd), remote_addr, true, std::move(done));
    return c;
  } catch (const Error& e) {
    throw Error("cannot connect to " + addr.str() + ": " + e.what());
  }
}

void Host::accept_ready(int lfd) {
  for (;;) {
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    int fd = ::accept4(lfd, reinterpret_cast<sockaddr*>(&ss), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return;
    UniqueFd owned(fd);
    std::lock_guard l(mu_);
    if (stopping_ || handshakes_ >= opts_.max_handshakes ||
        conns_.size() + handshakes_ >= opts_.max_connections) {
      continue;  // closed at once: too many at a time
    }
    ++handshakes_;
    handshake_fds_.push_back(fd);
    Multiaddr remote = sockaddr_to_multiaddr(ss);
    signal_free_thread([this, f = std::move(owned), remote]() mutable {
      handshake_thread(std::move(f), remote);
    }).detach();
  }
}

void Host::handshake_thread(UniqueFd fd, const Multiaddr& remote) {
  int raw_fd = fd.get();
  try {
    set_nonblocking(raw_fd);
    HandshakeIo io(raw_fd, Clock::now() + opts_.handshake_timeout);
    listen_mss(io, kNoiseProtocol, false);
    NoiseXX hs(NoiseXX::Role::kResponder, noise_static_);
    hs.read_message(io.noise_message());
    io.send_noise_message(
        hs.write_message(make_noise_payload(identity_, noise_static_.public_key)));
    Bytes payload = hs.read_message(io.noise_message());
    PeerId peer = verify_noise_payload(payload, hs.remote_static());
    auto [send, recv] = hs.split();
    io.secure(send, recv);
    listen_mss(io, yamux::kProtocol, true);
    Connection::Handshaked done{peer, io.take_send(), io.take_recv(), io.leftover_raw(),
                                io.leftover_plain()};
    {
      std::lock_guard l(mu_);
      std::erase(handshake_fds_, raw_fd);
    }
    adopt(std::move(fd), remote, false, std::move(done));
  } catch (const Error& e) {
    log::debug("p2p: handshake with " + remote.str() + " failed: " + e.what());
    std::lock_guard l(mu_);
    std::erase(handshake_fds_, raw_fd);
  }
  std::lock_guard l(mu_);
  --handshakes_;
  handshakes_cv_.notify_all();
}

void Host::drop(Connection* c) {
  std::shared_ptr<Connection> keep;
  {
    std::lock_guard l(mu_);
    auto it = conns_.find(c);
    if (it == conns_.end()) return;
    keep = it->second;
    conns_.erase(it);
  }
  if (keep->in_epoll_ && keep->fd_.valid())
    ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, keep->fd_.get(), nullptr);
  keep->in_epoll_ = false;
  // Handlers learn that their streams are gone.
  keep->close("closed");
  keep->teardown();
}

void Host::reactor_loop() {
  epoll_event events[64];
  auto next_tick = Clock::now() + std::chrono::seconds(1);
  for (;;) {
    int n = ::epoll_wait(epoll_.get(), events, 64, 500);
    {
      std::lock_guard l(mu_);
      if (stopping_ && handshakes_ == 0) {
        bool all_closed = true;
        for (auto& [p, c] : conns_) all_closed &= c->closed();
        if (all_closed) return;
      }
    }
    for (int i = 0; i < n; ++i) {
      epoll_event& ev = events[i];
      if (ev.data.ptr == nullptr) {
        uint64_t v = 0;
        [[maybe_unused]] ssize_t r = ::read(wake_fd_.get(), &v, sizeof v);
        continue;
      }
      if (ev.data.u64 & (1ULL << 63)) {
        accept_ready(static_cast<int>(ev.data.u64 & 0x7fffffff));
        continue;
      }
      auto* c = static_cast<Connection*>(ev.data.ptr);
      std::shared_ptr<Connection> keep;
      {
        std::lock_guard l(mu_);
        auto it = conns_.find(c);
        if (it == conns_.end()) continue;
        keep = it->second;
      }
      if (ev.events & EPOLLOUT) keep->on_writable();
      if (ev.events & (EPOLLIN | EPOLLHUP | EPOLLERR | EPOLLRDHUP)) keep->on_readable();
    }
    std::vector<std::shared_ptr<Connection>> fresh, closing, all;
    auto now = Clock::now();
    bool tick = now >= next_tick;
    {
      std::lock_guard l(mu_);
      fresh.swap(fresh_);
      closing.swap(closing_);
      if (tick)
        for (auto& [p, c] : conns_) all.push_back(c);
    }
    // A new connection's handshake may have brought frames along: parse them now.
    for (auto& c : fresh) c->process_input();
    for (auto& c : closing) drop(c.get());
    if (tick) {
      for (auto& c : all) c->on_tick(now);
      next_tick = now + std::chrono::seconds(1);
    }
  }
}

Ed25519Key load_or_create_identity(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0) {
    try {
      return decode_private_key(read_file(path));
    } catch (const Error& e) {
      throw Error("peer key " + path + ": " + e.what());
    }
  }
  Ed25519Key key = Ed25519Key::generate();
  write_file_atomic(path, encode_private_key(key), true, 0600);
  return key;
}

}  // namespace cidrun::p2p
