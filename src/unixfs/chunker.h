// Chunkers split a byte stream into the leaves of a UnixFS file (boxo's chunker/ package):
// `size-N` (fixed), `rabin[-min-avg-max]` and `buzhash`, with kubo's exact parameters so that the
// same input gives the same chunks, and so the same CIDs, as kubo.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "util/bytes.h"

namespace cidrun::unixfs {

// Where chunkers read from: an fd, read in large sequential pieces.
class ByteSource {
 public:
  // expected_size: the size fstat reported, when the source is a regular file. Chunkers use it
  // to size buffers to the data (a 10-byte file must not cost a 256 KiB allocation); a file that
  // changes size meanwhile is caught by the importer's fstat after reading.
  ByteSource(int fd, std::string name, std::optional<uint64_t> expected_size = std::nullopt)
      : fd_(fd), name_(std::move(name)), expected_(expected_size) {}
  // Any other stream (a tar entry's content): `reader` returns up to len bytes, 0 at the end,
  // and throws cidrun::Error on failure.
  using Reader = std::function<size_t(uint8_t* buf, size_t len)>;
  ByteSource(Reader reader, std::string name, std::optional<uint64_t> expected_size = std::nullopt)
      : reader_(std::move(reader)), name_(std::move(name)), expected_(expected_size) {}
  // Reads up to len bytes; returns fewer only at EOF.
  size_t read(uint8_t* buf, size_t len);
  // How many bytes a read of up to len should ask for: len, or less when the expected size says
  // the data ends sooner.
  size_t want(size_t len) const {
    if (!expected_) return len;
    uint64_t left = *expected_ > consumed_ ? *expected_ - consumed_ : 0;
    return left < len ? static_cast<size_t>(left) : len;
  }
  uint64_t consumed() const { return consumed_; }
  const std::string& name() const { return name_; }

 private:
  int fd_ = -1;
  Reader reader_;
  std::string name_;
  std::optional<uint64_t> expected_;
  uint64_t consumed_ = 0;
};

class Chunker {
 public:
  virtual ~Chunker() = default;
  // Fills out with the next chunk. Returns false, with out empty, at the end of the stream. A
  // stream of zero bytes yields no chunk at all.
  virtual bool next(Bytes& out) = 0;
};

// The largest chunk any chunker may produce (boxo: 2 MiB minus protobuf framing room).
inline constexpr size_t kMaxChunkSize = 2 * 1024 * 1024 - 256;

// Checks a chunker spec ("size-262144", "rabin", "rabin-AVG", "rabin-MIN-AVG-MAX", "buzhash");
// throws cidrun::Error with kubo's kind of message when it is malformed or out of range.
void validate_chunker_spec(const std::string& spec);
std::unique_ptr<Chunker> make_chunker(const std::string& spec, ByteSource& src);

// The content-defined chunkers, in their own files.
std::unique_ptr<Chunker> make_rabin_chunker(ByteSource& src, size_t min, size_t avg, size_t max);
std::unique_ptr<Chunker> make_buzhash_chunker(ByteSource& src);

// For "size-N": the fixed size, or 0 when spec is not a fixed-size chunker.
size_t fixed_chunk_size(const std::string& spec);

}  // namespace cidrun::unixfs
