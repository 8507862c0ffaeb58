// CARv1 framing as the exchange needs it: a push parser that takes bytes as they arrive from a
// socket (any chunking) and hands out whole sections, and the few bytes a streaming writer emits.
// Spec: https://ipld.io/specs/transport/car/carv1/
//
// ipld/car.h (car::Reader/Writer) works on file descriptors and pulls its input; an HTTP
// body arrives in pushed pieces on the transfer thread, so the exchange needs this push parser.
// Header encoding and decoding are ipld/car.h's.
#pragma once

#include <functional>
#include <vector>

#include "multiformats/cid.h"
#include "util/bytes.h"

namespace cidrun::exchange {

// A block larger than this is refused from any peer (the trustless gateway spec's SHOULD, and
// kubo's/boxo's limit), so one section can never make us buffer an unbounded amount.
inline constexpr size_t kMaxBlockSize = 2 * 1024 * 1024;
inline constexpr size_t kMaxCarHeaderSize = 64 * 1024;  // a stream's header: roots only

class CarStreamParser {
 public:
  // on_block receives each section's CID and bytes, NOT yet verified: the caller checks them.
  using OnBlock = std::function<void(const Cid&, ByteView)>;
  explicit CarStreamParser(OnBlock on_block) : on_block_(std::move(on_block)) {}

  // Throws Error on a malformed header or section, a block over kMaxBlockSize, or CARv2.
  void feed(ByteView data);
  // Throws Error when the stream stopped inside the header or a section (a truncated CAR).
  void finish() const;
  bool saw_header() const { return header_done_; }
  // What the buffer of a partial section holds room for: it grows once per section, not once
  // per feed (a stream arriving in tiny pieces must not cost a copy of the section per piece).
  size_t buffer_capacity() const { return buf_.capacity(); }

 private:
  // Parses whole sections from in; returns the bytes consumed.
  size_t parse(ByteView in);
  OnBlock on_block_;
  Bytes buf_;
  size_t pos_ = 0;
  bool header_done_ = false;
};

// The CARv1 header with its length prefix (ipld/car.h encodes the dag-cbor).
Bytes car_header(const std::vector<Cid>& roots);
// The bytes that precede a block's data in a section: varint(len(cid)+len(data)) || cid.
Bytes car_section_prefix(const Cid& cid, size_t data_len);

}  // namespace cidrun::exchange
