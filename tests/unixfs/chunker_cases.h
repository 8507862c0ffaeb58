// What the rabin and buzhash chunker tests share: reproducible inputs, chunking through a real fd,
// and the two checks both pin (boundaries recorded from the Go reference, and the invariants every
// content-defined chunker keeps).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "util/bytes.h"

namespace cidrun::unixfs::chunk_cases {

// splitmix64 stream, little-endian: trivially reproducible in Go for the reference runs.
Bytes random_bytes(uint64_t seed, size_t size);
// Low-entropy, repetitive input: content-defined chunkers behave differently on it than on noise.
Bytes text_bytes(size_t size);

struct Chunked {
  std::vector<size_t> lengths;
  Bytes joined;
};

// Chunks data with the chunker `spec` names (as `add --chunker` takes it), read through a real
// fd as `add` does.
Chunked chunk(const std::string& spec, const Bytes& data);

// Boundaries recorded from the Go reference on the same generated input.
struct Pinned {
  const char* name;
  std::string spec;
  Bytes data;
  size_t count;
  uint64_t hash;              // FNV-1a over all chunk lengths: pins long lists compactly
  std::vector<size_t> first;  // leading chunk lengths, or all of them
};
void expect_pinned(const Pinned& c);

// Bounds (every chunk but the last in [min, max], the last at most max), lossless, deterministic,
// and content defined: chunking resumes identically from any boundary, since the chunker's state
// restarts per chunk.
void expect_invariants(const std::string& spec, size_t min, size_t max, const Bytes& data);

}  // namespace cidrun::unixfs::chunk_cases
