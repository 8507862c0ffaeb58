#include "image/tar.h"

#include <gtest/gtest.h>

#include <array>
#include <cstring>
#include <functional>
#include <random>

#include "util/error.h"

namespace cidrun::image {
namespace {

Bytes random_bytes(size_t n, unsigned seed) {
  std::mt19937_64 rng(seed);
  Bytes b(n);
  for (auto& x : b) x = static_cast<uint8_t>(rng());
  return b;
}

struct Item {
  TarEntry entry;
  Bytes content;
};

Bytes write_archive(const std::vector<Item>& items) {
  MemorySink sink;
  TarWriter w(sink);
  for (const Item& it : items) {
    w.add(it.entry);
    // Two writes, so that content arrives in pieces.
    ByteView c(it.content);
    w.write(c.first(c.size() / 3));
    w.write(c.subspan(c.size() / 3));
  }
  w.finish();
  EXPECT_TRUE(sink.finished());
  return sink.data();
}

std::vector<Item> read_archive(ByteView archive, size_t chunk = 65536) {
  MemorySource src(archive);
  TarReader r(src);
  std::vector<Item> items;
  Item it;
  Bytes buf(chunk);
  while (r.next(it.entry)) {
    it.content.clear();
    EXPECT_EQ(r.remaining(), it.entry.size);
    while (size_t n = r.read(buf.data(), buf.size())) {
      it.content.insert(it.content.end(), buf.data(), buf.data() + n);
    }
    items.push_back(it);
  }
  return items;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

std::string read_error(ByteView archive) {
  return error_of([&] { read_archive(archive); });
}

TarEntry file(std::string path, uint64_t size) {
  TarEntry e;
  e.path = std::move(path);
  e.type = TarEntryType::regular;
  e.mode = 0644;
  e.size = size;
  e.mtime_sec = 1700000000;
  return e;
}

TarEntry dir(std::string path) {
  TarEntry e;
  e.path = std::move(path);
  e.type = TarEntryType::directory;
  e.mode = 0755;
  e.mtime_sec = 1700000000;
  return e;
}

std::vector<Item> rich_items() {
  std::vector<Item> items;
  TarEntry root = dir("");
  root.mode = 01777;
  items.push_back({root, {}});
  items.push_back({dir("etc"), {}});
  for (size_t size : {0, 1, 511, 512, 513, 100000}) {
    TarEntry e = file("etc/file" + std::to_string(size), size);
    items.push_back({e, random_bytes(size, static_cast<unsigned>(size))});
  }
  TarEntry owned = file("etc/shadow", 5);
  owned.mode = 0640;
  owned.uid = 0;
  owned.gid = 42;
  owned.uname = "root";
  owned.gname = "shadow";
  items.push_back({owned, to_bytes("x:1:\n")});
  TarEntry suid = file("usr/bin/passwd", 3);
  suid.mode = 04755;
  suid.mtime_nsec = 123456789;
  suid.xattrs["security.capability"] = Bytes{1, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
  suid.xattrs["user.note"] = to_bytes(std::string("a\0b\nc=d", 7));
  items.push_back({suid, to_bytes("elf")});
  // Names: exactly 100 bytes, a split into prefix and name, and ones that need PAX.
  items.push_back({file(std::string(100, 'a'), 0), {}});
  items.push_back({file(std::string(150, 'b') + "/" + std::string(99, 'c'), 2), to_bytes("hi")});
  items.push_back({file(std::string(200, 'd') + "/" + std::string(200, 'e'), 0), {}});
  items.push_back({file(std::string(101, 'f'), 0), {}});
  std::string deep;
  while (deep.size() < kMaxPathBytes - 300) deep += std::string(250, 'g') + "/";
  items.push_back({dir(deep.substr(0, deep.size() - 1)), {}});
  items.push_back({file("caf\xc3\xa9", 0), {}});  // UTF-8, fits ustar
  items.push_back({file(std::string(120, 'h') + "\xff\xfe", 1), to_bytes("z")});  // not UTF-8
  TarEntry big_ids = file("ids", 0);
  big_ids.uid = 3000000;
  big_ids.gid = 4294967294u;
  big_ids.uname = std::string(40, 'u');
  big_ids.gname = std::string(32, 'g');  // fills the field: no NUL
  items.push_back({big_ids, {}});
  TarEntry old = file("old", 0);
  old.mtime_sec = -2;
  old.mtime_nsec = 750000000;  // -1.25 s
  items.push_back({old, {}});
  TarEntry epoch = file("epoch-minus-one", 0);
  epoch.mtime_sec = -1;
  items.push_back({epoch, {}});
  TarEntry future = file("future", 0);
  future.mtime_sec = int64_t{1} << 40;
  items.push_back({future, {}});
  TarEntry link;
  link.path = "etc/link";
  link.type = TarEntryType::symlink;
  link.mode = 0777;
  link.link_target = "../usr/bin/passwd";
  items.push_back({link, {}});
  TarEntry long_link = link;
  long_link.path = "etc/longlink";
  long_link.link_target = "/" + std::string(300, 'l');
  items.push_back({long_link, {}});
  TarEntry hard;
  hard.path = "etc/hard";
  hard.type = TarEntryType::hard_link;
  hard.mode = 0640;
  hard.link_target = "etc/shadow";
  items.push_back({hard, {}});
  TarEntry hard_long = hard;
  hard_long.path = "hard_long";
  hard_long.link_target = std::string(200, 'd') + "/" + std::string(200, 'e');
  items.push_back({hard_long, {}});
  TarEntry null_dev;
  null_dev.path = "dev/null";
  null_dev.type = TarEntryType::char_device;
  null_dev.mode = 0666;
  null_dev.dev_major = 1;
  null_dev.dev_minor = 3;
  items.push_back({null_dev, {}});
  TarEntry loop = null_dev;
  loop.path = "dev/loop";
  loop.type = TarEntryType::block_device;
  loop.dev_major = 4095;
  loop.dev_minor = 1048575;
  items.push_back({loop, {}});
  TarEntry fifo;
  fifo.path = "run/fifo";
  fifo.type = TarEntryType::fifo;
  fifo.mode = 0600;
  items.push_back({fifo, {}});
  TarEntry opaque = dir("var/lib");
  opaque.xattrs["trusted.overlay.opaque"] = to_bytes("y");
  items.push_back({opaque, {}});
  return items;
}

TEST(Tar, RoundTripKeepsEveryField) {
  std::vector<Item> items = rich_items();
  Bytes archive = write_archive(items);
  std::vector<Item> back = read_archive(archive);
  ASSERT_EQ(back.size(), items.size());
  for (size_t i = 0; i < items.size(); ++i) {
    EXPECT_EQ(back[i].entry, items[i].entry) << "entry " << i << " " << items[i].entry.path;
    EXPECT_EQ(back[i].content, items[i].content) << items[i].entry.path;
  }
  // Read a byte at a time too.
  back = read_archive(archive, 1);
  ASSERT_EQ(back.size(), items.size());
  EXPECT_EQ(back.back().entry, items.back().entry);
}

TEST(Tar, OutputIsDeterministicAndMinimal) {
  Bytes a = write_archive(rich_items());
  EXPECT_EQ(a, write_archive(rich_items()));
  EXPECT_EQ(a.size() % 512, 0u);
  // A plain file needs no PAX header: one header block, content, padding, two end blocks.
  Bytes plain = write_archive({{file("a", 3), to_bytes("abc")}});
  ASSERT_EQ(plain.size(), 4u * 512);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(plain.data()) + 257, 8), std::string("ustar\0"
                                                                                           "00",
                                                                                           8));
  EXPECT_TRUE(std::all_of(plain.begin() + 1024, plain.end(), [](uint8_t b) { return b == 0; }));
  // The PAX header's name does not depend on time or process.
  Bytes pax = write_archive({{file(std::string(120, 'x'), 0), {}}});
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(pax.data()), 100),
            "PaxHeaders/" + std::string(89, 'x'));
}

TEST(Tar, HugeSizeGoesThroughPax) {
  // Only the header: the reader is stopped after next().
  MemorySink sink;
  TarWriter w(sink);
  TarEntry e = file("huge", (uint64_t{9} << 30) + 5);
  w.add(e);
  MemorySource src(sink.data());
  TarReader r(src);
  TarEntry got;
  ASSERT_TRUE(r.next(got));
  EXPECT_EQ(got.size, e.size);
  EXPECT_EQ(r.remaining(), e.size);
}

TEST(Tar, WriterRefusesWhatItCannotWriteFaithfully) {
  auto add_error = [](const TarEntry& e) {
    return error_of([&] {
      MemorySink sink;
      TarWriter w(sink);
      w.add(e);
    });
  };
  EXPECT_EQ(add_error(file("a/../b", 0)),
            "tar: writer: entry 'a/../b': the path 'a/../b' has a '..' component");
  EXPECT_EQ(add_error(file("./a", 0)),
            "tar: writer: entry './a': the path is not normalised (expected 'a')");
  EXPECT_EQ(add_error(file("", 0)), "tar: writer: entry '': the root must be a directory");
  TarEntry d = dir("d");
  d.size = 5;
  EXPECT_EQ(add_error(d), "tar: writer: entry 'd': a directory cannot have content");
  TarEntry m = file("m", 0);
  m.mode = 0100644;
  EXPECT_EQ(add_error(m), "tar: writer: entry 'm': mode bits outside 07777");
  TarEntry x = file("x", 0);
  x.xattrs["user.a=b"] = {};
  EXPECT_EQ(add_error(x),
            "tar: writer: entry 'x': xattr name 'user.a=b' cannot be written (empty, '=' or NUL)");
  TarEntry h;
  h.path = "h";
  h.type = TarEntryType::hard_link;
  EXPECT_EQ(add_error(h), "tar: writer: entry 'h': no link target");

  MemorySink sink;
  TarWriter w(sink);
  w.add(file("f", 3));
  EXPECT_EQ(error_of([&] { w.write(to_bytes("abcd")); }),
            "tar: writer: more content than the 3 bytes left of 'f'");
  w.write(to_bytes("ab"));
  EXPECT_EQ(error_of([&] { w.finish(); }),
            "tar: writer: 1 bytes of the content of 'f' were not written");
}

// ---- hand-made headers, for what our writer never produces -------------------------------------

struct Raw {
  std::array<uint8_t, 512> b{};
  Raw(std::string_view name, char type, uint64_t size = 0) {
    set(0, name);
    set(100, "0000644");
    set(108, "0000000");
    set(116, "0000000");
    set_size(size);
    set(136, "00000000000");
    b[156] = static_cast<uint8_t>(type);
    set(257, std::string_view("ustar\0"
                              "00",
                              8));
  }
  Raw& set(size_t off, std::string_view s) {
    std::memcpy(b.data() + off, s.data(), s.size());
    return *this;
  }
  Raw& set_size(uint64_t size) {
    char text[16];
    std::snprintf(text, sizeof text, "%011llo", static_cast<unsigned long long>(size));
    return set(124, std::string_view(text, 11));
  }
  // The checksum over the block as it is now; call last.
  Bytes bytes(bool fix_checksum = true) {
    if (fix_checksum) {
      std::memset(b.data() + 148, ' ', 8);
      unsigned sum = 0;
      for (uint8_t c : b) sum += c;
      char text[8];
      std::snprintf(text, sizeof text, "%06o", sum);
      std::memcpy(b.data() + 148, text, 7);
    }
    return Bytes(b.begin(), b.end());
  }
};

// GNU's base-256 form of a number: 0x80, then the value big-endian.
std::string base256(uint64_t v, size_t size) {
  std::string s(size, '\0');
  for (size_t i = size; i-- > 1;) {
    s[i] = static_cast<char>(v & 0xff);
    v >>= 8;
  }
  s[0] = static_cast<char>(0x80);
  return s;
}

Bytes cat(std::initializer_list<Bytes> parts) {
  Bytes out;
  for (const Bytes& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

Bytes padded(std::string_view data) {
  Bytes b = to_bytes(data);
  b.resize((b.size() + 511) / 512 * 512, 0);
  return b;
}

Bytes end_blocks() {
  return Bytes(1024, 0);
}

Bytes pax_header(std::string_view records, char type = 'x') {
  return cat({Raw("PaxHeaders/x", type, records.size()).bytes(), padded(records)});
}

std::string record(std::string_view key, std::string_view value) {
  size_t rest = key.size() + value.size() + 3;
  size_t total = rest + std::to_string(rest).size();
  if (std::to_string(total).size() != std::to_string(rest).size()) ++total;
  return std::to_string(total) + " " + std::string(key) + "=" + std::string(value) + "\n";
}

TEST(TarHostile, ChecksumMismatch) {
  Raw r("a", '0');
  Bytes h = r.bytes();
  h[0] = 'b';
  EXPECT_EQ(read_error(cat({h, end_blocks()})),
            "tar: header at byte 0: header checksum mismatch (stored 3134, computed 3135): not a "
            "tar header, or a corrupt one");
  // A signed sum (high bytes counted negative, as old writers did) is accepted.
  Raw high("\xe9t\xe9", '0');
  Bytes hb = high.bytes(false);
  std::memset(hb.data() + 148, ' ', 8);
  int sum = 0;
  for (uint8_t c : hb) sum += static_cast<int8_t>(c);
  char text[8];
  std::snprintf(text, sizeof text, "%06o", sum);
  std::memcpy(hb.data() + 148, text, 7);
  EXPECT_EQ(read_archive(cat({hb, end_blocks()})).at(0).entry.path, "\xe9t\xe9");
}

TEST(TarHostile, NegativeAbsurdAndTruncatedSizes) {
  Raw neg("a", '0');
  neg.set(124, std::string(12, '\xff'));
  EXPECT_EQ(read_error(cat({neg.bytes(), end_blocks()})),
            "tar: header at byte 0: negative size -1");
  Raw absurd("a", '0');
  absurd.set(124, base256((uint64_t{1} << 40) + 1, 12));
  EXPECT_EQ(read_error(cat({absurd.bytes(), end_blocks()})),
            "tar: header at byte 0: size 1099511627777 is above the limit of 1099511627776");
  EXPECT_EQ(read_error(cat({pax_header(record("size", "1099511627777")), Raw("a", '0').bytes(),
                            end_blocks()})),
            "tar: entry 'a' (header at byte 1024): PAX record size=1099511627777 is above the "
            "limit of 1099511627776");
  // Claims more than follows.
  Bytes big = cat({Raw("a", '0', 5000).bytes(), Bytes(1000, 'x')});
  EXPECT_EQ(read_error(big),
            "tar: the archive is truncated in the content of 'a' (at byte 1512, 4000 bytes "
            "missing)");
  // Skipped rather than read: same answer.
  EXPECT_EQ(error_of([&] {
              MemorySource src(big);
              TarReader r(src);
              TarEntry e;
              while (r.next(e)) {
              }
            }),
            "tar: the archive is truncated in the content of 'a' (at byte 1512, 4000 bytes "
            "missing)");
  Bytes not_number = Raw("a", '0').set(124, "12x45678901").bytes();
  EXPECT_EQ(read_error(cat({not_number, end_blocks()})),
            "tar: header at byte 0: the size field is not an octal number: '12x45678901\\x00'");
}

TEST(TarHostile, TruncationAnywhereIsAnError) {
  Bytes archive = write_archive(
      {{file(std::string(150, 'p'), 700), random_bytes(700, 1)}, {file("b", 1), to_bytes("b")}});
  // Every cut inside a header, a PAX header, content or padding fails; a cut at a header
  // boundary ends the archive cleanly (as Go's archive/tar reads it).
  // PAX header 0-1023, header 1024, content 1536-2235, padding to 2560, header 2560, content
  // 3072, end blocks 3584 and 4096.
  ASSERT_EQ(archive.size(), 4608u);
  std::vector<size_t> boundaries = {0, 2560, 3584, 4096, 4608};
  for (size_t cut = 0; cut <= archive.size(); ++cut) {
    std::string e = read_error(ByteView(archive).first(cut));
    bool boundary = std::find(boundaries.begin(), boundaries.end(), cut) != boundaries.end();
    if (boundary) {
      ASSERT_EQ(e, "no error") << cut;
    } else if (cut == 1024) {
      ASSERT_EQ(e,
                "tar: the archive ends (at byte 1024) after a PAX or GNU long-name header with "
                "no entry after it");
    } else {
      ASSERT_TRUE(e.starts_with("tar: the archive is truncated ")) << cut << ": " << e;
    }
  }
  EXPECT_EQ(read_error(ByteView(archive).first(100)),
            "tar: the archive is truncated in the header at byte 0");
  EXPECT_EQ(read_error(ByteView(archive).first(512 + 10)),
            "tar: the archive is truncated in a PAX header (at byte 522)");
  EXPECT_EQ(read_error(ByteView(archive).first(512 * 3 + 100)),
            "tar: the archive is truncated in the content of '" + std::string(150, 'p') +
                "' (at byte 1636, 600 bytes missing)");
  EXPECT_EQ(read_error(ByteView(archive).first(2550)),
            "tar: the archive is truncated in the padding after '" + std::string(150, 'p') +
                "' (at byte 2550, 10 bytes missing)");
}

TEST(TarHostile, EndOfArchive) {
  Bytes one = Raw("a", '0', 0).bytes();
  EXPECT_EQ(read_archive(one).size(), 1u);                                         // no zero blocks
  EXPECT_EQ(read_archive(cat({one, Bytes(512, 0)})).size(), 1u);                   // one
  EXPECT_EQ(read_archive(cat({one, end_blocks(), to_bytes("junk")})).size(), 1u);  // after the end
  EXPECT_EQ(read_archive(Bytes()).size(), 0u);
  EXPECT_EQ(read_error(cat({one, Bytes(512, 0), one})),
            "tar: a zero block at byte 512 is followed by a header: the end of the archive is "
            "ambiguous");
  EXPECT_EQ(read_error(cat({one, Bytes(512, 0), Bytes(10, 0)})),
            "tar: the archive is truncated after the zero block at byte 512");
  // Nothing after the end is read: the caller drains the source.
  Bytes tail = cat({one, end_blocks(), Bytes(5000, 7)});
  MemorySource src(tail);
  TarReader r(src);
  TarEntry e;
  while (r.next(e)) {
  }
  EXPECT_FALSE(r.next(e));
  EXPECT_EQ(r.offset(), 1536u);
  EXPECT_EQ(drain(src), 5000u);
}

TEST(TarHostile, PaxRecordsAreChecked) {
  auto with_pax = [](std::string_view records) {
    return read_error(cat({pax_header(records), Raw("a", '0').bytes(), end_blocks()}));
  };
  EXPECT_EQ(with_pax("99 path=x\n"),
            "tar: header at byte 0: malformed PAX record at byte 0 (bad length)");
  EXPECT_EQ(with_pax("3 a=\n"),
            "tar: header at byte 0: malformed PAX record at byte 0 (bad length)");
  EXPECT_EQ(with_pax("10 path=xy."),
            "tar: header at byte 0: malformed PAX record at byte 0 (no newline at its end)");
  EXPECT_EQ(with_pax("x9 path=x\n"), "tar: header at byte 0: malformed PAX record at byte 0");
  EXPECT_EQ(with_pax("9 pathx=\n" + record("path", "x")),
            "no error");  // an unknown key is ignored
  EXPECT_EQ(with_pax("9 =value\n"),
            "tar: header at byte 0: malformed PAX record at byte 0 (no key)");
  EXPECT_EQ(with_pax(record("path", std::string("a\0b", 3))),
            "tar: header at byte 0: PAX record path holds a NUL byte");
  EXPECT_EQ(with_pax(record("uid", "12a")),
            "tar: entry 'a' (header at byte 1024): PAX record uid='12a' is not a number");
  EXPECT_EQ(with_pax(record("uid", "4294967296")),
            "tar: entry 'a' (header at byte 1024): PAX record uid=4294967296 is above the limit "
            "of 4294967295");
  EXPECT_EQ(with_pax(record("mtime", "1.2.3")),
            "tar: entry 'a' (header at byte 1024): PAX record mtime='1.2.3' is not a decimal "
            "time");
  // A PAX header over 1 MiB is refused before it is read.
  Bytes huge = Raw("PaxHeaders/x", 'x', (1 << 20) + 1).bytes();
  EXPECT_EQ(read_error(huge),
            "tar: header at byte 0: a PAX header of 1048577 bytes is over the limit of 1048576");
  EXPECT_EQ(read_error(cat({pax_header(record("path", "b")), pax_header(record("path", "c")),
                            Raw("a", '0').bytes()})),
            "tar: header at byte 1024: two PAX headers for one entry");
  EXPECT_EQ(read_error(cat({pax_header(record("path", "b")), end_blocks()})),
            "tar: the archive ends (at byte 1024) after a PAX or GNU long-name header with no "
            "entry after it");
}

TEST(TarHostile, PaxValuesApply) {
  std::string records = record("path", "long/name") + record("linkpath", "t") +
                        record("uid", "5000000") + record("gid", "7") + record("uname", "u") +
                        record("gname", "g") + record("mtime", "-1.25") +
                        record("SCHILY.xattr.user.a", std::string("\0\n", 2)) +
                        record("LIBARCHIVE.xattr.user.b%3Dc", "aGk") + record("atime", "5.5") +
                        record("SCHILY.acl.access", "user::rw-") + record("uid", "5000001");
  auto items = read_archive(cat({pax_header(records), Raw("a", '2').bytes(), end_blocks()}));
  ASSERT_EQ(items.size(), 1u);
  const TarEntry& e = items[0].entry;
  EXPECT_EQ(e.path, "long/name");
  EXPECT_EQ(e.type, TarEntryType::symlink);
  EXPECT_EQ(e.link_target, "t");
  EXPECT_EQ(e.uid, 5000001u);  // the last record wins
  EXPECT_EQ(e.gid, 7u);
  EXPECT_EQ(e.uname, "u");
  EXPECT_EQ(e.gname, "g");
  EXPECT_EQ(e.mtime_sec, -2);
  EXPECT_EQ(e.mtime_nsec, 750000000u);
  ASSERT_EQ(e.xattrs.size(), 2u);
  EXPECT_EQ(e.xattrs.at("user.a"), Bytes({0, '\n'}));
  EXPECT_EQ(e.xattrs.at("user.b=c"), to_bytes("hi"));
  for (auto [text, sec, nsec] : {std::tuple{"1.5", 1, 500000000},
                                 {"1.", 1, 0},
                                 {"7.1234567891", 7, 123456789},
                                 {"-0.5", -1, 500000000},
                                 {"-3", -3, 0}}) {
    auto t = read_archive(cat({pax_header(record("mtime", text)), Raw("a", '0').bytes()}));
    EXPECT_EQ(t.at(0).entry.mtime_sec, sec) << text;
    EXPECT_EQ(t.at(0).entry.mtime_nsec, static_cast<uint32_t>(nsec)) << text;
  }
  EXPECT_EQ(read_error(cat({pax_header(record("SCHILY.xattr.user.a", "x") +
                                       record("LIBARCHIVE.xattr.user.a", "eQ==")),
                            Raw("a", '0').bytes()})),
            "tar: entry 'a' (header at byte 1024): xattr 'user.a' has different values in its "
            "SCHILY and LIBARCHIVE records");
}

TEST(TarHostile, GlobalHeaders) {
  // git archive's comment is harmless.
  auto ok = read_archive(
      cat({pax_header(record("comment", "deadbeef"), 'g'), Raw("a", '0').bytes(), end_blocks()}));
  EXPECT_EQ(ok.size(), 1u);
  EXPECT_EQ(read_error(cat({pax_header(record("uid", "0"), 'g'), Raw("a", '0').bytes()})),
            "tar: header at byte 0: a global PAX header sets 'uid': refused, since readers "
            "disagree on it (GNU tar applies it to later entries, Go's archive/tar and containerd "
            "ignore it)");
}

TEST(TarHostile, Paths) {
  auto named = [](std::string_view name, char type = '0') {
    return read_error(cat({Raw(name, type).bytes(), end_blocks()}));
  };
  EXPECT_EQ(named("../etc/passwd"),
            "tar: entry '../etc/passwd' (header at byte 0): the path '../etc/passwd' has a '..' "
            "component");
  EXPECT_EQ(named("a/b/../../.."),
            "tar: entry 'a/b/../../..' (header at byte 0): the path "
            "'a/b/../../..' has a '..' component");
  EXPECT_EQ(named("./", '0'),
            "tar: entry './' (header at byte 0): a regular file with a "
            "directory's name");
  EXPECT_EQ(named(".", '0'),
            "tar: entry '.' (header at byte 0): the root is a regular file, not "
            "a directory");
  Bytes h = Raw("l", '1').set(157, "../../x").bytes();
  EXPECT_EQ(read_error(cat({h, end_blocks()})),
            "tar: entry 'l' (header at byte 0): the hard link target '../../x' has a '..' "
            "component");
  auto items = read_archive(cat({Raw("/./a//b/./c/", '5').bytes(), Raw("./", '5').bytes(),
                                 Raw("/", '5').bytes(), Raw("h", '1').set(157, "./a//b").bytes(),
                                 Raw("s", '2').set(157, "../../x//y").bytes(), end_blocks()}));
  ASSERT_EQ(items.size(), 5u);
  EXPECT_EQ(items[0].entry.path, "a/b/c");
  EXPECT_EQ(items[1].entry.path, "");
  EXPECT_EQ(items[2].entry.path, "");
  EXPECT_EQ(items[3].entry.link_target, "a/b");
  EXPECT_EQ(items[4].entry.link_target, "../../x//y");  // symlink targets are verbatim
  std::string too_long(kMaxPathBytes + 1, 'n');
  EXPECT_EQ(read_error(cat({pax_header(record("path", too_long)), Raw("a", '0').bytes()})),
            "tar: entry '" + std::string(160, 'n') +
                "...' (header at byte 5120): the path of 4096 bytes is longer than 4095");
  Bytes long_name = cat({Raw("././@LongLink", 'L', 5000).bytes(), padded(std::string(5000, 'q'))});
  EXPECT_EQ(read_error(long_name),
            "tar: header at byte 0: a GNU long name of 5000 bytes is over the limit of 4096");
}

TEST(TarHostile, GnuLongNamesAndConflicts) {
  Bytes ln = cat({Raw("././@LongLink", 'L', 201).bytes(), padded(std::string(200, 'n') + '\0')});
  Bytes lk = cat({Raw("././@LongLink", 'K', 150).bytes(), padded(std::string(150, 'k'))});
  auto items = read_archive(cat({ln, lk, Raw("short", '2').bytes(), end_blocks()}));
  ASSERT_EQ(items.size(), 1u);
  EXPECT_EQ(items[0].entry.path, std::string(200, 'n'));
  EXPECT_EQ(items[0].entry.link_target, std::string(150, 'k'));
  EXPECT_EQ(read_error(cat({ln, ln, Raw("x", '0').bytes()})),
            "tar: header at byte 1024: two GNU long names for one entry");
  EXPECT_EQ(read_error(cat({ln, pax_header(record("path", "p")), Raw("x", '0').bytes()})),
            "tar: entry '" + std::string(160, 'n') +
                "...' (header at byte 2048): both a GNU long name and a PAX path");
}

TEST(TarHostile, TypesAndSizes) {
  EXPECT_EQ(read_error(cat({Raw("l", '1', 10).bytes(), padded("0123456789")})),
            "tar: entry 'l' (header at byte 0): a hard link with a size of 10 (readers disagree "
            "on whether content follows it)");
  EXPECT_EQ(read_error(cat({Raw("s", 'S').bytes()})),
            "tar: entry 's' (header at byte 0): a GNU sparse file (type 'S'): sparse files are "
            "not supported");
  EXPECT_EQ(read_error(cat({pax_header(record("GNU.sparse.major", "1")), Raw("s", '0').bytes()})),
            "tar: entry 's' (header at byte 1024): a GNU sparse file (PAX record "
            "GNU.sparse.major): sparse files are not supported");
  EXPECT_EQ(read_error(Raw("v", 'V').bytes()),
            "tar: entry 'v' (header at byte 0): a GNU volume label (type 'V') is not supported");
  EXPECT_EQ(read_error(Raw("z", 'Z').bytes()),
            "tar: entry 'z' (header at byte 0): unsupported entry type 'Z'");
  // A directory's size field is ignored: no content follows it in any reader.
  auto items = read_archive(
      cat({Raw("d", '5', 4096).bytes(), Raw("f", '7', 1).bytes(), padded("x"), end_blocks()}));
  ASSERT_EQ(items.size(), 2u);
  EXPECT_EQ(items[0].entry.type, TarEntryType::directory);
  EXPECT_EQ(items[0].entry.size, 0u);
  EXPECT_EQ(items[1].entry.type, TarEntryType::regular);  // contiguous file
  EXPECT_EQ(items[1].content, to_bytes("x"));
}

TEST(TarHostile, OldFormatsAndNumbers) {
  // V7: no magic; uname and devices are not read; a '\0' entry named "x/" is a directory.
  Raw v7("dir/", '\0');
  v7.set(257, std::string(8, '\0')).set(265, "ignored");
  // GNU: base-256 uid and a negative base-256 mtime.
  Raw gnu("g", '0');
  gnu.set(257, std::string_view("ustar  \0", 8)).set(265, "user");
  Bytes uid(8, 0);
  uid[0] = 0x80;
  uid[4] = 0x12;
  uid[7] = 0x34;
  gnu.set(108, as_string(uid));
  gnu.set(136, std::string(11, '\xff') + "\xfe");  // -2
  // star: a 131-byte prefix and the "tar\0" trailer.
  Raw star("name", '0');
  star.set(345, "pre/fix")
      .set(476, "garbage in star's atime")
      .set(508, std::string_view("tar\0", 4));
  // Octal fields with leading spaces and a space terminator, as old writers wrote them.
  Raw spaced("s", '0');
  spaced.set(100, "   755 ").set(108, std::string_view(" 1750\0\0\0", 8));
  auto items =
      read_archive(cat({v7.bytes(), gnu.bytes(), star.bytes(), spaced.bytes(), end_blocks()}));
  ASSERT_EQ(items.size(), 4u);
  EXPECT_EQ(items[0].entry.type, TarEntryType::directory);
  EXPECT_EQ(items[0].entry.path, "dir");
  EXPECT_EQ(items[0].entry.uname, "");
  EXPECT_EQ(items[1].entry.uid, 0x12000034u);
  EXPECT_EQ(items[1].entry.mtime_sec, -2);
  EXPECT_EQ(items[1].entry.uname, "user");
  EXPECT_EQ(items[2].entry.path, "pre/fix/name");
  EXPECT_EQ(items[3].entry.mode, 0755u);
  EXPECT_EQ(items[3].entry.uid, 01750u);
  Raw bad_uid("u", '0');
  bad_uid.set(108, "9999999");
  EXPECT_EQ(
      read_error(cat({bad_uid.bytes(), end_blocks()})),
      "tar: entry 'u' (header at byte 0): the uid field is not an octal number: '9999999\\x00'");
}

TEST(TarReader, SkipsUnreadContentAndReadsInPieces) {
  std::vector<Item> items;
  items.reserve(5);
  for (int i = 0; i < 5; ++i) {
    items.push_back({file("f" + std::to_string(i), 3000 + i), random_bytes(3000 + i, i)});
  }
  Bytes archive = write_archive(items);
  MemorySource src(archive);
  TarReader r(src);
  TarEntry e;
  ASSERT_TRUE(r.next(e));
  uint8_t buf[100];
  EXPECT_EQ(r.read(buf, 100), 100u);  // part of f0 read, the rest skipped
  ASSERT_TRUE(r.next(e));
  EXPECT_EQ(e.path, "f1");
  ASSERT_TRUE(r.next(e));  // f1 skipped whole
  EXPECT_EQ(e.path, "f2");
  Bytes got(e.size);
  size_t n = 0;
  while (size_t k = r.read(got.data() + n, 7)) n += k;
  EXPECT_EQ(got, items[2].content);
  EXPECT_EQ(r.read(buf, 100), 0u);
  ASSERT_TRUE(r.next(e));
  ASSERT_TRUE(r.next(e));
  EXPECT_FALSE(r.next(e));
  EXPECT_FALSE(r.next(e));
}

TEST(TarFuzz, EntryPointSurvivesHostileInputs) {
  Bytes archive = write_archive(rich_items());
  fuzz_tar_reader(archive);
  for (size_t cut : {size_t{0}, size_t{100}, size_t{513}, archive.size() / 2}) {
    fuzz_tar_reader(ByteView(archive).first(cut));
  }
  Bytes flipped = archive;
  for (size_t i = 0; i < flipped.size(); i += 97) flipped[i] ^= 0x5a;
  fuzz_tar_reader(flipped);
}

}  // namespace
}  // namespace cidrun::image
