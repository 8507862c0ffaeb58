// What the stream tests share: a temporary directory, test data, and running the real gzip, pigz
// and zstd programs whose output the decoders must read.
#pragma once

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>

#include "util/bytes.h"
#include "util/fd.h"
#include "util/stream.h"

namespace cidrun::stream_test {

struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/cidrun-stream-test-XXXXXX";
    const char* made = ::mkdtemp(tmpl);
    path = made ? made : "";
  }
  ~TempDir() {
    if (!path.empty()) std::filesystem::remove_all(path);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string operator/(const std::string& name) const { return path + "/" + name; }
};

inline Bytes random_data(size_t n, unsigned seed) {
  std::mt19937_64 rng(seed);
  Bytes b(n);
  for (auto& x : b) x = static_cast<uint8_t>(rng());
  return b;
}

// Text-like data that compresses (runs of words), so compressed streams have long matches.
inline Bytes compressible_data(size_t n, unsigned seed) {
  static const char* const kWords[] = {"layer ",  "tar ", "zstd ",  "gzip ",
                                       "block\n", "cid ", "image ", "root "};
  std::mt19937 rng(seed);
  Bytes b;
  b.reserve(n + 8);
  while (b.size() < n) {
    const char* w = kWords[rng() % 8];
    b.insert(b.end(), w, w + std::char_traits<char>::length(w));
  }
  b.resize(n);
  return b;
}

// Runs a shell command; the test fails (by the caller's ASSERT) unless it exits 0.
inline bool sh(const std::string& command) {
  return std::system(command.c_str()) == 0;  // NOLINT(cert-env33-c): test tools only
}

inline void write_bytes(const std::string& path, ByteView data) {
  write_file_atomic(path, data, /*durable=*/false);
}

// Everything a source gives, read `chunk` bytes at a time.
inline Bytes read_all(ByteSource& source, size_t chunk = 65536) {
  Bytes out;
  Bytes buf(chunk);
  while (size_t n = source.read(buf.data(), buf.size()))
    out.insert(out.end(), buf.data(), buf.data() + n);
  return out;
}

}  // namespace cidrun::stream_test
