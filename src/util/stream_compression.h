// gzip (zlib) and zstd (libzstd) as byte streams: decompressing sources, compressing sinks, and
// detection by magic. Both libraries are linked statically into cidrun.
//
// What a decompressing source checks, whatever the input claims:
// - memory stays bounded: zlib needs its 32 KiB window and fixed state; zstd frames that ask for a
//   window above kZstdMaxWindowBytes are refused before anything is allocated for them;
// - truncation anywhere (header, data, trailer) is an error, never a short clean end; so is a
//   corrupt block, a CRC32/length mismatch in a gzip trailer, a zstd content checksum mismatch;
// - gzip: several members one after the other (pigz, `cat a.gz b.gz`) are one stream; anything
//   after a member that is not another gzip member is an error. Go's compress/gzip and pgzip (what
//   skopeo, podman and containerd read layers with) fail the same way ("gzip: invalid header"),
//   while GNU gzip only warns and ignores the trailing bytes: a layer's digest covers those bytes,
//   so accepting them would let two different blobs unpack to the same tree;
// - zstd: several frames and skippable frames are one stream; data after the last frame that is
//   not a frame is an error.
// A decompressing source returns the bytes it has before it reads more input, so it never blocks
// on its input while it holds output.
#pragma once

#include <cstdint>
#include <memory>
#include <string_view>

#include "util/stream.h"

namespace cidrun {

enum class Compression { none, gzip, zstd };
std::string_view compression_name(Compression compression);

// A zstd frame may ask for a window of up to 2 GiB (--long=31); the decoder must hold that much.
// 128 MiB is libzstd's own default limit for streaming and what `zstd --long=27` writes at most.
inline constexpr uint64_t kZstdMaxWindowBytes = uint64_t{128} << 20;

class GzipSource : public ByteSource {
 public:
  explicit GzipSource(ByteSource& compressed);
  ~GzipSource() override;
  GzipSource(const GzipSource&) = delete;
  GzipSource& operator=(const GzipSource&) = delete;
  size_t read(uint8_t* buf, size_t n) override;

 private:
  struct State;
  std::unique_ptr<State> s_;
};

class ZstdSource : public ByteSource {
 public:
  explicit ZstdSource(ByteSource& compressed);
  ~ZstdSource() override;
  ZstdSource(const ZstdSource&) = delete;
  ZstdSource& operator=(const ZstdSource&) = delete;
  size_t read(uint8_t* buf, size_t n) override;

 private:
  struct State;
  std::unique_ptr<State> s_;
};

// What the first bytes say: gzip (1f 8b), zstd (a zstd frame's or a skippable frame's magic), or
// plain bytes (anything else, including an empty stream).
struct Decompressed {
  Compression compression = Compression::none;
  std::unique_ptr<ByteSource> source;  // reads `compressed`, which must outlive it
};
Decompressed open_decompressed(ByteSource& compressed);
// The decompressor for a compression the caller already knows (an OCI media type); `none` gives
// a source that passes the bytes through.
std::unique_ptr<ByteSource> open_decompressor(ByteSource& compressed, Compression compression);

struct GzipOptions {
  int level = 6;  // 0 (stored) to 9, as gzip -N
};

// One gzip member with a fixed header (no name, mtime 0), so equal input and level give equal
// bytes.
class GzipSink : public ByteSink {
 public:
  explicit GzipSink(ByteSink& out, GzipOptions options = {});
  ~GzipSink() override;
  GzipSink(const GzipSink&) = delete;
  GzipSink& operator=(const GzipSink&) = delete;
  void write(ByteView data) override;
  void finish() override;

 private:
  struct State;
  std::unique_ptr<State> s_;
};

struct ZstdOptions {
  int level = 3;  // 1 to 19 (ZSTD_maxCLevel() with --ultra levels), as zstd -N
  // 0: one frame, compressed on the caller's thread. N >= 1: the input is cut into independent
  // frames of frame_bytes, compressed on N threads (Debian's static libzstd has no
  // ZSTD_c_nbWorkers); the bytes written depend on level and frame_bytes, never on N.
  unsigned workers = 0;
  size_t frame_bytes = size_t{8} << 20;
};

// Frames carry their content checksum, as the zstd CLI writes them.
class ZstdSink : public ByteSink {
 public:
  explicit ZstdSink(ByteSink& out, ZstdOptions options = {});
  ~ZstdSink() override;
  ZstdSink(const ZstdSink&) = delete;
  ZstdSink& operator=(const ZstdSink&) = delete;
  void write(ByteView data) override;
  void finish() override;

 private:
  struct State;
  std::unique_ptr<State> s_;
};

// Decoding pushed bytes (an HTTP body as it arrives): the compressed stream is written in, the
// plain bytes come out into `out` as soon as they can be decoded. The same checks as the sources
// above (bounded window, truncation at finish(), trailing garbage), and at most max_output plain
// bytes (0: no limit) so that a small body cannot expand without bound.
class DecompressingSink : public ByteSink {
 public:
  DecompressingSink(ByteSink& out, Compression compression, uint64_t max_output = 0);
  ~DecompressingSink() override;
  DecompressingSink(const DecompressingSink&) = delete;
  DecompressingSink& operator=(const DecompressingSink&) = delete;
  void write(ByteView data) override;
  // Checks that the stream ended where a frame or member ends; does not finish `out`.
  void finish() override;
  uint64_t input_bytes() const;

 private:
  struct State;
  std::unique_ptr<State> s_;
};

// libFuzzer entry: decodes `input` as gzip, as zstd and through open_decompressed. A
// cidrun::Error is the expected outcome of bad input; a crash, a hang or any other exception is a
// bug.
void fuzz_decompressors(ByteView input);

}  // namespace cidrun
