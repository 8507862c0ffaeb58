// The tar codec against the two other readers/writers on every machine: GNU tar (which writes
// pax, gnu, ustar and v7 archives and extracts with xattrs, owners, devices and nanosecond
// times) and Python's tarfile. Archives made by them are read by us and compared with the
// filesystem they came from and with what tarfile reads; archives made by us are extracted by
// GNU tar and read by tarfile, and compared with what we wrote. Needs root (device nodes,
// owners, trusted.* xattrs), as CI is.
#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "image/tar.h"
#include "util/error.h"
#include "util/stream_test_support.h"

namespace cidrun::image {
namespace {

using stream_test::random_data;
using stream_test::sh;
using stream_test::TempDir;
using stream_test::write_bytes;

struct Read {
  TarEntry entry;
  std::string sha256;  // hex, regular files only
};

std::vector<Read> read_ours(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) throw_errno(path);
  FdSource src(fd.get(), path);
  TarReader reader(src);
  std::vector<Read> out;
  Read r;
  Bytes buf(1 << 16);
  while (reader.next(r.entry)) {
    Sha256 h;
    while (size_t n = reader.read(buf.data(), buf.size())) h.update(ByteView(buf.data(), n));
    r.sha256 = r.entry.type == TarEntryType::regular ? to_hex(h.finish()) : "";
    out.push_back(r);
  }
  return out;
}

std::string normalize(std::string_view raw) {
  std::string out;
  size_t i = 0;
  while (i <= raw.size()) {
    size_t j = std::min(raw.find('/', i), raw.size());
    std::string_view part = raw.substr(i, j - i);
    if (!part.empty() && part != ".") {
      if (!out.empty()) out += '/';
      out += part;
    }
    i = j + 1;
  }
  return out;
}

std::string unhex(const nlohmann::json& j) {
  Bytes b = from_hex(j.get<std::string>());
  return std::string(as_string(b));
}

TarEntryType python_type(const std::string& t) {
  switch (t.at(0)) {
    case '0':
    case '\0':
    case '7':
      return TarEntryType::regular;
    case '1':
      return TarEntryType::hard_link;
    case '2':
      return TarEntryType::symlink;
    case '3':
      return TarEntryType::char_device;
    case '4':
      return TarEntryType::block_device;
    case '5':
      return TarEntryType::directory;
    case '6':
      return TarEntryType::fifo;
    default:
      throw Error("python type " + t);
  }
}

// What Python's tarfile reads from the archive, field by field beside what we read.
void expect_python_agrees(const std::string& archive, const std::vector<Read>& ours) {
  TempDir tmp;
  std::string out = tmp / "dump.json";
  ASSERT_TRUE(
      sh("python3 " CIDRUN_SOURCE_DIR "/tests/image/tar_dump.py '" + archive + "' > " + out));
  auto dump = nlohmann::json::parse(as_string(read_file(out)));
  ASSERT_EQ(dump.size(), ours.size());
  for (size_t i = 0; i < ours.size(); ++i) {
    const TarEntry& e = ours[i].entry;
    const auto& p = dump[i];
    SCOPED_TRACE("entry " + std::to_string(i) + " " + e.path);
    EXPECT_EQ(normalize(unhex(p["name"])), e.path);
    TarEntryType type = python_type(p["type"]);
    EXPECT_EQ(type, e.type);
    EXPECT_EQ(p["mode"].get<uint32_t>() & 07777, e.mode);
    EXPECT_EQ(p["uid"].get<uint32_t>(), e.uid);
    EXPECT_EQ(p["gid"].get<uint32_t>(), e.gid);
    EXPECT_EQ(unhex(p["uname"]), e.uname);
    EXPECT_EQ(unhex(p["gname"]), e.gname);
    EXPECT_EQ(p["mtime_sec"].get<int64_t>(), e.mtime_sec);
    EXPECT_EQ(p["mtime_nsec"].get<uint32_t>(), e.mtime_nsec);
    if (type == TarEntryType::regular) {
      EXPECT_EQ(p["size"].get<uint64_t>(), e.size);
      EXPECT_EQ(p["sha256"].get<std::string>(), ours[i].sha256);
    }
    if (type == TarEntryType::symlink) {
      EXPECT_EQ(unhex(p["linkname"]), e.link_target);
    }
    if (type == TarEntryType::hard_link) {
      EXPECT_EQ(normalize(unhex(p["linkname"])), e.link_target);
    }
    if (type == TarEntryType::char_device || type == TarEntryType::block_device) {
      EXPECT_EQ(p["devmajor"].get<uint32_t>(), e.dev_major);
      EXPECT_EQ(p["devminor"].get<uint32_t>(), e.dev_minor);
    }
    std::map<std::string, Bytes> xattrs;
    for (const auto& [k, v] : p["xattrs"].items())
      xattrs[unhex(k)] = from_hex(v.get<std::string>());
    EXPECT_EQ(xattrs, e.xattrs);
  }
}

std::map<std::string, Bytes> xattrs_of(const std::string& path) {
  std::map<std::string, Bytes> out;
  char names[65536];
  ssize_t n = ::llistxattr(path.c_str(), names, sizeof names);
  if (n < 0) throw_errno("llistxattr " + path);
  for (const char* p = names; p < names + n; p += std::strlen(p) + 1) {
    Bytes value(65536);
    ssize_t len = ::lgetxattr(path.c_str(), p, value.data(), value.size());
    if (len < 0) throw_errno("lgetxattr " + path);
    value.resize(static_cast<size_t>(len));
    out[p] = value;
  }
  return out;
}

// Every path under root, relative, without following symlinks (std::filesystem's iterator
// stats symlink targets, which fails on a target longer than NAME_MAX).
std::vector<std::string> walk(const std::string& root, const std::string& rel = "") {
  std::vector<std::string> out;
  std::string dir = rel.empty() ? root : root + "/" + rel;
  std::unique_ptr<DIR, int (*)(DIR*)> d(::opendir(dir.c_str()), ::closedir);
  if (!d) throw_errno("opendir " + dir);
  while (dirent* ent = ::readdir(d.get())) {
    std::string_view name = ent->d_name;
    if (name == "." || name == "..") continue;
    std::string child = rel;
    if (!child.empty()) child += '/';
    child += name;
    out.push_back(child);
    std::string full = root;
    full += '/';
    full += child;
    struct stat st {};
    if (::lstat(full.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
      for (std::string& sub : walk(root, child)) out.push_back(std::move(sub));
    }
  }
  return out;
}

// GNU tar's stderr less its warnings about times it finds odd (before 1970, far future), which
// the archives hold on purpose.
std::string tar_complaints(const std::string& path) {
  std::string text = read_text_file(path);
  std::string out;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = std::min(text.find('\n', pos), text.size());
    std::string line = text.substr(pos, nl - pos);
    if (line.find("implausibly old time stamp") == std::string::npos &&
        line.find("in the future") == std::string::npos) {
      out += line + "\n";
    }
    pos = nl + 1;
  }
  return out;
}

enum class Precision { seconds, nanoseconds };
struct Compare {
  Precision time = Precision::nanoseconds;
  bool xattrs = true;
  bool symlink_times = true;
};

// Each entry against the file it came from or was extracted to, and every file of the tree is
// an entry.
void expect_tree_matches(const std::string& root, const std::vector<Read>& entries, Compare cmp) {
  std::set<std::string> seen;
  for (const Read& r : entries) {
    const TarEntry& e = r.entry;
    SCOPED_TRACE(e.path);
    EXPECT_TRUE(seen.insert(e.path).second) << "twice in the archive";
    std::string path = e.path.empty() ? root : root + "/" + e.path;
    struct stat st {};
    ASSERT_EQ(::lstat(path.c_str(), &st), 0) << path;
    if (e.type != TarEntryType::symlink) {
      EXPECT_EQ(st.st_mode & 07777, e.mode);
    }
    EXPECT_EQ(st.st_uid, e.uid);
    EXPECT_EQ(st.st_gid, e.gid);
    if (e.type != TarEntryType::symlink || cmp.symlink_times) {
      EXPECT_EQ(st.st_mtim.tv_sec, e.mtime_sec);
      if (cmp.time == Precision::nanoseconds) {
        EXPECT_EQ(st.st_mtim.tv_nsec, e.mtime_nsec);
      }
    }
    switch (e.type) {
      case TarEntryType::regular:
        EXPECT_TRUE(S_ISREG(st.st_mode));
        EXPECT_EQ(static_cast<uint64_t>(st.st_size), e.size);
        EXPECT_EQ(to_hex(sha256(read_file(path))), r.sha256);
        break;
      case TarEntryType::directory:
        EXPECT_TRUE(S_ISDIR(st.st_mode));
        break;
      case TarEntryType::symlink: {
        ASSERT_TRUE(S_ISLNK(st.st_mode));
        EXPECT_EQ(std::filesystem::read_symlink(path).string(), e.link_target);
        break;
      }
      case TarEntryType::hard_link: {
        struct stat target {};
        ASSERT_EQ(::lstat((root + "/" + e.link_target).c_str(), &target), 0);
        EXPECT_EQ(st.st_ino, target.st_ino);
        EXPECT_TRUE(seen.contains(e.link_target)) << "a link to a later entry";
        break;
      }
      case TarEntryType::char_device:
      case TarEntryType::block_device:
        EXPECT_EQ(S_ISCHR(st.st_mode), e.type == TarEntryType::char_device);
        EXPECT_EQ(S_ISBLK(st.st_mode), e.type == TarEntryType::block_device);
        EXPECT_EQ(major(st.st_rdev), e.dev_major);
        EXPECT_EQ(minor(st.st_rdev), e.dev_minor);
        break;
      case TarEntryType::fifo:
        EXPECT_TRUE(S_ISFIFO(st.st_mode));
        break;
    }
    // A hard link's xattrs are its target's: tar records them with the target only.
    if (cmp.xattrs && e.type != TarEntryType::hard_link) {
      EXPECT_EQ(xattrs_of(path), e.xattrs);
    }
  }
  for (const std::string& rel : walk(root)) {
    EXPECT_TRUE(seen.contains(rel)) << rel << " is missing from the archive";
  }
}

void set_time(const std::string& path, int64_t sec, long nsec) {
  timespec t[2] = {{sec, nsec}, {sec, nsec}};
  if (::utimensat(AT_FDCWD, path.c_str(), t, AT_SYMLINK_NOFOLLOW) != 0) throw_errno(path);
}

void set_xattr(const std::string& path, const char* name, ByteView value) {
  if (::lsetxattr(path.c_str(), name, value.data(), value.size(), 0) != 0) throw_errno(path);
}

void mkdirs(const std::string& path, mode_t mode) {
  std::filesystem::create_directories(path);
  ::chmod(path.c_str(), mode);
}

struct Tree {
  bool portable = false;  // leave out what ustar and v7 cannot hold (long names, big ids, times
                          // outside 0..8^11, xattrs)
  bool specials = true;   // devices and fifos (v7 has no type for them)
};

// A tree with every kind of entry the format can hold.
void make_tree(const std::string& t, Tree tree) {
  mkdirs(t, 0755);
  mkdirs(t + "/etc", 0755);
  mkdirs(t + "/tmp", 01777);
  mkdirs(t + "/srv", 02775);
  write_bytes(t + "/etc/hosts", as_bytes("127.0.0.1 localhost\n"));
  write_bytes(t + "/etc/shadow", as_bytes("root:*:1:0:99999:7:::\n"));
  ::chmod((t + "/etc/shadow").c_str(), 0640);
  ::chown((t + "/etc/shadow").c_str(), 0, 42);
  write_bytes(t + "/big.bin", random_data(300000, 5));
  write_bytes(t + "/empty", ByteView());
  write_bytes(t + "/suid", as_bytes("#!/bin/sh\n"));
  ::chown((t + "/suid").c_str(), 1000, 1000);
  ::chmod((t + "/suid").c_str(), 04755);
  write_bytes(t + "/caf\xc3\xa9", as_bytes("utf-8 name\n"));
  if (::symlink("etc/hosts", (t + "/hosts").c_str()) != 0) throw_errno("symlink");
  if (::link((t + "/etc/hosts").c_str(), (t + "/etc/hosts.link").c_str()) != 0) throw_errno("link");
  mkdirs(t + "/dev", 0755);
  if (tree.specials) {
    if (::mkfifo((t + "/fifo").c_str(), 0600) != 0) throw_errno("mkfifo");
    if (::mknod((t + "/dev/null").c_str(), S_IFCHR | 0666, makedev(1, 3)) != 0) {
      throw_errno("mknod");
    }
    if (::mknod((t + "/dev/loop7").c_str(), S_IFBLK | 0660, makedev(7, 7)) != 0) {
      throw_errno("mknod");
    }
  }
  set_time(t + "/etc/hosts", 1700000000, 123456789);
  set_time(t + "/big.bin", 1000000000, 999999999);
  if (!tree.portable) {
    std::string deep = t + "/" + std::string(120, 'd') + "/" + std::string(90, 'e');
    mkdirs(deep, 0700);
    write_bytes(deep + "/" + std::string(200, 'f'), as_bytes("long name\n"));
    if (::symlink(("/" + std::string(300, 'l')).c_str(), (t + "/longlink").c_str()) != 0) {
      throw_errno("symlink");
    }
    if (::link((deep + "/" + std::string(200, 'f')).c_str(), (t + "/hard-to-long").c_str()) != 0) {
      throw_errno("link");
    }
    write_bytes(t + "/bigids", as_bytes("x"));
    ::chown((t + "/bigids").c_str(), 3000000, 3000001);
    write_bytes(t + "/before-1970", ByteView());
    set_time(t + "/before-1970", -2, 750000000);
    write_bytes(t + "/year-2255", ByteView());
    set_time(t + "/year-2255", 9000000000, 5);
    set_xattr(t + "/etc/hosts", "user.mime", as_bytes("text/plain"));
    set_xattr(t + "/big.bin", "user.bin", Bytes{0, 1, 0xff, '\n', '='});
    mkdirs(t + "/opaque", 0755);
    set_xattr(t + "/opaque", "trusted.overlay.opaque", as_bytes("y"));
    set_time(t + "/opaque", 1600000000, 1);
  }
  set_time(t + "/etc", 1500000000, 0);
}

TEST(TarInterop, GnuTarArchivesReadAsTheFilesystemAndPythonSay) {
  struct Case {
    const char* format;
    Tree tree;
    Compare cmp;
  };
  const Case cases[] = {
      {"pax", {}, {}},
      {"gnu", {}, {.time = Precision::seconds, .xattrs = false}},
      {"ustar", {.portable = true}, {.time = Precision::seconds, .xattrs = false}},
      {"v7", {.portable = true, .specials = false}, {.time = Precision::seconds, .xattrs = false}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.format);
    TempDir tmp;
    make_tree(tmp / "tree", c.tree);
    std::string archive = tmp / "a.tar";
    ASSERT_TRUE(sh(std::string("tar --format=") + c.format +
                   " --xattrs --xattrs-include='*' --numeric-owner -cf " + archive + " -C " +
                   tmp / "tree" + " . 2>" + tmp / "err"));
    EXPECT_EQ(tar_complaints(tmp / "err"), "");
    std::vector<Read> ours = read_ours(archive);
    expect_tree_matches(tmp / "tree", ours, c.cmp);
    expect_python_agrees(archive, ours);
  }
}

TEST(TarInterop, GnuTarSparseFilesAreRefusedByName) {
  TempDir tmp;
  mkdirs(tmp / "t", 0755);
  {
    UniqueFd fd(::open((tmp / "t/sparse").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
    ASSERT_TRUE(fd.valid());
    ASSERT_EQ(::pwrite(fd.get(), "data", 4, 10 << 20), 4);
  }
  for (const char* format : {"gnu", "pax"}) {
    std::string archive = tmp / (std::string(format) + ".tar");
    ASSERT_TRUE(sh(std::string("tar --sparse --format=") + format + " -cf " + archive + " -C " +
                   tmp / "t" + " sparse"));
    try {
      read_ours(archive);
      ADD_FAILURE() << format << ": no error";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("sparse files are not supported"), std::string::npos)
          << e.what();
    }
  }
}

std::vector<Read> our_entries() {
  std::vector<Read> out;
  auto add = [&](TarEntry e, Bytes content = {}) {
    e.size = content.size();
    out.push_back({e, e.type == TarEntryType::regular ? to_hex(sha256(content)) : ""});
    return content;
  };
  auto entry = [](std::string path, TarEntryType type, uint32_t mode) {
    TarEntry e;
    e.path = std::move(path);
    e.type = type;
    e.mode = mode;
    e.mtime_sec = 1700000000;
    e.mtime_nsec = 250000000;
    return e;
  };
  (void)add(entry("", TarEntryType::directory, 0755));
  (void)add(entry("etc", TarEntryType::directory, 0755));
  TarEntry shadow = entry("etc/shadow", TarEntryType::regular, 0640);
  shadow.gid = 42;
  shadow.uname = "root";
  shadow.gname = "shadow";
  (void)add(shadow, to_bytes("root:*:1:0:::::\n"));
  TarEntry hard = entry("etc/shadow.link", TarEntryType::hard_link, 0640);
  hard.gid = 42;
  hard.uname = "root";
  hard.gname = "shadow";
  hard.link_target = "etc/shadow";
  (void)add(hard);
  TarEntry big = entry("big.bin", TarEntryType::regular, 0644);
  big.xattrs["user.bin"] = Bytes{0, 1, 0xff, '\n', '='};
  big.xattrs["user.mime"] = to_bytes("application/octet-stream");
  big.xattrs["trusted.overlay.opaque"] = to_bytes("y");
  (void)add(big, random_data(200000, 9));
  TarEntry ids = entry("ids", TarEntryType::regular, 04755);
  ids.uid = 3000000;
  ids.gid = 3000001;
  ids.mtime_sec = -2;
  ids.mtime_nsec = 750000000;
  (void)add(ids, to_bytes("x"));
  TarEntry future = entry("future", TarEntryType::regular, 0600);
  future.mtime_sec = 9000000000;
  future.mtime_nsec = 0;
  (void)add(future);
  std::string long_dir = std::string(120, 'd') + "/" + std::string(90, 'e');
  (void)add(entry(std::string(120, 'd'), TarEntryType::directory, 0700));
  (void)add(entry(long_dir, TarEntryType::directory, 0711));
  (void)add(entry(long_dir + "/" + std::string(200, 'f'), TarEntryType::regular, 0644),
            to_bytes("long\n"));
  (void)add(entry("caf\xc3\xa9", TarEntryType::regular, 0644), to_bytes("utf-8\n"));
  (void)add(entry(std::string(110, 'n') + "\xff", TarEntryType::regular, 0644), to_bytes("raw\n"));
  TarEntry sym = entry("hosts", TarEntryType::symlink, 0777);
  sym.link_target = "etc/shadow";
  (void)add(sym);
  TarEntry long_sym = entry("longlink", TarEntryType::symlink, 0777);
  long_sym.link_target = "/" + std::string(300, 'l');
  (void)add(long_sym);
  TarEntry hard_long = entry("hard-to-long", TarEntryType::hard_link, 0644);
  hard_long.link_target = long_dir + "/" + std::string(200, 'f');
  (void)add(hard_long);
  (void)add(entry("dev", TarEntryType::directory, 0755));
  TarEntry null_dev = entry("dev/null", TarEntryType::char_device, 0666);
  null_dev.dev_major = 1;
  null_dev.dev_minor = 3;
  (void)add(null_dev);
  TarEntry loop = entry("dev/loop9", TarEntryType::block_device, 0660);
  loop.dev_major = 7;
  loop.dev_minor = 9;
  (void)add(loop);
  (void)add(entry("fifo", TarEntryType::fifo, 0600));
  return out;
}

Bytes content_of(const Read& r) {
  if (r.entry.path == "big.bin") return random_data(200000, 9);
  static const std::map<std::string, std::string> kText = {{"etc/shadow", "root:*:1:0:::::\n"},
                                                           {"ids", "x"},
                                                           {"future", ""},
                                                           {"caf\xc3\xa9", "utf-8\n"}};
  auto it = kText.find(r.entry.path);
  if (it != kText.end()) return to_bytes(it->second);
  if (r.entry.path.ends_with('\xff')) return to_bytes("raw\n");
  return to_bytes("long\n");
}

TEST(TarInterop, OurArchivesExtractWithGnuTarAndReadWithPython) {
  TempDir tmp;
  std::vector<Read> entries = our_entries();
  std::string archive = tmp / "ours.tar";
  {
    UniqueFd fd(::open(archive.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
    ASSERT_TRUE(fd.valid());
    FdSink sink(fd.get(), archive);
    TarWriter w(sink);
    for (const Read& r : entries) {
      w.add(r.entry);
      if (r.entry.type == TarEntryType::regular) w.write(content_of(r));
    }
    w.finish();
  }
  // Our reader gives back exactly what was written.
  std::vector<Read> back = read_ours(archive);
  ASSERT_EQ(back.size(), entries.size());
  for (size_t i = 0; i < entries.size(); ++i) {
    EXPECT_EQ(back[i].entry, entries[i].entry) << entries[i].entry.path;
    EXPECT_EQ(back[i].sha256, entries[i].sha256) << entries[i].entry.path;
  }
  // GNU tar lists it without a warning and extracts every field.
  ASSERT_TRUE(sh("tar --xattrs --xattrs-include='*' -tvf " + archive + " > " + tmp / "list 2> " +
                 tmp / "err"));
  EXPECT_EQ(tar_complaints(tmp / "err"), "");
  mkdirs(tmp / "out", 0755);
  ASSERT_TRUE(sh("tar --xattrs --xattrs-include='*' --numeric-owner -xpf " + archive + " -C " +
                 tmp / "out 2> " + tmp / "err"));
  EXPECT_EQ(tar_complaints(tmp / "err"), "");
  expect_tree_matches(tmp / "out", entries, {});
  expect_python_agrees(archive, entries);
}

}  // namespace
}  // namespace cidrun::image
