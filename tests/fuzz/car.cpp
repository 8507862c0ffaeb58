// CAR files as `dag import` reads them (car::Reader, CARv1 and CARv2, from a file descriptor) and
// CAR streams as `pull` reads an HTTP body (exchange::CarStreamParser, fed in arbitrary pieces).
// Invariants: the two parsers agree on every CARv1 both accept; every block the reader hands out
// matches its CID; a CAR that was read in full, written again with car::Writer, reads back the
// same.
#include <sys/mman.h>
#include <unistd.h>

#include <utility>
#include <vector>

#include "exchange/car_stream.h"
#include "fuzz.h"
#include "ipld/car.h"
#include "util/error.h"
#include "util/fd.h"

using namespace cidrun;

namespace {

using Blocks = std::vector<std::pair<Cid, Bytes>>;

UniqueFd memfd_with(ByteView data) {
  UniqueFd fd(::memfd_create("car", MFD_CLOEXEC));
  FUZZ_CHECK(fd.valid());
  write_full(fd.get(), data.data(), data.size(), "memfd");
  FUZZ_CHECK(::lseek(fd.get(), 0, SEEK_SET) == 0);
  return fd;
}

// nullopt when the reader refused the input.
std::optional<std::pair<car::Header, Blocks>> read_all(ByteView data) {
  UniqueFd fd = memfd_with(data);
  try {
    car::Reader r(fd.get(), "fuzz.car");
    Blocks blocks;
    Cid cid;
    Bytes block;
    while (r.next(cid, block)) {
      FUZZ_CHECK(cid.matches(block));
      blocks.emplace_back(cid, block);
    }
    return std::make_pair(car::Header{static_cast<uint64_t>(r.version()), r.roots()}, blocks);
  } catch (const Error&) {
    return std::nullopt;
  }
}

std::optional<Blocks> stream_all(ByteView data) {
  Blocks blocks;
  exchange::CarStreamParser p(
      [&](const Cid& c, ByteView b) { blocks.emplace_back(c, to_bytes(as_string(b))); });
  try {
    // Pieces of varying size, as a socket delivers them.
    size_t at = 0;
    for (size_t piece = 1; at < data.size(); piece = piece * 3 % 8191 + 1) {
      size_t n = std::min(piece, data.size() - at);
      p.feed(data.subspan(at, n));
      at += n;
    }
    p.finish();
  } catch (const Error&) {
    return std::nullopt;
  }
  return blocks;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ByteView in = fuzz::bytes_of(data, size);
  auto read = read_all(in);
  auto streamed = stream_all(in);
  if (read && streamed && read->first.version == 1) {
    const Blocks& a = read->second;
    const Blocks& b = *streamed;
    FUZZ_CHECK(a.size() == b.size());
    for (size_t i = 0; i < a.size(); ++i) {
      FUZZ_CHECK(a[i].first == b[i].first);
      FUZZ_CHECK(a[i].second == b[i].second);
    }
  }
  if (read) {
    UniqueFd out(::memfd_create("car-out", MFD_CLOEXEC));
    {
      car::Writer w(out.get(), read->first.roots, "fuzz-out.car");
      for (const auto& [cid, block] : read->second) w.add(cid, block);
      w.flush();
    }
    Bytes written(static_cast<size_t>(::lseek(out.get(), 0, SEEK_END)));
    FUZZ_CHECK(::pread(out.get(), written.data(), written.size(), 0) ==
               static_cast<ssize_t>(written.size()));
    auto again = read_all(written);
    FUZZ_CHECK(again.has_value());
    FUZZ_CHECK(again->first.roots == read->first.roots);
    FUZZ_CHECK(again->second == read->second);
  }
  return 0;
}
