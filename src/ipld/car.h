// CAR (Content Addressable aRchive): CARv1 writing, CARv1 and CARv2 reading.
// CARv1: varint(len) dag-cbor{roots:[CID...], version:1}, then sections varint(len) CID block.
// CARv2: 11-byte pragma, 40-byte header (characteristics, data offset, data size, index
// offset), a CARv1 payload; the index is ignored (we stream, we never seek by it).
// Specs: https://ipld.io/specs/transport/car/carv1/ and .../carv2/
//
// CAR files come from strangers: the reader bounds every length before allocating (go-car's
// limits: 32 MiB header, 8 MiB section), verifies each block against its CID, and rejects
// truncated, zero-padded and trailing-garbage payloads with the byte offset of the fault.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "multiformats/cid.h"
#include "util/bytes.h"

namespace cidrun::car {

inline constexpr uint64_t kMaxHeaderSize = 32u << 20;
inline constexpr uint64_t kMaxSectionSize = 8u << 20;

// The dag-cbor header {roots, version: 1}, without the length prefix. Keys in dag-cbor order
// ("roots" before "version": shorter key first).
Bytes encode_header(const std::vector<Cid>& roots);

struct Header {
  uint64_t version = 0;
  std::vector<Cid> roots;
};
// Decodes a CARv1 header or the CARv2 pragma; throws Error on anything else.
Header decode_header(ByteView cbor);

// Streams a CARv1 to a file descriptor (stdout, a file, a pipe).
class Writer {
 public:
  Writer(int fd, const std::vector<Cid>& roots, std::string name = "output");
  ~Writer();
  Writer(const Writer&) = delete;
  Writer& operator=(const Writer&) = delete;

  void add(const Cid& cid, ByteView block);
  void flush();
  uint64_t blocks() const { return blocks_; }
  uint64_t bytes() const { return bytes_; }

 private:
  void write(ByteView data);
  int fd_;
  std::string name_;
  Bytes buf_;
  uint64_t blocks_ = 0;
  uint64_t bytes_ = 0;
};

// Reads a CARv1 or CARv2 from a file descriptor, one verified block at a time.
class Reader {
 public:
  // Reads the header(s); throws Error naming `name` on a malformed start.
  Reader(int fd, std::string name);

  int version() const { return version_; }
  const std::vector<Cid>& roots() const { return roots_; }
  // The next block, verified against its CID. Returns false at the clean end of the payload.
  bool next(Cid& cid, Bytes& block);

 private:
  size_t fill(size_t want);  // ensures `want` buffered bytes if the input has them
  void read_exact(uint8_t* out, size_t len, const char* what);
  std::optional<uint64_t> read_varint(const char* what, bool eof_ok);
  void skip(uint64_t len);
  [[noreturn]] void fail(const std::string& msg) const;

  int fd_;
  std::string name_;
  Bytes buf_;
  size_t buf_pos_ = 0;
  bool eof_ = false;
  uint64_t offset_ = 0;                // bytes consumed from the input
  uint64_t payload_end_ = UINT64_MAX;  // CARv2: where the CARv1 payload stops
  int version_ = 1;
  std::vector<Cid> roots_;
};

}  // namespace cidrun::car
