#include "util/stream_compression.h"

#include <zlib.h>
#include <zstd.h>
#include <zstd_errors.h>

#include <algorithm>
#include <array>
#include <climits>
#include <cstring>
#include <deque>
#include <future>
#include <string>

#include "util/error.h"

namespace cidrun {
namespace {

constexpr size_t kInputBytes = 256 * 1024;
constexpr size_t kOutputBytes = 256 * 1024;
constexpr int kZstdMaxWindowLog = 27;
static_assert(uint64_t{1} << kZstdMaxWindowLog == kZstdMaxWindowBytes);

// zlib counts in uInt: feed it at most this much at once.
constexpr size_t kZlibChunk = UINT_MAX / 2;

// The compressed side of a decompressor: a buffer refilled from the source, with the count of
// bytes consumed so that errors can say where in the compressed stream they happened.
class InputBuffer {
 public:
  explicit InputBuffer(ByteSource& source) : source_(source), buf_(kInputBytes) {}

  const uint8_t* data() const { return buf_.data() + pos_; }
  size_t size() const { return end_ - pos_; }
  void consume(size_t n) { pos_ += n; }
  uint64_t offset() const { return fed_ - size(); }

  // Reads once more from the source (after moving what is left to the front); false at its end.
  bool refill() {
    if (eof_) return false;
    if (pos_ > 0) {
      std::memmove(buf_.data(), buf_.data() + pos_, size());
      end_ -= pos_;
      pos_ = 0;
    }
    size_t n = source_.read(buf_.data() + end_, buf_.size() - end_);
    if (n == 0) {
      eof_ = true;
      return false;
    }
    end_ += n;
    fed_ += n;
    return true;
  }
  // Makes at least k bytes available unless the source ends first; returns whether it did.
  bool ensure(size_t k) {
    while (size() < k) {
      if (!refill()) return false;
    }
    return true;
  }

 private:
  ByteSource& source_;
  Bytes buf_;
  size_t pos_ = 0;
  size_t end_ = 0;
  uint64_t fed_ = 0;
  bool eof_ = false;
};

std::string at_offset(uint64_t offset) {
  return " (at compressed byte " + std::to_string(offset) + ")";
}

class PassThroughSource : public ByteSource {
 public:
  explicit PassThroughSource(ByteSource& inner) : inner_(inner) {}
  size_t read(uint8_t* buf, size_t n) override { return inner_.read(buf, n); }

 private:
  ByteSource& inner_;
};

// The bytes open_decompressed() looked at, then the rest of the source.
class PrefixedSource : public ByteSource {
 public:
  PrefixedSource(Bytes prefix, ByteSource& rest) : prefix_(std::move(prefix)), rest_(rest) {}
  size_t read(uint8_t* buf, size_t n) override {
    if (pos_ < prefix_.size()) {
      size_t take = std::min(n, prefix_.size() - pos_);
      std::memcpy(buf, prefix_.data() + pos_, take);
      pos_ += take;
      return take;
    }
    return rest_.read(buf, n);
  }

 private:
  Bytes prefix_;
  size_t pos_ = 0;
  ByteSource& rest_;
};

// A source that owns the prefix reader its decompressor reads from.
class OwningChain : public ByteSource {
 public:
  OwningChain(std::unique_ptr<ByteSource> bottom, Compression compression)
      : bottom_(std::move(bottom)), top_(open_decompressor(*bottom_, compression)) {}
  size_t read(uint8_t* buf, size_t n) override { return top_->read(buf, n); }

 private:
  std::unique_ptr<ByteSource> bottom_;
  std::unique_ptr<ByteSource> top_;
};

bool is_zstd_magic(const uint8_t* p) {
  uint32_t m = uint32_t{p[0]} | uint32_t{p[1]} << 8 | uint32_t{p[2]} << 16 | uint32_t{p[3]} << 24;
  return m == ZSTD_MAGICNUMBER || (m & ZSTD_MAGIC_SKIPPABLE_MASK) == ZSTD_MAGIC_SKIPPABLE_START;
}

}  // namespace

std::string_view compression_name(Compression compression) {
  switch (compression) {
    case Compression::none:
      return "none";
    case Compression::gzip:
      return "gzip";
    case Compression::zstd:
      return "zstd";
  }
  return "unknown";
}

// ---- gzip -------------------------------------------------------------------------------------

struct GzipSource::State {
  explicit State(ByteSource& source) : in(source) {}
  InputBuffer in;
  z_stream z{};
  bool started = false;     // the first member's header was seen
  bool member_end = false;  // the last member ended; another may follow
  bool done = false;
  uint64_t members = 0;
};

GzipSource::GzipSource(ByteSource& compressed) : s_(std::make_unique<State>(compressed)) {
  // 16 + 15: a gzip wrapper (no zlib or raw deflate), the largest window.
  if (inflateInit2(&s_->z, 16 + MAX_WBITS) != Z_OK) throw Error("gzip: out of memory");
}

GzipSource::~GzipSource() {
  inflateEnd(&s_->z);
}

size_t GzipSource::read(uint8_t* buf, size_t n) {
  State& s = *s_;
  if (s.done) return 0;
  if (!s.started) {
    if (!s.in.ensure(2)) {
      throw Error(s.in.size() == 0 ? "gzip: the stream is empty (no gzip header)"
                                   : "gzip: the stream is truncated in its header");
    }
    if (s.in.data()[0] != 0x1f || s.in.data()[1] != 0x8b) throw Error("gzip: not a gzip stream");
    s.started = true;
  }
  size_t want = std::min(n, kZlibChunk);
  s.z.next_out = buf;
  s.z.avail_out = static_cast<uInt>(want);
  for (;;) {
    size_t produced = want - s.z.avail_out;
    if (s.member_end) {
      if (produced > 0) return produced;
      // Another member, or the end: nothing else may follow a member.
      if (!s.in.ensure(2)) {
        if (s.in.size() == 0) {
          s.done = true;
          return 0;
        }
      }
      if (s.in.size() < 2 || s.in.data()[0] != 0x1f || s.in.data()[1] != 0x8b) {
        throw Error("gzip: unexpected data after the end of member " + std::to_string(s.members) +
                    at_offset(s.in.offset()) + ": a gzip stream must end there or start a member");
      }
      if (inflateReset(&s.z) != Z_OK) throw Error("gzip: inflateReset failed");
      s.z.next_out = buf + produced;
      s.z.avail_out = static_cast<uInt>(want - produced);
      s.member_end = false;
    }
    if (s.in.size() == 0) {
      if (produced > 0) return produced;
      if (!s.in.refill()) {
        throw Error("gzip: the stream is truncated in member " + std::to_string(s.members + 1) +
                    at_offset(s.in.offset()));
      }
    }
    size_t avail = std::min(s.in.size(), kZlibChunk);
    s.z.next_in = const_cast<Bytef*>(s.in.data());  // zlib's API is not const-correct
    s.z.avail_in = static_cast<uInt>(avail);
    int rc = inflate(&s.z, Z_NO_FLUSH);
    s.in.consume(avail - s.z.avail_in);
    switch (rc) {
      case Z_OK:
      case Z_BUF_ERROR:  // no progress: needs more input (handled above) or output space
        break;
      case Z_STREAM_END:
        s.member_end = true;
        ++s.members;
        break;
      case Z_NEED_DICT:
        throw Error("gzip: corrupt data (asks for a preset dictionary)" + at_offset(s.in.offset()));
      case Z_DATA_ERROR:
        throw Error(std::string("gzip: corrupt data (") + (s.z.msg ? s.z.msg : "invalid") + ")" +
                    at_offset(s.in.offset()));
      case Z_MEM_ERROR:
        throw Error("gzip: out of memory");
      default:
        throw Error("gzip: inflate failed with code " + std::to_string(rc));
    }
    if (s.z.avail_out == 0) return want;
  }
}

struct GzipSink::State {
  explicit State(ByteSink& o) : out(o), buf(kOutputBytes) {}
  ByteSink& out;
  Bytes buf;
  z_stream z{};
  bool finished = false;

  // Runs deflate over what next_in holds with `flush`, writing each full output buffer.
  void pump(int flush) {
    for (;;) {
      z.next_out = buf.data();
      z.avail_out = static_cast<uInt>(buf.size());
      int rc = deflate(&z, flush);
      if (rc == Z_STREAM_ERROR) throw Error("gzip: deflate failed");
      size_t have = buf.size() - z.avail_out;
      if (have > 0) out.write(ByteView(buf.data(), have));
      if (flush == Z_FINISH ? rc == Z_STREAM_END : (z.avail_in == 0 && z.avail_out != 0)) return;
    }
  }
};

GzipSink::GzipSink(ByteSink& out, GzipOptions options) : s_(std::make_unique<State>(out)) {
  if (options.level < 0 || options.level > 9) {
    throw Error("gzip: compression level " + std::to_string(options.level) + " is not in 0-9");
  }
  if (deflateInit2(&s_->z, options.level, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) !=
      Z_OK) {
    throw Error("gzip: out of memory");
  }
}

GzipSink::~GzipSink() {
  deflateEnd(&s_->z);
}

void GzipSink::write(ByteView data) {
  if (s_->finished) throw Error("gzip: write after finish");
  while (!data.empty()) {
    size_t take = std::min(data.size(), kZlibChunk);
    s_->z.next_in = const_cast<Bytef*>(data.data());
    s_->z.avail_in = static_cast<uInt>(take);
    s_->pump(Z_NO_FLUSH);
    data = data.subspan(take);
  }
}

void GzipSink::finish() {
  if (s_->finished) return;
  s_->z.next_in = nullptr;
  s_->z.avail_in = 0;
  s_->pump(Z_FINISH);
  s_->finished = true;
  s_->out.finish();
}

// ---- zstd -------------------------------------------------------------------------------------

struct ZstdSource::State {
  explicit State(ByteSource& source) : in(source) {}
  ~State() { ZSTD_freeDCtx(dctx); }
  State(const State&) = delete;
  State& operator=(const State&) = delete;
  InputBuffer in;
  ZSTD_DCtx* dctx = nullptr;
  bool frame_open = false;       // inside a frame: its end has not been decoded yet
  bool may_hold_output = false;  // the output was full last time: the decoder may hold more
  bool any_input = false;
  bool done = false;
};

ZstdSource::ZstdSource(ByteSource& compressed) : s_(std::make_unique<State>(compressed)) {
  s_->dctx = ZSTD_createDCtx();
  if (!s_->dctx) throw Error("zstd: out of memory");
  size_t rc = ZSTD_DCtx_setParameter(s_->dctx, ZSTD_d_windowLogMax, kZstdMaxWindowLog);
  if (ZSTD_isError(rc)) throw Error(std::string("zstd: ") + ZSTD_getErrorName(rc));
}

ZstdSource::~ZstdSource() = default;

size_t ZstdSource::read(uint8_t* buf, size_t n) {
  State& s = *s_;
  if (s.done) return 0;
  ZSTD_outBuffer out{buf, n, 0};
  for (;;) {
    if (s.in.size() > 0 || s.may_hold_output) {
      ZSTD_inBuffer in{s.in.data(), s.in.size(), 0};
      size_t rc = ZSTD_decompressStream(s.dctx, &out, &in);
      uint64_t where = s.in.offset();
      s.in.consume(in.pos);
      if (ZSTD_isError(rc)) {
        switch (ZSTD_getErrorCode(rc)) {
          case ZSTD_error_frameParameter_windowTooLarge:
            throw Error("zstd: a frame asks for a window larger than 128 MiB" + at_offset(where) +
                        "; refused to bound memory");
          case ZSTD_error_prefix_unknown:
            if (!s.any_input) throw Error("zstd: not a zstd stream");
            throw Error("zstd: unexpected data after the end of a frame" + at_offset(where));
          default:
            throw Error(std::string("zstd: corrupt data (") + ZSTD_getErrorName(rc) + ")" +
                        at_offset(where));
        }
      }
      s.any_input = true;
      s.frame_open = rc != 0;
      // A frame that is done (rc == 0) holds nothing back; calling again would start the next.
      s.may_hold_output = out.pos == out.size && rc != 0;
      if (out.pos == out.size) return out.pos;
      if (s.in.size() > 0) continue;
    }
    if (out.pos > 0) return out.pos;
    if (!s.in.refill()) {
      if (s.frame_open) throw Error("zstd: the stream is truncated" + at_offset(s.in.offset()));
      if (!s.any_input) throw Error("zstd: the stream is empty (no frame)");
      s.done = true;
      return 0;
    }
  }
}

namespace {

struct CCtxDeleter {
  void operator()(ZSTD_CCtx* c) const { ZSTD_freeCCtx(c); }
};
using CCtxPtr = std::unique_ptr<ZSTD_CCtx, CCtxDeleter>;

CCtxPtr make_cctx(int level) {
  CCtxPtr c(ZSTD_createCCtx());
  if (!c) throw Error("zstd: out of memory");
  for (auto [param, value] :
       {std::pair{ZSTD_c_compressionLevel, level}, std::pair{ZSTD_c_checksumFlag, 1}}) {
    size_t rc = ZSTD_CCtx_setParameter(c.get(), param, value);
    if (ZSTD_isError(rc)) throw Error(std::string("zstd: ") + ZSTD_getErrorName(rc));
  }
  return c;
}

Bytes compress_frame(int level, const Bytes& input) {
  CCtxPtr c = make_cctx(level);
  Bytes out(ZSTD_compressBound(input.size()));
  size_t rc = ZSTD_compress2(c.get(), out.data(), out.size(), input.data(), input.size());
  if (ZSTD_isError(rc)) throw Error(std::string("zstd: ") + ZSTD_getErrorName(rc));
  out.resize(rc);
  return out;
}

}  // namespace

struct ZstdSink::State {
  State(ByteSink& o, ZstdOptions opt) : out(o), options(opt) {}
  ByteSink& out;
  ZstdOptions options;
  bool finished = false;
  // workers == 0
  CCtxPtr cctx;
  Bytes buf;
  // workers >= 1: the frame being filled, and frames being compressed, oldest first
  Bytes pending;
  std::deque<std::future<Bytes>> jobs;

  void stream(ByteView data, ZSTD_EndDirective mode) {
    ZSTD_inBuffer in{data.data(), data.size(), 0};
    for (;;) {
      ZSTD_outBuffer o{buf.data(), buf.size(), 0};
      size_t rc = ZSTD_compressStream2(cctx.get(), &o, &in, mode);
      if (ZSTD_isError(rc)) throw Error(std::string("zstd: ") + ZSTD_getErrorName(rc));
      if (o.pos > 0) out.write(ByteView(buf.data(), o.pos));
      bool done = mode == ZSTD_e_end ? rc == 0 : in.pos == in.size;
      if (done) return;
    }
  }
  void write_oldest() {
    Bytes frame = jobs.front().get();
    jobs.pop_front();
    out.write(frame);
  }
  void submit_pending() {
    if (jobs.size() >= options.workers) write_oldest();
    jobs.push_back(
        std::async(std::launch::async, compress_frame, options.level, std::move(pending)));
    pending = Bytes();
    pending.reserve(options.frame_bytes);
  }
};

ZstdSink::ZstdSink(ByteSink& out, ZstdOptions options) : s_(std::make_unique<State>(out, options)) {
  if (options.level < ZSTD_minCLevel() || options.level > ZSTD_maxCLevel()) {
    throw Error("zstd: compression level " + std::to_string(options.level) + " is not in " +
                std::to_string(ZSTD_minCLevel()) + "-" + std::to_string(ZSTD_maxCLevel()));
  }
  if (options.workers == 0) {
    s_->cctx = make_cctx(options.level);
    s_->buf.resize(ZSTD_CStreamOutSize());
  } else {
    if (options.frame_bytes == 0) throw Error("zstd: frame_bytes must not be 0");
    s_->pending.reserve(options.frame_bytes);
  }
}

ZstdSink::~ZstdSink() {
  // Frames still being compressed finish before their input goes away (futures of
  // std::async join when destroyed).
  for (auto& job : s_->jobs) job.wait();
}

void ZstdSink::write(ByteView data) {
  State& s = *s_;
  if (s.finished) throw Error("zstd: write after finish");
  if (s.options.workers == 0) {
    s.stream(data, ZSTD_e_continue);
    return;
  }
  while (!data.empty()) {
    size_t take = std::min(data.size(), s.options.frame_bytes - s.pending.size());
    s.pending.insert(s.pending.end(), data.begin(), data.begin() + static_cast<ptrdiff_t>(take));
    data = data.subspan(take);
    if (s.pending.size() == s.options.frame_bytes) s.submit_pending();
  }
}

void ZstdSink::finish() {
  State& s = *s_;
  if (s.finished) return;
  if (s.options.workers == 0) {
    s.stream(ByteView(), ZSTD_e_end);
  } else {
    // An empty input still gets one (empty) frame, so that the output is a zstd stream.
    if (!s.pending.empty() || s.jobs.empty()) s.submit_pending();
    while (!s.jobs.empty()) s.write_oldest();
  }
  s.finished = true;
  s.out.finish();
}

// ---- detection --------------------------------------------------------------------------------

std::unique_ptr<ByteSource> open_decompressor(ByteSource& compressed, Compression compression) {
  switch (compression) {
    case Compression::gzip:
      return std::make_unique<GzipSource>(compressed);
    case Compression::zstd:
      return std::make_unique<ZstdSource>(compressed);
    case Compression::none:
      break;
  }
  return std::make_unique<PassThroughSource>(compressed);
}

Decompressed open_decompressed(ByteSource& compressed) {
  Bytes head(4);
  head.resize(read_fill(compressed, head.data(), head.size()));
  Compression kind = Compression::none;
  if (head.size() >= 2 && head[0] == 0x1f && head[1] == 0x8b) {
    kind = Compression::gzip;
  } else if (head.size() >= 4 && is_zstd_magic(head.data())) {
    kind = Compression::zstd;
  }
  auto prefixed = std::make_unique<PrefixedSource>(std::move(head), compressed);
  return {kind, std::make_unique<OwningChain>(std::move(prefixed), kind)};
}

void fuzz_decompressors(ByteView input) {
  Bytes buf(64 * 1024);
  auto run = [&](auto make) {
    try {
      MemorySource src(input);
      auto dec = make(src);
      while (dec->read(buf.data(), buf.size()) > 0) {
      }
    } catch (const Error&) {
    }
  };
  run([](ByteSource& s) { return std::make_unique<GzipSource>(s); });
  run([](ByteSource& s) { return std::make_unique<ZstdSource>(s); });
  run([](ByteSource& s) { return open_decompressed(s).source; });
}

// ---- decoding pushed bytes ----------------------------------------------------------------

struct DecompressingSink::State {
  State(ByteSink& o, Compression c, uint64_t max) : out(o), compression(c), max_output(max) {}
  ~State() {
    if (dctx) ZSTD_freeDCtx(dctx);
    if (z_open) inflateEnd(&z);
  }
  State(const State&) = delete;
  State& operator=(const State&) = delete;
  ByteSink& out;
  Compression compression;
  uint64_t max_output;
  uint64_t produced = 0;
  uint64_t consumed = 0;
  ZSTD_DCtx* dctx = nullptr;
  z_stream z{};
  bool z_open = false;
  bool between = true;  // at the start or after a complete frame/member
  bool any_input = false;
  std::array<uint8_t, 64 * 1024> buf{};

  void emit(size_t n) {
    if (n == 0) return;
    produced += n;
    if (max_output && produced > max_output) {
      throw Error(std::string(compression_name(compression)) + ": the data expands past " +
                  std::to_string(max_output) + " bytes");
    }
    out.write(ByteView(buf.data(), n));
  }
};

DecompressingSink::DecompressingSink(ByteSink& out, Compression compression, uint64_t max_output)
    : s_(std::make_unique<State>(out, compression, max_output)) {
  if (compression == Compression::zstd) {
    s_->dctx = ZSTD_createDCtx();
    if (!s_->dctx) throw Error("zstd: out of memory");
    size_t rc = ZSTD_DCtx_setParameter(s_->dctx, ZSTD_d_windowLogMax, kZstdMaxWindowLog);
    if (ZSTD_isError(rc)) throw Error(std::string("zstd: ") + ZSTD_getErrorName(rc));
  } else if (compression == Compression::gzip) {
    if (inflateInit2(&s_->z, 16 + MAX_WBITS) != Z_OK) throw Error("gzip: out of memory");
    s_->z_open = true;
  }
}

DecompressingSink::~DecompressingSink() = default;

uint64_t DecompressingSink::input_bytes() const {
  return s_->consumed;
}

void DecompressingSink::write(ByteView data) {
  State& s = *s_;
  s.consumed += data.size();
  if (data.empty()) return;
  s.any_input = true;
  if (s.compression == Compression::none) {
    s.produced += data.size();
    if (s.max_output && s.produced > s.max_output) {
      throw Error("the data is longer than " + std::to_string(s.max_output) + " bytes");
    }
    s.out.write(data);
    return;
  }
  if (s.compression == Compression::zstd) {
    ZSTD_inBuffer in{data.data(), data.size(), 0};
    // Until the input is used up and the decoder has nothing more to give (a full output
    // buffer means it may hold more).
    for (;;) {
      ZSTD_outBuffer o{s.buf.data(), s.buf.size(), 0};
      size_t before = in.pos;
      size_t rc = ZSTD_decompressStream(s.dctx, &o, &in);
      if (ZSTD_isError(rc)) {
        if (ZSTD_getErrorCode(rc) == ZSTD_error_frameParameter_windowTooLarge) {
          throw Error("zstd: a frame asks for a window larger than 128 MiB; refused");
        }
        throw Error(std::string("zstd: corrupt data (") + ZSTD_getErrorName(rc) + ")");
      }
      // A call that moved nothing (asked again after a full output buffer, at the end of a
      // frame) says how much the next frame would need: not a sign of an unfinished frame.
      if (in.pos > before || o.pos > 0) s.between = rc == 0;
      s.emit(o.pos);
      if (in.pos == in.size && o.pos < o.size) return;
    }
  }
  // gzip: members one after the other are one stream.
  s.z.next_in = const_cast<Bytef*>(data.data());  // zlib's API is not const-correct
  s.z.avail_in = static_cast<uInt>(data.size());
  s.between = false;
  for (;;) {
    s.z.next_out = s.buf.data();
    s.z.avail_out = static_cast<uInt>(s.buf.size());
    int rc = inflate(&s.z, Z_NO_FLUSH);
    size_t got = s.buf.size() - s.z.avail_out;
    if (rc == Z_STREAM_END) {
      s.emit(got);
      if (s.z.avail_in == 0) {
        s.between = true;
        return;
      }
      if (inflateReset(&s.z) != Z_OK) throw Error("gzip: cannot start the next member");
      continue;
    }
    if (rc != Z_OK && rc != Z_BUF_ERROR) {
      throw Error(std::string("gzip: corrupt data") +
                  (s.z.msg ? std::string(" (") + s.z.msg + ")" : std::string()));
    }
    s.emit(got);
    // Done when the input is used up and the output had room (nothing held back), or when no
    // progress is possible without more input.
    if ((s.z.avail_in == 0 && s.z.avail_out > 0) || (rc == Z_BUF_ERROR && got == 0)) return;
  }
}

void DecompressingSink::finish() {
  State& s = *s_;
  if (s.compression == Compression::none) return;
  if (!s.any_input) throw Error(std::string(compression_name(s.compression)) + ": no data");
  if (!s.between)
    throw Error(std::string(compression_name(s.compression)) + ": the stream is truncated");
}

}  // namespace cidrun
