// What the fuzz targets share: a check that fails loudly (libFuzzer then saves the input as a
// crash), and views of the input as text or bytes.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "util/bytes.h"

namespace cidrun::fuzz {

// An invariant beyond "no crash": a decoded value that does not survive its round trip, two
// decoders that disagree. Reported like a crash, with the condition.
#define FUZZ_CHECK(cond)                                                                      \
  do {                                                                                        \
    if (!(cond)) {                                                                            \
      std::fprintf(stderr, "fuzz invariant failed: %s (%s:%d)\n", #cond, __FILE__, __LINE__); \
      std::abort();                                                                           \
    }                                                                                         \
  } while (0)

inline std::string_view text_of(const uint8_t* data, size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

inline ByteView bytes_of(const uint8_t* data, size_t size) {
  return {data, size};
}

inline bool same(ByteView a, ByteView b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin());
}

}  // namespace cidrun::fuzz
