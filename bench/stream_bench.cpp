// cidrun-stream-bench: the stream and tar layers alone, for bench/decompress.sh and bench/tar.sh
// (which time it beside gzip, zstd and GNU tar). Not installed, not a test.
//   cidrun-stream-bench decompress FILE [--read-ahead]   decompress (gzip/zstd/plain by magic)
//   cidrun-stream-bench tar FILE [--skip|--hash] [--read-ahead]
//                                                       read every entry and its content (and
//                                                       hash it with SHA-256, as an importer does)
// Prints the byte and entry counts, so the scripts can check that each run did the same work.
#include <fcntl.h>

#include <cstdio>
#include <cstring>
#include <memory>
#include <string>

#include "image/tar.h"
#include "util/error.h"
#include "util/fd.h"
#include "util/sha256.h"
#include "util/stream.h"
#include "util/stream_compression.h"
#include "util/stream_read_ahead.h"

namespace {

// The decompressed bytes of a file, optionally decompressed on a thread of their own.
class Input {
 public:
  Input(const std::string& path, bool read_ahead)
      : fd_(::open(path.c_str(), O_RDONLY | O_CLOEXEC)) {
    if (!fd_.valid()) cidrun::throw_errno(path);
    file_ = std::make_unique<cidrun::FdSource>(fd_.get(), path);
    // A plain tar's headers come from the buffer; content of 64 KiB or more, and the
    // decompressors' 256 KiB reads, go straight to the file.
    buffered_ = std::make_unique<cidrun::BufferedSource>(*file_);
    auto d = cidrun::open_decompressed(*buffered_);
    source_ = std::move(d.source);
    if (read_ahead) {
      source_ = std::make_unique<cidrun::ReadAheadSource>(std::move(source_), size_t{8} << 20);
    }
  }
  cidrun::ByteSource& source() { return *source_; }

 private:
  cidrun::UniqueFd fd_;
  std::unique_ptr<cidrun::FdSource> file_;
  std::unique_ptr<cidrun::BufferedSource> buffered_;
  std::unique_ptr<cidrun::ByteSource> source_;
};

int run(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s decompress|tar FILE [--skip|--hash] [--read-ahead]\n", argv[0]);
    return 2;
  }
  std::string mode = argv[1];
  bool skip = false;
  bool hash = false;
  bool read_ahead = false;
  for (int i = 3; i < argc; ++i) {
    if (std::strcmp(argv[i], "--skip") == 0) skip = true;
    if (std::strcmp(argv[i], "--hash") == 0) hash = true;
    if (std::strcmp(argv[i], "--read-ahead") == 0) read_ahead = true;
  }
  Input in(argv[2], read_ahead);
  cidrun::Bytes buf(size_t{1} << 17);
  if (mode == "decompress") {
    uint64_t total = 0;
    while (size_t n = in.source().read(buf.data(), buf.size())) total += n;
    std::printf("%llu bytes\n", static_cast<unsigned long long>(total));
    return 0;
  }
  if (mode == "tar") {
    cidrun::image::TarReader reader(in.source());
    cidrun::image::TarEntry entry;
    uint64_t entries = 0;
    uint64_t content = 0;
    while (reader.next(entry)) {
      ++entries;
      if (skip) continue;
      cidrun::Sha256 sha;
      while (size_t n = reader.read(buf.data(), buf.size())) {
        if (hash) sha.update(cidrun::ByteView(buf.data(), n));
        content += n;
      }
      if (hash) (void)sha.finish();
    }
    cidrun::drain(in.source());
    std::printf("%llu entries %llu content bytes\n", static_cast<unsigned long long>(entries),
                static_cast<unsigned long long>(content));
    return 0;
  }
  std::fprintf(stderr, "unknown mode %s\n", mode.c_str());
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const cidrun::Error& e) {
    std::fprintf(stderr, "cidrun-stream-bench: error: %s\n", e.what());
    return 1;
  }
}
