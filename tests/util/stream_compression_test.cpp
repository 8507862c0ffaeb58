#include "util/stream_compression.h"

#include <gtest/gtest.h>

#include "util/error.h"
#include "util/stream_test_support.h"

namespace cidrun {
namespace {

using stream_test::compressible_data;
using stream_test::random_data;
using stream_test::read_all;
using stream_test::sh;
using stream_test::TempDir;
using stream_test::write_bytes;

Bytes gzip_bytes(ByteView data, int level = 6) {
  MemorySink out;
  GzipSink gz(out, {.level = level});
  gz.write(data);
  gz.finish();
  return out.data();
}

Bytes zstd_bytes(ByteView data, ZstdOptions options = {}) {
  MemorySink out;
  ZstdSink z(out, options);
  // Uneven pieces, so that frames of the multi-threaded sink are cut inside a write.
  size_t step = 77777;
  for (size_t pos = 0; pos < data.size(); pos += step) {
    z.write(data.subspan(pos, std::min(step, data.size() - pos)));
  }
  z.finish();
  return out.data();
}

Bytes gunzip(ByteView compressed, size_t chunk = 65536) {
  MemorySource src(compressed);
  GzipSource gz(src);
  return read_all(gz, chunk);
}

Bytes unzstd(ByteView compressed, size_t chunk = 65536) {
  MemorySource src(compressed);
  ZstdSource z(src);
  return read_all(z, chunk);
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

const size_t kSizes[] = {0, 1, 2, 511, 512, 513, 65535, 65536, 65537, 262144 + 7, 1000003};

TEST(Gzip, RoundTripsAtManySizesAndReadSizes) {
  for (size_t size : kSizes) {
    for (bool random : {false, true}) {
      Bytes data = random ? random_data(size, 11) : compressible_data(size, 12);
      Bytes z = gzip_bytes(data);
      for (size_t chunk : {size_t{1}, size_t{4093}, size_t{1} << 20}) {
        if (chunk == 1 && size > 70000) continue;  // byte at a time: small sizes are enough
        ASSERT_EQ(gunzip(z, chunk), data) << size << " random=" << random << " chunk=" << chunk;
      }
    }
  }
}

TEST(Gzip, EveryLevelRoundTripsAndLevelsAreChecked) {
  Bytes data = compressible_data(300000, 13);
  for (int level = 0; level <= 9; ++level) EXPECT_EQ(gunzip(gzip_bytes(data, level)), data);
  MemorySink out;
  EXPECT_EQ(error_of([&] { GzipSink bad(out, {.level = 10}); }),
            "gzip: compression level 10 is not in 0-9");
}

TEST(Gzip, OutputIsDeterministicAndReadByGzip) {
  TempDir dir;
  Bytes data = compressible_data(500000, 14);
  Bytes z = gzip_bytes(data);
  EXPECT_EQ(z, gzip_bytes(data));
  write_bytes(dir / "a.gz", z);
  ASSERT_TRUE(sh("gzip -dc " + dir / "a.gz" + " > " + dir / "a"));
  EXPECT_EQ(read_file(dir / "a"), data);
}

TEST(Gzip, ReadsMultiMemberStreamsFromGzipAndPigz) {
  TempDir dir;
  Bytes a = compressible_data(200000, 15);
  Bytes b = random_data(70000, 16);
  Bytes empty;
  write_bytes(dir / "a", a);
  write_bytes(dir / "b", b);
  write_bytes(dir / "e", empty);
  // Members for a, for an empty file and for b, concatenated: one stream of a then b.
  ASSERT_TRUE(
      sh("cd " + dir.path + " && gzip -c a > m.gz && gzip -c e >> m.gz && gzip -9 -c b >> m.gz"));
  Bytes ab = a;
  ab.insert(ab.end(), b.begin(), b.end());
  EXPECT_EQ(gunzip(read_file(dir / "m.gz")), ab);
  EXPECT_EQ(gunzip(read_file(dir / "m.gz"), 1000), ab);
  // pigz cuts its input into blocks compressed on several threads (sync-flushed deflate blocks),
  // and -i makes them independent; concatenated pigz members too.
  ASSERT_TRUE(sh("cd " + dir.path +
                 " && cat a b a > aba && pigz -p 2 -b 32 -c aba > p.gz && "
                 "pigz -i -p 2 -b 32 -c b >> p.gz"));
  Bytes abab = ab;
  abab.insert(abab.end(), a.begin(), a.end());
  abab.insert(abab.end(), b.begin(), b.end());
  EXPECT_EQ(gunzip(read_file(dir / "p.gz")), abab);
}

TEST(Gzip, TruncationAtEveryOffsetIsAnError) {
  Bytes data = compressible_data(3000, 17);
  Bytes z = gzip_bytes(data);
  for (size_t cut = 0; cut < z.size(); ++cut) {
    std::string e = error_of([&] { gunzip(ByteView(z).first(cut)); });
    ASSERT_NE(e, "no error") << "cut at " << cut;
    ASSERT_TRUE(e.starts_with("gzip: ")) << e;
  }
  EXPECT_EQ(error_of([&] { gunzip(ByteView(z).first(0)); }),
            "gzip: the stream is empty (no gzip header)");
  EXPECT_EQ(error_of([&] { gunzip(ByteView(z).first(z.size() - 4)); }),
            "gzip: the stream is truncated in member 1 (at compressed byte " +
                std::to_string(z.size() - 4) + ")");
}

TEST(Gzip, CorruptBytesNeverGiveOtherData) {
  Bytes data = compressible_data(3000, 18);
  Bytes z = gzip_bytes(data);
  size_t errors = 0;
  for (size_t pos = 0; pos < z.size(); ++pos) {
    Bytes bad = z;
    bad[pos] ^= 0x41;
    std::string e;
    Bytes out;
    try {
      out = gunzip(bad);
    } catch (const Error& ex) {
      e = ex.what();
    }
    if (e.empty()) {
      // Bytes no reader checks (the header's mtime, extra flags and OS; unused bits after the
      // last deflate block) may change without changing the data.
      ASSERT_EQ(out, data) << "byte " << pos << " gave other data without an error";
    } else {
      ++errors;
    }
  }
  EXPECT_GE(errors, z.size() - 7);
  Bytes crc = z;
  crc[crc.size() - 8] ^= 1;
  EXPECT_EQ(error_of([&] { gunzip(crc); }),
            "gzip: corrupt data (incorrect data check) (at compressed byte " +
                std::to_string(z.size() - 4) + ")");
}

TEST(Gzip, DataAfterAMemberIsAnError) {
  Bytes data = compressible_data(1000, 19);
  Bytes z = gzip_bytes(data);
  for (const Bytes& tail : {Bytes{0}, Bytes(512, 0), to_bytes("garbage"), Bytes{0x1f}}) {
    Bytes bad = z;
    bad.insert(bad.end(), tail.begin(), tail.end());
    EXPECT_EQ(error_of([&] { gunzip(bad); }),
              "gzip: unexpected data after the end of member 1 (at compressed byte " +
                  std::to_string(z.size()) + "): a gzip stream must end there or start a member");
  }
  Bytes half_member = z;
  half_member.insert(half_member.end(), {0x1f, 0x8b, 8});
  EXPECT_TRUE(error_of([&] { gunzip(half_member); }).starts_with("gzip: the stream is truncated"));
  EXPECT_EQ(error_of([&] { gunzip(to_bytes("plain text")); }), "gzip: not a gzip stream");
}

TEST(Zstd, RoundTripsAtManySizesSingleAndMultiThreaded) {
  for (size_t size : kSizes) {
    for (bool random : {false, true}) {
      Bytes data = random ? random_data(size, 21) : compressible_data(size, 22);
      Bytes one = zstd_bytes(data);
      ASSERT_EQ(unzstd(one), data) << size;
      ASSERT_EQ(unzstd(one, 4093), data) << size;
      Bytes framed = zstd_bytes(data, {.level = 3, .workers = 2, .frame_bytes = 100000});
      ASSERT_EQ(unzstd(framed), data) << size;
      if (size <= 70000) {
        ASSERT_EQ(unzstd(one, 1), data) << size;
      }
    }
  }
}

TEST(Zstd, MultiThreadedOutputDoesNotDependOnWorkers) {
  Bytes data = compressible_data(2000000, 23);
  Bytes one = zstd_bytes(data, {.level = 5, .workers = 1, .frame_bytes = 300000});
  EXPECT_EQ(zstd_bytes(data, {.level = 5, .workers = 3, .frame_bytes = 300000}), one);
  EXPECT_EQ(unzstd(one), data);
  EXPECT_EQ(zstd_bytes(data, {.level = 5}), zstd_bytes(data, {.level = 5}));
}

TEST(Zstd, LevelsAreChecked) {
  MemorySink out;
  EXPECT_TRUE(error_of([&] {
                ZstdSink bad(out, {.level = 99});
              }).starts_with("zstd: compression level 99 is not in "));
  Bytes data = compressible_data(100000, 24);
  EXPECT_EQ(unzstd(zstd_bytes(data, {.level = 19})), data);
  EXPECT_EQ(unzstd(zstd_bytes(data, {.level = -5})), data);
}

TEST(Zstd, OutputIsReadByTheZstdProgram) {
  TempDir dir;
  Bytes data = compressible_data(900000, 25);
  write_bytes(dir / "one.zst", zstd_bytes(data));
  write_bytes(dir / "many.zst",
              zstd_bytes(data, {.level = 3, .workers = 2, .frame_bytes = 200000}));
  ASSERT_TRUE(sh("zstd -q -dc " + dir / "one.zst" + " > " + dir / "one"));
  ASSERT_TRUE(sh("zstd -q -dc " + dir / "many.zst" + " > " + dir / "many"));
  EXPECT_EQ(read_file(dir / "one"), data);
  EXPECT_EQ(read_file(dir / "many"), data);
}

Bytes skippable_frame(size_t payload) {
  Bytes f = {0x53, 0x2a, 0x4d, 0x18};  // magic 0x184D2A53
  for (int i = 0; i < 4; ++i) f.push_back(static_cast<uint8_t>(payload >> (8 * i)));
  Bytes junk = random_data(payload, 26);
  f.insert(f.end(), junk.begin(), junk.end());
  return f;
}

TEST(Zstd, ReadsFramesAndSkippableFramesFromTheZstdProgram) {
  TempDir dir;
  Bytes a = compressible_data(300000, 27);
  Bytes b = random_data(50000, 28);
  write_bytes(dir / "a", a);
  write_bytes(dir / "b", b);
  ASSERT_TRUE(sh("cd " + dir.path +
                 " && zstd -q -c a > f.zst && zstd -q -19 -c b >> f.zst && "
                 "zstd -q --no-check -c a >> f.zst && cat a | zstd -q -c >> f.zst"));
  Bytes f = read_file(dir / "f.zst");
  Bytes expect = a;
  for (const Bytes* part : {&b, &a, &a}) expect.insert(expect.end(), part->begin(), part->end());
  EXPECT_EQ(unzstd(f), expect);
  // Skippable frames first, between and last (as the seekable format and zstd:chunked use them).
  Bytes skips = skippable_frame(100);
  Bytes rest = read_file(dir / "f.zst");
  skips.insert(skips.end(), rest.begin(), rest.end());
  Bytes mid = skippable_frame(0);
  skips.insert(skips.end(), mid.begin(), mid.end());
  EXPECT_EQ(unzstd(skips), expect);
  // A stream of nothing but a skippable frame is a valid, empty stream.
  EXPECT_EQ(unzstd(skippable_frame(10)), Bytes());
}

TEST(Zstd, TruncationAtEveryOffsetIsAnError) {
  Bytes data = compressible_data(3000, 29);
  Bytes z = zstd_bytes(data);
  for (size_t cut = 0; cut < z.size(); ++cut) {
    std::string e = error_of([&] { unzstd(ByteView(z).first(cut)); });
    ASSERT_NE(e, "no error") << "cut at " << cut;
    ASSERT_TRUE(e.starts_with("zstd: ")) << e;
  }
  EXPECT_EQ(error_of([&] { unzstd(ByteView()); }), "zstd: the stream is empty (no frame)");
  EXPECT_EQ(
      error_of([&] { unzstd(ByteView(z).first(z.size() - 1)); }),
      "zstd: the stream is truncated (at compressed byte " + std::to_string(z.size() - 1) + ")");
}

TEST(Zstd, CorruptBytesNeverGiveOtherData) {
  Bytes data = compressible_data(3000, 30);
  Bytes z = zstd_bytes(data);
  for (size_t pos = 0; pos < z.size(); ++pos) {
    Bytes bad = z;
    bad[pos] ^= 0x41;
    Bytes out;
    bool failed = false;
    try {
      out = unzstd(bad);
    } catch (const Error&) {
      failed = true;
    }
    ASSERT_TRUE(failed || out == data) << "byte " << pos << " gave other data without an error";
  }
}

TEST(Zstd, DataAfterTheLastFrameIsAnError) {
  Bytes z = zstd_bytes(compressible_data(1000, 31));
  Bytes bad = z;
  Bytes tail = to_bytes("garbage!");
  bad.insert(bad.end(), tail.begin(), tail.end());
  EXPECT_EQ(error_of([&] { unzstd(bad); }),
            "zstd: unexpected data after the end of a frame (at compressed byte " +
                std::to_string(z.size()) + ")");
  EXPECT_EQ(error_of([&] { unzstd(to_bytes("plain text")); }), "zstd: not a zstd stream");
}

TEST(Zstd, AFrameClaimingAHugeWindowIsRefused) {
  // A frame header by hand: magic, descriptor 0 (no content size, not single-segment), window
  // descriptor exponent 21 = a 2 GiB window, then one empty last raw block.
  Bytes frame = {0x28, 0xb5, 0x2f, 0xfd, 0x00, 21 << 3, 0x01, 0x00, 0x00};
  EXPECT_EQ(error_of([&] { unzstd(frame); }),
            "zstd: a frame asks for a window larger than 128 MiB (at compressed byte 0); refused "
            "to bound memory");
  // The zstd program writes such frames with --long when it cannot know the input size.
  TempDir dir;
  write_bytes(dir / "a", compressible_data(100000, 32));
  ASSERT_TRUE(sh("cd " + dir.path +
                 " && cat a | zstd -q --long=30 -c > big.zst && "
                 "cat a | zstd -q --long=27 -c > ok.zst"));
  EXPECT_TRUE(error_of([&] {
                unzstd(read_file(dir / "big.zst"));
              }).starts_with("zstd: a frame asks for a window larger than 128 MiB"));
  EXPECT_EQ(unzstd(read_file(dir / "ok.zst")), read_file(dir / "a"));
}

TEST(Detect, OpenDecompressedRecognisesEachFormat) {
  Bytes data = compressible_data(50000, 33);
  auto check = [&](const Bytes& stored, Compression expected) {
    MemorySource src(stored);
    Decompressed d = open_decompressed(src);
    EXPECT_EQ(d.compression, expected) << compression_name(expected);
    EXPECT_EQ(read_all(*d.source, 1000), data) << compression_name(expected);
  };
  check(gzip_bytes(data), Compression::gzip);
  check(zstd_bytes(data), Compression::zstd);
  check(data, Compression::none);
  Bytes skip_first = skippable_frame(3);
  Bytes z = zstd_bytes(data);
  skip_first.insert(skip_first.end(), z.begin(), z.end());
  check(skip_first, Compression::zstd);
  for (const Bytes& tiny : {Bytes{}, Bytes{0x1f}, Bytes{0x28, 0xb5, 0x2f}}) {
    MemorySource src(tiny);
    Decompressed d = open_decompressed(src);
    EXPECT_EQ(d.compression, Compression::none);
    EXPECT_EQ(read_all(*d.source), tiny);
  }
}

TEST(Detect, OpenDecompressorByName) {
  Bytes data = compressible_data(5000, 34);
  Bytes z = zstd_bytes(data);
  MemorySource src(z);
  auto d = open_decompressor(src, Compression::zstd);
  EXPECT_EQ(read_all(*d), data);
  MemorySource wrong(z);
  auto g = open_decompressor(wrong, Compression::gzip);
  EXPECT_EQ(error_of([&] { read_all(*g); }), "gzip: not a gzip stream");
}

TEST(Fuzz, EntryPointSurvivesHostileInputs) {
  Bytes data = compressible_data(2000, 35);
  Bytes g = gzip_bytes(data);
  Bytes z = zstd_bytes(data);
  fuzz_decompressors(g);
  fuzz_decompressors(z);
  fuzz_decompressors(ByteView(g).first(g.size() / 2));
  fuzz_decompressors(Bytes{0x28, 0xb5, 0x2f, 0xfd, 0x00, 21 << 3, 0x01, 0x00, 0x00});
  fuzz_decompressors(Bytes{});
}

// Pushed bytes decode as pulled ones do, whatever the piece sizes (including output that ends
// exactly at the decoder's buffer size, which once looked like an unfinished frame).
TEST(DecompressingSink, DecodesPushedPiecesOfAnySize) {
  for (size_t n : {size_t{0}, size_t{1}, size_t{65536}, size_t{262144}, size_t{300001}}) {
    Bytes data = compressible_data(n, 3);
    for (Compression c : {Compression::zstd, Compression::gzip, Compression::none}) {
      Bytes packed = c == Compression::zstd   ? zstd_bytes(data)
                     : c == Compression::gzip ? gzip_bytes(data)
                                              : data;
      for (size_t piece : {size_t{1}, size_t{7}, size_t{4096}, size_t{1} << 20}) {
        if (piece == 1 && n > 70000) continue;  // slow and adds nothing
        MemorySink out;
        DecompressingSink d(out, c);
        for (size_t at = 0; at < packed.size(); at += piece) {
          d.write(ByteView(packed).subspan(at, std::min(piece, packed.size() - at)));
        }
        if (n == 0 && c == Compression::none) continue;
        d.finish();
        EXPECT_EQ(out.data(), data) << compression_name(c) << " " << n << " " << piece;
      }
    }
  }
}

TEST(DecompressingSink, RefusesTruncationGarbageAndExpansionPastTheLimit) {
  Bytes data = compressible_data(100000, 5);
  for (Compression c : {Compression::zstd, Compression::gzip}) {
    Bytes packed = c == Compression::zstd ? zstd_bytes(data) : gzip_bytes(data);
    {
      MemorySink out;
      DecompressingSink d(out, c);
      d.write(ByteView(packed).first(packed.size() - 3));
      EXPECT_THROW(d.finish(), Error) << compression_name(c);
    }
    {
      MemorySink out;
      DecompressingSink d(out, c);
      Bytes bad = packed;
      bad.insert(bad.end(), {'j', 'u', 'n', 'k', 0, 0, 0, 0, 0, 0, 0, 0});
      EXPECT_THROW(
          {
            d.write(bad);
            d.finish();
          },
          Error)
          << compression_name(c);
    }
    {
      MemorySink out;
      DecompressingSink d(out, c, 50000);
      EXPECT_THROW(d.write(packed), Error) << compression_name(c);
    }
    {
      MemorySink out;
      DecompressingSink d(out, c);
      EXPECT_THROW(d.finish(), Error);  // nothing at all
    }
  }
  // Two gzip members are one stream.
  Bytes two = gzip_bytes(as_bytes("abc"));
  Bytes second = gzip_bytes(as_bytes("def"));
  two.insert(two.end(), second.begin(), second.end());
  MemorySink out;
  DecompressingSink d(out, Compression::gzip);
  d.write(two);
  d.finish();
  EXPECT_EQ(as_string(out.data()), "abcdef");
}

}  // namespace
}  // namespace cidrun
