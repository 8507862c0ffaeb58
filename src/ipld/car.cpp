#include "ipld/car.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>

#include "util/error.h"
#include "util/fd.h"
#include "util/varint.h"

namespace cidrun::car {
namespace {

constexpr uint8_t kPragma[11] = {0x0a, 0xa1, 0x67, 'v', 'e', 'r', 's', 'i', 'o', 'n', 0x02};
constexpr size_t kV2HeaderSize = 40;
constexpr uint64_t kCidLinkTag = 42;

// CBOR major types (RFC 8949 §3.1).
enum Major : uint8_t { kUint = 0, kBytes = 2, kText = 3, kArray = 4, kMap = 5, kTag = 6 };

void put_head(Bytes& out, Major major, uint64_t v) {
  auto m = static_cast<uint8_t>(major << 5);
  if (v < 24) {
    out.push_back(static_cast<uint8_t>(m | v));
    return;
  }
  int bytes = v <= 0xff ? 1 : v <= 0xffff ? 2 : v <= 0xffffffffu ? 4 : 8;
  out.push_back(static_cast<uint8_t>(m | (bytes == 1   ? 24
                                          : bytes == 2 ? 25
                                          : bytes == 4 ? 26
                                                       : 27)));
  for (int i = bytes - 1; i >= 0; --i) out.push_back(static_cast<uint8_t>(v >> (8 * i)));
}

void put_text(Bytes& out, std::string_view s) {
  put_head(out, kText, s.size());
  out.insert(out.end(), s.begin(), s.end());
}

// Reads one CBOR item head; only the definite-length forms dag-cbor allows.
std::pair<Major, uint64_t> read_head(ByteView data, size_t& pos) {
  if (pos >= data.size()) throw Error("header ends early");
  uint8_t b = data[pos++];
  auto major = static_cast<Major>(b >> 5);
  uint8_t info = b & 0x1f;
  if (info < 24) return {major, info};
  if (info > 27) throw Error("indefinite-length or reserved CBOR item in header");
  size_t n = size_t{1} << (info - 24);
  if (data.size() - pos < n) throw Error("header ends early");
  uint64_t v = 0;
  for (size_t i = 0; i < n; ++i) v = (v << 8) | data[pos++];
  return {major, v};
}

std::string_view read_text(ByteView data, size_t& pos) {
  auto [major, len] = read_head(data, pos);
  if (major != kText) throw Error("header map key is not a string");
  if (data.size() - pos < len) throw Error("header ends early");
  std::string_view s = as_string(data.subspan(pos, len));
  pos += len;
  return s;
}

}  // namespace

Bytes encode_header(const std::vector<Cid>& roots) {
  Bytes out;
  put_head(out, kMap, 2);
  put_text(out, "roots");
  put_head(out, kArray, roots.size());
  for (const auto& r : roots) {
    // A dag-cbor link: tag 42 over bytes 0x00 || binary CID (the 0x00 is the identity multibase).
    put_head(out, kTag, kCidLinkTag);
    put_head(out, kBytes, r.bytes().size() + 1);
    out.push_back(0x00);
    out.insert(out.end(), r.bytes().begin(), r.bytes().end());
  }
  put_text(out, "version");
  put_head(out, kUint, 1);
  return out;
}

Header decode_header(ByteView cbor) {
  Header h;
  size_t pos = 0;
  auto [major, entries] = read_head(cbor, pos);
  if (major != kMap) throw Error("header is not a CBOR map");
  bool have_version = false;
  bool have_roots = false;
  for (uint64_t i = 0; i < entries; ++i) {
    std::string_view key = read_text(cbor, pos);
    if (key == "version" && !have_version) {
      auto [m, v] = read_head(cbor, pos);
      if (m != kUint) throw Error("header version is not an integer");
      h.version = v;
      have_version = true;
    } else if (key == "roots" && !have_roots) {
      auto [m, count] = read_head(cbor, pos);
      if (m != kArray) throw Error("header roots is not a list");
      // No reserve(count): the count is a claim; each root consumes real bytes below.
      for (uint64_t j = 0; j < count; ++j) {
        auto [tm, tag] = read_head(cbor, pos);
        if (tm != kTag || tag != kCidLinkTag) throw Error("header root is not a CID link");
        auto [bm, len] = read_head(cbor, pos);
        if (bm != kBytes || len < 2 || cbor.size() - pos < len || cbor[pos] != 0x00) {
          throw Error("header root is not a binary CID");
        }
        h.roots.push_back(Cid::from_bytes(cbor.subspan(pos + 1, len - 1)));
        pos += len;
      }
      have_roots = true;
    } else {
      throw Error("unexpected header key '" + std::string(key) + "'");
    }
  }
  if (pos != cbor.size()) throw Error("trailing bytes after the header map");
  if (!have_version) throw Error("header has no version");
  if (h.version == 1 && !have_roots) throw Error("CARv1 header has no roots");
  return h;
}

Writer::Writer(int fd, const std::vector<Cid>& roots, std::string name)
    : fd_(fd), name_(std::move(name)) {
  buf_.reserve(1 << 20);
  Bytes header = encode_header(roots);
  Bytes prefix;
  put_varint(prefix, header.size());
  write(prefix);
  write(header);
}

Writer::~Writer() {
  try {
    flush();
  } catch (const Error&) {
    // A destructor cannot report; callers that care call flush() themselves.
  }
}

void Writer::add(const Cid& cid, ByteView block) {
  Bytes prefix;
  put_varint(prefix, cid.bytes().size() + block.size());
  write(prefix);
  write(cid.bytes());
  write(block);
  ++blocks_;
}

void Writer::write(ByteView data) {
  bytes_ += data.size();
  if (buf_.size() + data.size() > buf_.capacity()) flush();
  if (data.size() >= buf_.capacity()) {
    write_full(fd_, data.data(), data.size(), name_);
    return;
  }
  buf_.insert(buf_.end(), data.begin(), data.end());
}

void Writer::flush() {
  if (buf_.empty()) return;
  write_full(fd_, buf_.data(), buf_.size(), name_);
  buf_.clear();
}

Reader::Reader(int fd, std::string name) : fd_(fd), name_(std::move(name)) {
  auto len = read_varint("header length", /*eof_ok=*/false);
  if (*len == 0) fail("header length is zero");
  if (*len > kMaxHeaderSize)
    fail("header length " + std::to_string(*len) + " exceeds the 32 MiB limit");
  Bytes header(static_cast<size_t>(*len));
  read_exact(header.data(), header.size(), "header");
  Header h;
  try {
    h = decode_header(header);
  } catch (const Error& e) {
    fail(std::string("bad header: ") + e.what());
  }
  if (h.version == 2) {
    if (header.size() + 1 != sizeof kPragma ||
        std::memcmp(header.data(), kPragma + 1, header.size()) != 0) {
      fail("bad CARv2 pragma");
    }
    uint8_t v2[kV2HeaderSize];
    read_exact(v2, sizeof v2, "CARv2 header");
    auto le64 = [&](size_t at) {
      uint64_t v = 0;
      for (int i = 7; i >= 0; --i) v = (v << 8) | v2[at + static_cast<size_t>(i)];
      return v;
    };
    uint64_t data_offset = le64(16);
    uint64_t data_size = le64(24);
    if (data_offset < sizeof kPragma + kV2HeaderSize)
      fail("CARv2 data offset points into its header");
    if (data_size > UINT64_MAX - data_offset) fail("CARv2 data size overflows");
    skip(data_offset - offset_);
    payload_end_ = data_offset + data_size;
    auto inner_len = read_varint("CARv1 header length", false);
    if (*inner_len == 0 || *inner_len > kMaxHeaderSize) fail("bad inner CARv1 header length");
    Bytes inner(static_cast<size_t>(*inner_len));
    read_exact(inner.data(), inner.size(), "inner CARv1 header");
    try {
      h = decode_header(inner);
    } catch (const Error& e) {
      fail(std::string("bad inner header: ") + e.what());
    }
    if (h.version != 1) fail("CARv2 payload is not a CARv1");
    version_ = 2;
  } else if (h.version != 1) {
    fail("unsupported CAR version " + std::to_string(h.version));
  }
  roots_ = std::move(h.roots);
}

void Reader::fail(const std::string& msg) const {
  throw Error("CAR " + name_ + ": " + msg + " (at byte " + std::to_string(offset_) + ")");
}

size_t Reader::fill(size_t want) {
  size_t have = buf_.size() - buf_pos_;
  if (have >= want || eof_) return have;
  if (buf_pos_ > 0) {
    buf_.erase(buf_.begin(), buf_.begin() + static_cast<std::ptrdiff_t>(buf_pos_));
    buf_pos_ = 0;
  }
  // want is bounded by the callers (section and header limits), never by input claims alone.
  size_t target = std::max(want, size_t{1} << 20);
  while (buf_.size() < want && !eof_) {
    size_t old = buf_.size();
    buf_.resize(target);
    ssize_t n;
    do {
      n = ::read(fd_, buf_.data() + old, target - old);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
      buf_.resize(old);
      throw_errno("read CAR " + name_);
    }
    buf_.resize(old + static_cast<size_t>(n));
    if (n == 0) eof_ = true;
  }
  return buf_.size();
}

void Reader::read_exact(uint8_t* out, size_t len, const char* what) {
  if (offset_ + len > payload_end_)
    fail(std::string(what) + " runs past the end of the CARv2 data");
  if (fill(len) < len) fail(std::string("truncated: file ends inside the ") + what);
  std::memcpy(out, buf_.data() + buf_pos_, len);
  buf_pos_ += len;
  offset_ += len;
}

void Reader::skip(uint64_t len) {
  while (len > 0) {
    size_t step = static_cast<size_t>(std::min<uint64_t>(len, 1 << 20));
    size_t have = fill(step);
    if (have == 0) fail("truncated: file ends before the CARv2 data");
    size_t n = std::min(have, step);
    buf_pos_ += n;
    offset_ += n;
    len -= n;
  }
}

std::optional<uint64_t> Reader::read_varint(const char* what, bool eof_ok) {
  size_t have = fill(10);
  if (have == 0) {
    if (eof_ok) return std::nullopt;
    fail(std::string("truncated: no ") + what);
  }
  size_t pos = 0;
  ByteView view(buf_.data() + buf_pos_, std::min<size_t>(have, 10));
  auto v = get_varint(view, pos);
  if (!v) fail(std::string("malformed or truncated varint for the ") + what);
  buf_pos_ += pos;
  offset_ += pos;
  return v;
}

bool Reader::next(Cid& cid, Bytes& block) {
  if (offset_ == payload_end_) return false;  // CARv2: the payload ends exactly here
  uint64_t section_start = offset_;
  auto len = read_varint("section length", /*eof_ok=*/payload_end_ == UINT64_MAX);
  if (!len) return false;
  if (*len == 0) fail("zero-length section (padding is not allowed)");
  if (*len > kMaxSectionSize) {
    fail("section claims " + std::to_string(*len) + " bytes, over the 8 MiB limit");
  }
  if (offset_ + *len > payload_end_) fail("section runs past the end of the CARv2 data");
  auto n = static_cast<size_t>(*len);
  if (fill(n) < n) {
    fail("truncated: section at byte " + std::to_string(section_start) + " claims " +
         std::to_string(n) + " bytes but the file ends first");
  }
  ByteView section(buf_.data() + buf_pos_, n);
  size_t pos = 0;
  try {
    cid = Cid::read(section, pos);
  } catch (const Error& e) {
    fail(std::string("bad CID in section: ") + e.what());
  }
  ByteView data = section.subspan(pos);
  if (!cid.matches(data)) fail("block " + cid.str() + " does not match its hash");
  block.assign(data.begin(), data.end());
  buf_pos_ += n;
  offset_ += n;
  return true;
}

}  // namespace cidrun::car
