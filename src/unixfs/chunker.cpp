#include "unixfs/chunker.h"

#include <charconv>
#include <vector>

#include "util/error.h"
#include "util/fd.h"

namespace cidrun::unixfs {
namespace {

size_t parse_size(std::string_view s, const std::string& spec) {
  size_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || s.empty()) {
    throw Error("bad chunker '" + spec + "': '" + std::string(s) + "' is not a number");
  }
  return v;
}

std::vector<std::string_view> split_dash(std::string_view s) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  for (size_t i = 0; i <= s.size(); ++i) {
    if (i == s.size() || s[i] == '-') {
      parts.push_back(s.substr(start, i - start));
      start = i + 1;
    }
  }
  return parts;
}

struct RabinParams {
  size_t min, avg, max;
};

// kubo/boxo chunker/parse.go: "rabin" = avg 256 KiB; "rabin-AVG" => min AVG/3, max AVG+AVG/2;
// "rabin-MIN-AVG-MAX" with 16 <= min < avg < max <= kMaxChunkSize.
RabinParams parse_rabin(const std::string& spec) {
  auto parts = split_dash(spec);
  size_t avg = 262144;
  if (parts.size() == 1) return {avg / 3, avg, avg + avg / 2};
  if (parts.size() == 2) {
    avg = parse_size(parts[1], spec);
    RabinParams p{avg / 3, avg, avg + avg / 2};
    if (p.max > kMaxChunkSize)
      throw Error("chunker parameters may not exceed the maximum chunk size of 2096896");
    if (p.min < 16 || p.min >= p.avg)
      throw Error("bad chunker '" + spec + "': rabin average too small");
    return p;
  }
  if (parts.size() == 4) {
    RabinParams p{parse_size(parts[1], spec), parse_size(parts[2], spec),
                  parse_size(parts[3], spec)};
    if (p.min < 16) throw Error("rabin min must be greater than 16");
    if (p.max < p.avg) throw Error("rabin max must be greater than avg");
    if (p.avg < p.min) throw Error("rabin avg must be greater than min");
    if (p.max > kMaxChunkSize)
      throw Error("chunker parameters may not exceed the maximum chunk size of 2096896");
    return p;
  }
  throw Error("incorrect format (expected 'rabin' 'rabin-[avg]' or 'rabin-[min]-[avg]-[max]'");
}

class FixedChunker : public Chunker {
 public:
  FixedChunker(ByteSource& src, size_t size) : src_(src), size_(size) {}
  bool next(Bytes& out) override {
    size_t want = src_.want(size_);
    if (want == 0) {
      out.clear();
      return false;
    }
    out.resize(want);
    size_t n = src_.read(out.data(), want);
    out.resize(n);
    return n > 0;
  }

 private:
  ByteSource& src_;
  size_t size_;
};

}  // namespace

size_t ByteSource::read(uint8_t* buf, size_t len) {
  size_t got = 0;
  if (reader_) {
    while (got < len) {
      size_t n = reader_(buf + got, len - got);
      if (n == 0) break;
      got += n;
    }
  } else {
    got = read_full(fd_, buf, len, name_);
  }
  consumed_ += got;
  return got;
}

size_t fixed_chunk_size(const std::string& spec) {
  if (spec.rfind("size-", 0) != 0) return 0;
  size_t n = parse_size(std::string_view(spec).substr(5), spec);
  if (n == 0) throw Error("chunker size must be greater than 0");
  if (n > kMaxChunkSize)
    throw Error("chunker parameters may not exceed the maximum chunk size of 2096896");
  return n;
}

void validate_chunker_spec(const std::string& spec) {
  if (spec.empty()) throw Error("chunker: empty spec");
  if (spec.rfind("size-", 0) == 0) {
    fixed_chunk_size(spec);
  } else if (spec == "rabin" || spec.rfind("rabin-", 0) == 0) {
    parse_rabin(spec);
  } else if (spec != "buzhash") {
    throw Error("unrecognized chunker option: " + spec);
  }
}

std::unique_ptr<Chunker> make_chunker(const std::string& spec, ByteSource& src) {
  validate_chunker_spec(spec);
  if (size_t n = fixed_chunk_size(spec)) return std::make_unique<FixedChunker>(src, n);
  if (spec == "buzhash") return make_buzhash_chunker(src);
  auto p = parse_rabin(spec);
  return make_rabin_chunker(src, p.min, p.avg, p.max);
}

}  // namespace cidrun::unixfs
