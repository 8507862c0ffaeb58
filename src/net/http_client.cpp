// HTTP/1.1 (RFC 9112) as a client needs it: one request at a time per connection (no
// pipelining), bodies framed by Content-Length, chunked transfer coding or the connection's end,
// and every wait bounded by the request's total deadline and its stall window.
#include "net/http_client.h"

#include <algorithm>
#include <atomic>
#include <charconv>
#include <condition_variable>
#include <cstring>
#include <memory>
#include <mutex>
#include <optional>
#include <unordered_map>

#include "net/conn.h"
#include "net/socks.h"
#include "util/error.h"
#include "util/stream_compression.h"

namespace cidrun::http {
namespace {

using net::Clock;
using net::Conn;

constexpr size_t kErrorBodyCap = 64 * 1024;  // non-200 bodies are only kept for messages
constexpr size_t kMaxHead = 64 * 1024;       // status line and headers together
constexpr size_t kMaxHeaders = 256;
constexpr int kMaxInterimResponses = 16;  // 1xx heads before the final one
constexpr size_t kMaxLine = 4096;         // a chunk-size or trailer line
constexpr size_t kReadBuffer = 256 * 1024;
// The head is read in small pieces: what follows it in the same read is copied out of the buffer,
// while the rest of a collected body is read straight into place.
constexpr size_t kHeadRead = 16 * 1024;
constexpr size_t kUploadChunk = 256 * 1024;
constexpr const char* kBoundary = "cidrun-upload-7c1f2d9e4b3a";

// A connection that was parked idle and died before our request reached the peer: the request is
// sent again once on a fresh connection.
struct StaleConnection {};

// The receiver (on_body) ended the transfer: its message is the error.
struct Aborted {
  std::string why;
};

struct Url {
  bool tls = false;
  std::string host;
  uint16_t port = 0;
  std::string target;               // path and query
  std::optional<net::Proxy> proxy;  // the route, when not direct
  // Connections are pooled by origin and route: one through a proxy never serves a direct
  // request, nor one through another proxy or with other proxy credentials.
  std::string pool_key() const {
    std::string k = (tls ? "https://" : "http://") + host + ":" + std::to_string(port);
    if (proxy) k += " via " + proxy->display() + " as " + proxy->authorization();
    return k;
  }
  std::string host_header() const {
    std::string h = host.find(':') != std::string::npos ? "[" + host + "]" : host;
    if (port != (tls ? 443 : 80)) h += ":" + std::to_string(port);
    return h;
  }
  // host:port as CONNECT names it (RFC 9110 9.3.6).
  std::string authority() const {
    return (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" +
           std::to_string(port);
  }
  // Whether requests go to an HTTP proxy as they are (plain http, no tunnel): absolute-form
  // targets and Proxy-Authorization (a SOCKS proxy or a CONNECT tunnel carries bytes only).
  bool via_http_proxy() const { return proxy && !proxy->socks() && !tls; }
  // What the request line carries: origin-form, or absolute-form to a proxy (RFC 9112 3.2.2).
  std::string request_target() const {
    if (!via_http_proxy()) return target;
    return "http://" + host_header() + target;
  }
};

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

Url parse_url(std::string_view s) {
  Url u;
  if (s.rfind("http://", 0) == 0) {
    s.remove_prefix(7);
  } else if (s.rfind("https://", 0) == 0) {
    s.remove_prefix(8);
    u.tls = true;
  } else {
    throw Error("only http:// and https:// URLs are supported");
  }
  s = s.substr(0, s.find('#'));
  size_t slash = s.find_first_of("/?");
  std::string_view authority = s.substr(0, slash);
  u.target = slash == std::string_view::npos ? "/" : std::string(s.substr(slash));
  if (u.target[0] == '?') u.target.insert(0, "/");
  if (authority.find('@') != std::string_view::npos)
    throw Error("credentials in URLs are not supported");
  std::string_view port;
  if (!authority.empty() && authority[0] == '[') {
    size_t close = authority.find(']');
    if (close == std::string_view::npos) throw Error("bad IPv6 address in URL");
    u.host = std::string(authority.substr(1, close - 1));
    std::string_view rest = authority.substr(close + 1);
    if (!rest.empty()) {
      if (rest[0] != ':') throw Error("bad URL authority");
      port = rest.substr(1);
    }
  } else {
    size_t colon = authority.rfind(':');
    u.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) port = authority.substr(colon + 1);
  }
  if (u.host.empty()) throw Error("URL has no host");
  if (port.empty()) {
    u.port = u.tls ? 443 : 80;
  } else {
    unsigned v = 0;
    auto [p, ec] = std::from_chars(port.data(), port.data() + port.size(), v);
    if (ec != std::errc() || p != port.data() + port.size() || v == 0 || v > 65535)
      throw Error("bad port in URL: " + std::string(port));
    u.port = static_cast<uint16_t>(v);
  }
  for (char c : u.target) {
    if (static_cast<unsigned char>(c) <= ' ' || c == 0x7f)
      throw Error("URL contains a space or control character");
  }
  return u;
}

// Bounds every wait: the request's total deadline, and a window in which at least min_bytes
// must move (a hanging or dripping peer fails it).
class Pace {
 public:
  Pace(const Request& q)
      : deadline_(q.total_timeout_ms > 0
                      ? Clock::now() + std::chrono::milliseconds(q.total_timeout_ms)
                      : Clock::time_point::max()),
        window_(std::chrono::seconds(std::max(1L, q.stall_secs))),
        min_bytes_(std::max(1L, q.stall_bytes)),
        total_ms_(q.total_timeout_ms),
        window_start_(Clock::now()) {}

  Clock::time_point deadline() const { return deadline_; }
  Clock::time_point next() const {
    return std::min({deadline_, head_deadline_, window_start_ + window_});
  }
  // The request is sent: its answer's head must now arrive within the head timeout.
  void await_head(long timeout_ms) {
    head_ms_ = std::max(1L, timeout_ms);
    head_deadline_ = Clock::now() + std::chrono::milliseconds(head_ms_);
  }
  void head_received() { head_deadline_ = Clock::time_point::max(); }

  void moved(size_t n) {
    window_bytes_ += n;
    roll(Clock::now());
  }
  // An I/O wait ended at next() without progress: throws when a limit is reached.
  void expired() {
    auto now = Clock::now();
    if (now >= deadline_) throw Error("timed out after " + std::to_string(total_ms_) + " ms");
    if (now >= head_deadline_) {
      throw Error("no response within " + std::to_string(head_ms_) + " ms of the request");
    }
    roll(now);
  }

 private:
  void roll(Clock::time_point now) {
    if (now - window_start_ < window_) return;
    if (window_bytes_ < static_cast<uint64_t>(min_bytes_)) {
      auto secs = std::chrono::duration_cast<std::chrono::seconds>(window_).count();
      if (min_bytes_ <= 1) throw Error("stalled: no data for " + std::to_string(secs) + " s");
      throw Error("too slow: fewer than " + std::to_string(min_bytes_) + " bytes in " +
                  std::to_string(secs) + " s");
    }
    window_start_ = now;
    window_bytes_ = 0;
  }

  Clock::time_point deadline_;
  Clock::time_point head_deadline_ = Clock::time_point::max();
  long head_ms_ = 0;
  Clock::duration window_;
  long min_bytes_;
  long total_ms_;
  Clock::time_point window_start_;
  uint64_t window_bytes_ = 0;
};

void write_all(Conn& c, ByteView data, Pace& pace) {
  while (!data.empty()) {
    size_t n = c.write(data, pace.next());
    if (n == 0) {
      pace.expired();
      continue;
    }
    pace.moved(n);
    data = data.subspan(n);
  }
}

// Buffered reading of one response from a connection.
class Reader {
 public:
  // The buffer is left uninitialized (new[] without ()): most of it is never read, and a body's
  // bytes are written before they are read.
  Reader(Conn& c, Pace& pace, bool reused)
      : c_(c), pace_(pace), reused_(reused), buf_(new uint8_t[kReadBuffer]) {}

  size_t available() const { return end_ - beg_; }
  const uint8_t* data() const { return buf_.get() + beg_; }
  void consume(size_t n) { beg_ += n; }
  bool got_any() const { return got_any_; }

  // Reads more into the buffer (at most want bytes); false at the peer's end of stream.
  bool fill(size_t want = kReadBuffer) {
    if (beg_ == end_) beg_ = end_ = 0;
    if (end_ == kReadBuffer) {
      std::memmove(buf_.get(), buf_.get() + beg_, end_ - beg_);
      end_ -= beg_;
      beg_ = 0;
    }
    ptrdiff_t n = read_some(buf_.get() + end_, std::min(want, kReadBuffer - end_));
    if (n == 0) return false;
    end_ += static_cast<size_t>(n);
    return true;
  }

  // Reads straight into dst (bypassing the buffer, which must be empty); 0 at end of stream.
  size_t read_direct(uint8_t* dst, size_t len) { return static_cast<size_t>(read_some(dst, len)); }

  // One CRLF-terminated line (without the CRLF), at most max bytes long.
  std::string line(size_t max, const char* what) {
    for (;;) {
      std::string_view s(reinterpret_cast<const char*>(data()), available());
      size_t crlf = s.find("\r\n");
      if (crlf != std::string_view::npos) {
        if (crlf > max) break;
        std::string out(s.substr(0, crlf));
        consume(crlf + 2);
        return out;
      }
      if (s.size() > max) break;
      if (!fill()) throw Error(std::string("connection closed inside the ") + what);
    }
    throw Error(std::string(what) + " line longer than " + std::to_string(max) + " bytes");
  }

  // The response head up to and including the empty line, without that final CRLF CRLF.
  std::string head() {
    for (;;) {
      std::string_view s(reinterpret_cast<const char*>(data()), available());
      size_t end = s.find("\r\n\r\n");
      if (end != std::string_view::npos) {
        if (end + 4 > kMaxHead) break;
        std::string out(s.substr(0, end));
        consume(end + 4);
        return out;
      }
      if (s.size() >= kMaxHead) break;
      bool first = !got_any_;
      bool more;
      try {
        more = fill(kHeadRead);
      } catch (const Error&) {
        if (first && reused_) throw StaleConnection{};
        throw;
      }
      if (!more) {
        if (first && reused_) throw StaleConnection{};
        throw Error(first ? "connection closed before the response"
                          : "connection closed inside the response headers");
      }
    }
    throw Error("response headers larger than " + std::to_string(kMaxHead / 1024) + " KiB");
  }

 private:
  ptrdiff_t read_some(uint8_t* dst, size_t len) {
    for (;;) {
      ptrdiff_t n = c_.read(dst, len, pace_.next());
      if (n < 0) {
        pace_.expired();
        continue;
      }
      if (n > 0) {
        got_any_ = true;
        pace_.moved(static_cast<size_t>(n));
      }
      return n;
    }
  }

  Conn& c_;
  Pace& pace_;
  bool reused_;
  bool got_any_ = false;
  std::unique_ptr<uint8_t[]> buf_;
  size_t beg_ = 0, end_ = 0;
};

struct Head {
  int minor = 1;
  long status = 0;
  std::optional<uint64_t> content_length;
  bool chunked = false;
  bool close = false;
  std::string content_type;
  std::string content_encoding;
  std::string location;
};

Head parse_head(const std::string& text) {
  Head h;
  std::string_view s(text);
  size_t eol = s.find("\r\n");
  std::string_view status_line = s.substr(0, eol);
  // HTTP/1.x SSS[ reason]
  if (status_line.size() < 12 || status_line.substr(0, 7) != "HTTP/1." ||
      (status_line[7] != '0' && status_line[7] != '1') || status_line[8] != ' ' ||
      (status_line.size() > 12 && status_line[12] != ' ')) {
    throw Error("malformed status line: " + std::string(status_line.substr(0, 80)));
  }
  h.minor = status_line[7] - '0';
  std::string_view code = status_line.substr(9, 3);
  auto [p, ec] = std::from_chars(code.data(), code.data() + 3, h.status);
  if (ec != std::errc() || p != code.data() + 3 || h.status < 100)
    throw Error("malformed status line: " + std::string(status_line.substr(0, 80)));
  h.close = h.minor == 0;
  size_t count = 0;
  while (eol != std::string_view::npos) {
    s.remove_prefix(eol + 2);
    eol = s.find("\r\n");
    std::string_view line = s.substr(0, eol);
    if (++count > kMaxHeaders) throw Error("more than " + std::to_string(kMaxHeaders) + " headers");
    if (line.empty()) continue;
    if (line[0] == ' ' || line[0] == '\t') throw Error("folded header lines are not accepted");
    size_t colon = line.find(':');
    if (colon == 0 || colon == std::string_view::npos ||
        line.substr(0, colon).find_first_of(" \t") != std::string_view::npos) {
      throw Error("malformed header line: " + std::string(line.substr(0, 80)));
    }
    std::string_view name = line.substr(0, colon);
    std::string_view value = trim(line.substr(colon + 1));
    if (iequals(name, "content-length")) {
      uint64_t v = 0;
      auto [q, e] = std::from_chars(value.data(), value.data() + value.size(), v);
      if (value.empty() || e != std::errc() || q != value.data() + value.size() || v > (1ULL << 62))
        throw Error("bad Content-Length: " + std::string(value.substr(0, 40)));
      if (h.content_length && *h.content_length != v) throw Error("conflicting Content-Length");
      h.content_length = v;
    } else if (iequals(name, "transfer-encoding")) {
      // We never ask for codings; only chunked (as the last one) frames a body we can read.
      std::string_view last = trim(value.substr(value.rfind(',') + 1));
      if (!iequals(last, "chunked") || value.find(',') != std::string_view::npos)
        throw Error("unsupported Transfer-Encoding: " + std::string(value.substr(0, 40)));
      h.chunked = true;
    } else if (iequals(name, "connection")) {
      if (value.find("close") != std::string_view::npos ||
          value.find("Close") != std::string_view::npos)
        h.close = true;
      else if (h.minor == 0 && iequals(value, "keep-alive"))
        h.close = false;
    } else if (iequals(name, "content-type")) {
      h.content_type = std::string(value);
    } else if (iequals(name, "location")) {
      h.location = std::string(value);
    } else if (iequals(name, "content-encoding")) {
      h.content_encoding = std::string(value);
    }
  }
  // A message with both is a smuggling vector: chunked decides, and the connection is not reused.
  if (h.chunked && h.content_length) {
    h.content_length.reset();
    h.close = true;
  }
  return h;
}

// Where body bytes go: the receiver's callback, the caller's reused buffer, or the response
// (with its size limit).
class Sink {
 public:
  Sink(const Request& q, Response& r)
      : q_(q), r_(r), ok_(r.status == 200), into_(ok_ ? q.body_buffer : nullptr) {
    cap_ = ok_ ? q.max_body : kErrorBodyCap;
  }
  bool streaming() const { return ok_ && q_.on_body; }
  bool decoding() const { return decoder_ != nullptr; }
  // A 200 body in this coding is decoded before anything else sees it; the caps apply to the
  // decoded bytes.
  void decode(Compression c) {
    plain_ = std::make_unique<PlainOut>(*this);
    decoder_ = std::make_unique<DecompressingSink>(*plain_, c);
  }
  // The body ended: a coded one must end where its last frame does.
  void finish() {
    if (decoder_) decoder_->finish();
  }
  bool capped_quietly() const { return !ok_; }
  uint64_t cap() const { return cap_; }
  uint64_t delivered() const { return delivered_; }

  // Takes bytes; false when the sink is full and the rest can be dropped (error bodies only).
  bool put(ByteView b) {
    if (decoder_) {
      decoder_->write(b);
      return true;
    }
    return put_plain(b);
  }

  bool put_plain(ByteView b) {
    if (streaming()) {
      bool go;
      try {
        go = q_.on_body(b);
      } catch (const std::exception& e) {
        throw Aborted{e.what()};
      }
      if (!go) throw Aborted{"stopped by the receiver"};
      delivered_ += b.size();
      return true;
    }
    if (cap_ && delivered_ + b.size() > cap_) {
      if (!ok_) {
        r_.body.insert(r_.body.end(), b.begin(), b.begin() + (cap_ - r_.body.size()));
        return false;
      }
      throw Error("response larger than " + std::to_string(cap_) + " bytes");
    }
    if (into_) {
      std::memcpy(place(delivered_ + b.size()) + delivered_, b.data(), b.size());
    } else {
      r_.body.insert(r_.body.end(), b.begin(), b.end());
    }
    delivered_ += b.size();
    if (ok_) r_.body_size = delivered_;
    return true;
  }

  // Room for a collected 200 body of size bytes, at the start of the returned memory.
  uint8_t* place(uint64_t size) {
    Bytes& b = into_ ? *into_ : r_.body;
    // A reused buffer only grows (new bytes are zero-filled once); the response's own body
    // is exactly the body.
    if (!into_ || b.size() < size) b.resize(size);
    return b.data();
  }
  // A collected 200 body now holds size bytes.
  void placed(uint64_t size) {
    if (!into_) r_.body.resize(size);
    delivered_ = size;
    r_.body_size = size;
  }

 private:
  const Request& q_;
  Response& r_;
  bool ok_;
  Bytes* into_;
  uint64_t cap_ = 0;
  uint64_t delivered_ = 0;
  struct PlainOut : ByteSink {
    explicit PlainOut(Sink& s) : sink(s) {}
    void write(ByteView data) override { sink.put_plain(data); }
    Sink& sink;
  };
  std::unique_ptr<PlainOut> plain_;
  std::unique_ptr<DecompressingSink> decoder_;
};

// Reads a body of known length. Returns false when the rest was left unread (connection dirty).
bool read_sized(Reader& rd, Sink& sink, uint64_t length) {
  if (!sink.streaming() && !sink.capped_quietly() && !sink.decoding()) {
    if (sink.cap() && length > sink.cap())
      throw Error("response larger than " + std::to_string(sink.cap()) + " bytes");
    // Collected bodies are read straight into place: no copy through the buffer.
    uint8_t* dst = sink.place(length);
    size_t have = std::min<uint64_t>(rd.available(), length);
    // An empty body has no place (dst may be null), and memcpy's pointers must not be.
    if (have > 0) std::memcpy(dst, rd.data(), have);
    rd.consume(have);
    size_t off = have;
    while (off < length) {
      size_t n = rd.read_direct(dst + off, length - off);
      if (n == 0) {
        sink.placed(off);
        throw Error("connection closed after " + std::to_string(off) + " of " +
                    std::to_string(length) + " body bytes");
      }
      off += n;
    }
    sink.placed(length);
    return true;
  }
  uint64_t left = length;
  while (left > 0) {
    if (rd.available() == 0 && !rd.fill()) {
      throw Error("connection closed after " + std::to_string(length - left) + " of " +
                  std::to_string(length) + " body bytes");
    }
    size_t n = std::min<uint64_t>(rd.available(), left);
    bool more = sink.put(ByteView(rd.data(), n));
    rd.consume(n);
    left -= n;
    if (!more) return false;
  }
  return true;
}

bool read_chunked(Reader& rd, Sink& sink) {
  for (;;) {
    std::string line = rd.line(kMaxLine, "chunk size");
    std::string_view size_text = trim(std::string_view(line).substr(0, line.find(';')));
    uint64_t size = 0;
    auto [p, ec] = std::from_chars(size_text.data(), size_text.data() + size_text.size(), size, 16);
    if (size_text.empty() || size_text.size() > 15 || ec != std::errc() ||
        p != size_text.data() + size_text.size()) {
      throw Error("bad chunk size: " + line.substr(0, 40));
    }
    if (size == 0) break;
    uint64_t left = size;
    while (left > 0) {
      if (rd.available() == 0 && !rd.fill()) throw Error("connection closed inside a chunk");
      size_t n = std::min<uint64_t>(rd.available(), left);
      bool more = sink.put(ByteView(rd.data(), n));
      rd.consume(n);
      left -= n;
      if (!more) return false;
    }
    if (!rd.line(0, "chunk").empty()) throw Error("chunk data longer than its size");
  }
  // Trailers, ignored, up to the empty line.
  size_t trailer_bytes = 0;
  for (;;) {
    std::string t = rd.line(kMaxLine, "trailer");
    if (t.empty()) return true;
    trailer_bytes += t.size();
    if (trailer_bytes > kMaxHead) throw Error("trailers larger than 64 KiB");
  }
}

void read_until_close(Reader& rd, Sink& sink) {
  while (rd.available() > 0 || rd.fill()) {
    size_t n = rd.available();
    bool more = sink.put(ByteView(rd.data(), n));
    rd.consume(n);
    if (!more) return;
  }
}

std::string request_head(const Request& q, const Url& u) {
  std::string h = q.method + " " + u.request_target() + " HTTP/1.1\r\nHost: " + u.host_header() +
                  "\r\nUser-Agent: cidrun\r\n";
  // Through a CONNECT tunnel the proxy never sees this head: its credentials went with CONNECT.
  if (u.via_http_proxy() && u.proxy->has_credentials) {
    h += "Proxy-Authorization: " + u.proxy->authorization() + "\r\n";
  }
  bool has_accept = false;
  for (const auto& x : q.headers) {
    if (x.find_first_of("\r\n") != std::string::npos)
      throw Error("request header contains a line break");
    has_accept |= x.size() >= 7 && iequals(std::string_view(x).substr(0, 7), "accept:");
    h += x + "\r\n";
  }
  if (!has_accept) h += "Accept: */*\r\n";
  if (q.method == "POST") {
    if (q.upload) {
      h += std::string("Content-Type: multipart/form-data; boundary=") + kBoundary +
           "\r\nTransfer-Encoding: chunked\r\n";
    } else {
      h += "Content-Length: 0\r\n";
    }
  }
  return h + "\r\n";
}

// Sends the multipart body with chunked framing. Each chunk is written in one piece.
void send_upload(Conn& c, const Request& q, Pace& pace) {
  Bytes frame(kUploadChunk + 32);
  auto send_chunk = [&](const uint8_t* data, size_t n) {
    if (n == 0) return;
    char size[24];
    int len = std::snprintf(size, sizeof size, "%zx\r\n", n);
    Bytes out;
    out.reserve(static_cast<size_t>(len) + n + 2);
    out.insert(out.end(), size, size + len);
    out.insert(out.end(), data, data + n);
    out.push_back('\r');
    out.push_back('\n');
    write_all(c, out, pace);
  };
  std::string pre = std::string("--") + kBoundary +
                    "\r\nContent-Disposition: form-data; name=\"file\"; filename=\"data\"\r\n"
                    "Content-Type: application/octet-stream\r\n\r\n";
  send_chunk(reinterpret_cast<const uint8_t*>(pre.data()), pre.size());
  for (;;) {
    size_t n;
    try {
      n = q.upload(frame.data(), kUploadChunk);
    } catch (const std::exception& e) {
      throw Aborted{e.what()};
    }
    if (n == 0) break;
    send_chunk(frame.data(), n);
  }
  std::string post = std::string("\r\n--") + kBoundary + "--\r\n";
  send_chunk(reinterpret_cast<const uint8_t*>(post.data()), post.size());
  write_all(c, as_bytes("0\r\n\r\n"), pace);
}

// Asks the proxy on c for a tunnel to u's origin (CONNECT, RFC 9110 9.3.6) and waits for its
// 2xx. Nothing may follow that answer before our TLS hello: the head is read byte by byte so
// that no byte of the tunnel is taken for it.
void open_tunnel(Conn& c, const Url& u, Clock::time_point deadline, long timeout_ms) {
  const net::Proxy& p = *u.proxy;
  std::string what = "proxy " + p.display();
  std::string req = "CONNECT " + u.authority() + " HTTP/1.1\r\nHost: " + u.authority() +
                    "\r\nUser-Agent: cidrun\r\n";
  if (p.has_credentials) req += "Proxy-Authorization: " + p.authorization() + "\r\n";
  req += "\r\n";
  auto timed_out = [&] {
    return Error(what + " did not answer CONNECT " + u.authority() + " within " +
                 std::to_string(timeout_ms) + " ms");
  };
  if (c.write(as_bytes(req), deadline) != req.size()) throw timed_out();
  std::string head;
  while (head.size() < 4 || head.compare(head.size() - 4, 4, "\r\n\r\n") != 0) {
    if (head.size() >= kMaxHead) throw Error(what + ": CONNECT answer larger than 64 KiB");
    uint8_t b = 0;
    ptrdiff_t n = c.read(&b, 1, deadline);
    if (n < 0) throw timed_out();
    if (n == 0) {
      throw Error(what + " closed the connection " +
                  (head.empty() ? "without answering" : "inside its answer to") + " CONNECT " +
                  u.authority());
    }
    head += static_cast<char>(b);
  }
  head.resize(head.size() - 4);
  std::string status_line = head.substr(0, head.find("\r\n"));
  Head h;
  try {
    h = parse_head(head);
  } catch (const Error& e) {
    throw Error(what + ": bad answer to CONNECT: " + e.what());
  }
  if (h.status < 200 || h.status > 299) {
    std::string reason = status_line.size() > 13 ? status_line.substr(13, 80) : "";
    throw Error(what + " refused CONNECT " + u.authority() + ": HTTP " + std::to_string(h.status) +
                (reason.empty() ? "" : " " + reason));
  }
}

// One request/response on c. Returns whether c may carry another request.
bool exchange(Conn& c, const Url& u, const Request& q, Response& r, bool reused) {
  Pace pace(q);
  try {
    write_all(c, as_bytes(request_head(q, u)), pace);
  } catch (const Error&) {
    if (reused) throw StaleConnection{};
    throw;
  }
  std::optional<Error> upload_failed;
  if (q.upload) {
    try {
      send_upload(c, q, pace);
    } catch (const Error& e) {
      // The peer may have answered early (an error) and closed: that answer is the better message.
      upload_failed = e;
    }
  }
  Reader rd(c, pace, reused && !q.upload);
  Head h;
  pace.await_head(q.head_timeout_ms);
  try {
    int interim = 0;
    do {
      h = parse_head(rd.head());
      if (h.status == 101) throw Error("unexpected protocol switch (101)");
      if (h.status < 200 && ++interim > kMaxInterimResponses) {
        throw Error("more than " + std::to_string(kMaxInterimResponses) +
                    " interim (1xx) responses");
      }
    } while (h.status < 200);
    pace.head_received();
  } catch (const Error&) {
    if (upload_failed) throw *upload_failed;
    throw;
  }
  r.status = h.status;
  r.content_type = h.content_type;
  r.location = h.location;
  r.content_encoding = h.content_encoding;
  if (iequals(r.content_encoding, "identity")) r.content_encoding.clear();
  bool clean = true;
  if (q.method != "HEAD" && h.status != 204 && h.status != 304) {
    Sink sink(q, r);
    if (h.status == 200 && !r.content_encoding.empty()) {
      if (iequals(r.content_encoding, "zstd")) {
        sink.decode(Compression::zstd);
      } else if (iequals(r.content_encoding, "gzip") || iequals(r.content_encoding, "x-gzip")) {
        sink.decode(Compression::gzip);
      } else {
        throw Error("unsupported Content-Encoding: " + r.content_encoding.substr(0, 40));
      }
    }
    if (h.chunked) {
      clean = read_chunked(rd, sink);
    } else if (h.content_length) {
      clean = read_sized(rd, sink, *h.content_length);
    } else {
      read_until_close(rd, sink);
      clean = false;
    }
    sink.finish();
  }
  if (upload_failed && r.status == 200) throw *upload_failed;
  return clean && !h.close && !upload_failed && rd.available() == 0;
}

}  // namespace

std::string Response::describe() const {
  if (!error.empty()) return error;
  std::string via = proxy.empty() ? "" : " (via proxy " + proxy + ")";
  std::string s = "HTTP " + std::to_string(status);
  if (status >= 300 && status < 400) {
    return s + ": redirect" + (location.empty() ? "" : " to " + location) + " refused" + via;
  }
  std::string_view text = as_string(body);
  text = text.substr(0, std::min<size_t>(text.find('\n'), 200));
  if (!text.empty() && text.back() == '\r') text.remove_suffix(1);
  if (!text.empty()) s += ": " + std::string(text);
  return s + via;
}

struct Client::Impl {
  ClientOptions opts;
  net::ProxyConfig proxies;
  std::once_flag tls_once;
  std::unique_ptr<net::TlsContext> tls;
  std::string tls_error;
  std::atomic<uint64_t> opened{0};

  struct Host {
    std::vector<std::unique_ptr<Conn>> idle;
    size_t busy = 0;  // connections (or slots for them) held by running requests
  };
  std::mutex mu;
  std::condition_variable cv;
  std::unordered_map<std::string, Host> hosts;

  const net::TlsContext& tls_context() {
    std::call_once(tls_once, [&] {
      try {
        tls = std::make_unique<net::TlsContext>(net::TlsOptions{opts.ca_file});
      } catch (const Error& e) {
        tls_error = e.what();
      }
    });
    if (!tls) throw Error(tls_error);
    return *tls;
  }

  // A slot for one connection to a host, held for the whole request.
  class Slot {
   public:
    Slot(Impl& impl, std::string key) : impl_(impl), key_(std::move(key)) {
      std::unique_lock l(impl_.mu);
      impl_.cv.wait(l,
                    [&] { return impl_.hosts[key_].busy < impl_.opts.max_connections_per_host; });
      ++impl_.hosts[key_].busy;
    }
    ~Slot() {
      std::lock_guard l(impl_.mu);
      Host& h = impl_.hosts[key_];
      --h.busy;
      if (parked_ && h.idle.size() < impl_.opts.max_idle_per_host)
        h.idle.push_back(std::move(parked_));
      impl_.cv.notify_one();
    }
    std::unique_ptr<Conn> take_idle() {
      for (;;) {
        std::unique_ptr<Conn> c;
        {
          std::lock_guard l(impl_.mu);
          auto& idle = impl_.hosts[key_].idle;
          if (idle.empty()) return nullptr;
          c = std::move(idle.back());
          idle.pop_back();
        }
        if (c->still_idle()) return c;
      }
    }
    void park(std::unique_ptr<Conn> c) { parked_ = std::move(c); }

   private:
    Impl& impl_;
    std::string key_;
    std::unique_ptr<Conn> parked_;
  };

  // A new connection to u's origin, directly or through its proxy; the whole setup (TCP, TLS with
  // an https proxy, the proxy's CONNECT, TLS with the origin) has timeout_ms.
  std::unique_ptr<Conn> connect(const Url& u, const net::TlsContext* ctx, long timeout_ms) {
    auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
    if (!u.proxy) return Conn::open(u.host, u.port, ctx, deadline);
    const net::Proxy& p = *u.proxy;
    std::unique_ptr<Conn> c;
    try {
      c = Conn::open_tcp(p.host, p.port, deadline);
      // An https proxy is checked like an origin (same trust, its own name); the proxy protocol
      // and any TLS with the origin then run inside that session.
      if (p.tls()) c->start_tls(tls_context(), p.host, p.port, deadline);
    } catch (const Error& e) {
      throw Error("proxy " + p.display() + ": " + e.what());
    }
    if (p.socks()) {
      net::socks_connect(*c, p, u.host, u.port, deadline, timeout_ms);
    } else if (ctx) {
      open_tunnel(*c, u, deadline, timeout_ms);
    }
    if (ctx) c->start_tls(*ctx, u.host, u.port, deadline);
    return c;
  }

  void run(const Request& q, Response& r) {
    if (q.method != "GET" && q.method != "HEAD" && q.method != "POST")
      throw Error("HTTP method " + q.method + " is not supported");
    if (q.upload && q.method != "POST") throw Error("an upload needs POST");
    Url u = parse_url(q.url);
    u.proxy = proxies.for_url(u.tls, u.host, u.port);
    if (u.proxy) r.proxy = u.proxy->display();
    const net::TlsContext* ctx = u.tls ? &tls_context() : nullptr;
    Slot slot(*this, u.pool_key());
    for (int attempt = 0;; ++attempt) {
      // An upload cannot be replayed, so it never rides a connection that may have died idle.
      std::unique_ptr<Conn> c = q.upload || attempt > 0 ? nullptr : slot.take_idle();
      bool reused = c != nullptr;
      if (!c) {
        long timeout_ms = std::max(1L, q.connect_timeout_ms);
        if (q.total_timeout_ms > 0) timeout_ms = std::min(timeout_ms, q.total_timeout_ms);
        c = connect(u, ctx, timeout_ms);
        ++opened;
      }
      try {
        if (exchange(*c, u, q, r, reused)) slot.park(std::move(c));
        // A proxy that wants credentials answers an absolute-form request itself.
        if (u.via_http_proxy() && r.status == 407) {
          throw Error("proxy " + u.proxy->display() + " refused the request: HTTP 407 (" +
                      (u.proxy->has_credentials ? "credentials rejected" : "credentials needed") +
                      ")");
        }
        return;
      } catch (const StaleConnection&) {
        std::string via = r.proxy;
        r = Response{};
        r.proxy = via;
      }
    }
  }
};

Client::Client(ClientOptions opts) : impl_(std::make_unique<Impl>()) {
  impl_->opts = std::move(opts);
  impl_->proxies = impl_->opts.proxy ? *impl_->opts.proxy : net::ProxyConfig::from_env();
  if (impl_->opts.max_connections_per_host == 0) impl_->opts.max_connections_per_host = 1;
}
Client::~Client() = default;

Client& Client::shared() {
  static Client client;
  return client;
}

uint64_t Client::connections_opened() const {
  return impl_->opened;
}

Response Client::perform(const Request& req) {
  Response r;
  try {
    impl_->run(req, r);
  } catch (const Aborted& a) {
    r.error = req.url + ": " + a.why;
  } catch (const std::exception& e) {
    r.error = req.url + ": " + e.what();
    // Every failure through a proxy names it (unless the message already does).
    if (!r.proxy.empty() && r.error.find(r.proxy) == std::string::npos) {
      r.error += " (via proxy " + r.proxy + ")";
    }
  }
  return r;
}

std::future<Response> Client::start(Request req) {
  return std::async(std::launch::async, [this, q = std::move(req)] { return perform(q); });
}

std::string url_escape(std::string_view s) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || c == '/') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

}  // namespace cidrun::http
