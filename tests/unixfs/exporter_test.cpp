// `get` against hostile DAGs, one case per test, with nodes built by hand (including names and
// sizes the importer would never produce), plus the metadata it must restore exactly.
#include "unixfs/exporter.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

#include "ipld/dagpb.h"
#include "ipld/protobuf.h"
#include "ipld/unixfs_pb.h"
#include "store/flatfs.h"
#include "store/memstore.h"
#include "store/reachable.h"
#include "util/error.h"
#include "util/fd.h"

namespace cidrun::unixfs {
namespace {

namespace fs = std::filesystem;

struct Meta {
  std::optional<uint32_t> mode;
  std::optional<unixfs_pb::UnixTime> mtime;
};

class ExporterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/exporter_test_XXXXXX";
    dir_ = ::mkdtemp(tmpl);
    fs::create_directories(dir_ + "/victim");  // must stay empty whatever a DAG says
  }
  void TearDown() override { fs::remove_all(dir_); }

  Cid put(const dagpb::Node& n) {
    Bytes b = dagpb::encode(n);
    Cid c = Cid::of(0, kCodecDagPb, b);
    store_.put(c, b);
    return c;
  }
  Cid file(std::string_view content, Meta m = {}) {
    unixfs_pb::Data d;
    d.type = unixfs_pb::Type::kFile;
    d.data = to_bytes(content);
    d.filesize = content.size();
    d.mode = m.mode;
    d.mtime = m.mtime;
    return put({{}, unixfs_pb::encode(d)});
  }
  Cid symlink(std::string_view target, Meta m = {}) {
    unixfs_pb::Data d;
    d.type = unixfs_pb::Type::kSymlink;
    d.data = to_bytes(target);
    d.mode = m.mode;
    d.mtime = m.mtime;
    return put({{}, unixfs_pb::encode(d)});
  }
  // Links in exactly the given order and with exactly the given names.
  Cid dir(const std::vector<std::pair<std::string, Cid>>& entries, Meta m = {}) {
    unixfs_pb::Data d;
    d.type = unixfs_pb::Type::kDirectory;
    d.mode = m.mode;
    d.mtime = m.mtime;
    dagpb::Node n;
    for (const auto& [name, cid] : entries) n.links.push_back({cid, name, 10});
    n.data = unixfs_pb::encode(d);
    return put(n);
  }

  ExportStats get(const Cid& root, const std::string& out = "out", const std::string& name = "x") {
    if (!use_flatfs_) {
      Dag dag(store_);
      return export_tree(dag, root, dir_ + "/" + out, name);
    }
    // The same blocks in an on-disk store: files are then copied by the copy_file_range path.
    FlatfsStore flatfs(dir_ + "/.blocks", true);
    std::vector<Cid> cids;  // collected first: MemoryStore::for_each holds its lock
    store_.for_each([&](ByteView mh) { cids.push_back(cid_of_multihash(mh)); });
    for (const auto& c : cids) flatfs.put(c, *store_.get(c));
    Dag dag(flatfs);
    return export_tree(dag, root, dir_ + "/" + out, name);
  }
  std::string get_error(const Cid& root, const std::string& out = "out") {
    try {
      get(root, out);
    } catch (const Error& e) {
      return e.what();
    }
    return "";
  }
  // Everything the export created lives below out/ and victim/ is untouched.
  void expect_contained() {
    EXPECT_TRUE(fs::is_empty(dir_ + "/victim"));
    for (const auto& e : fs::directory_iterator(dir_)) {
      std::string n = e.path().filename();
      EXPECT_TRUE(n == "victim" || n == "out" || n == ".blocks") << "escaped: " << n;
    }
  }

  std::string dir_;
  MemoryStore store_;
  bool use_flatfs_ = false;
};

class FlatfsExporterTest : public ExporterTest {
 protected:
  void SetUp() override {
    ExporterTest::SetUp();
    use_flatfs_ = true;
  }
  Cid raw(std::string_view content) {
    Bytes b = to_bytes(content);
    Cid c = Cid::of(1, kCodecRaw, b);
    store_.put(c, b);
    return c;
  }
  Cid file_of(const std::vector<std::pair<Cid, uint64_t>>& children,
              std::string_view inline_data = "", std::optional<uint64_t> filesize = std::nullopt) {
    unixfs_pb::Data d;
    d.type = unixfs_pb::Type::kFile;
    if (!inline_data.empty()) d.data = to_bytes(inline_data);
    uint64_t total = inline_data.size();
    dagpb::Node n;
    for (const auto& [cid, size] : children) {
      n.links.push_back({cid, std::string(""), size});
      d.blocksizes.push_back(size);
      total += size;
    }
    d.filesize = filesize.value_or(total);
    n.data = unixfs_pb::encode(d);
    return put(n);
  }
};

TEST_F(FlatfsExporterTest, CopiesMultiLevelFilesWithRawAndDagPbLeaves) {
  Cid inner = file_of({{raw("bb"), 2}, {file("ccc"), 3}});
  Cid f = file_of({{raw("a"), 1}, {inner, 5}, {raw(""), 0}}, "head-");
  get(dir({{"f", f}, {"single", file("one block")}, {"rawfile", raw("raw root")}}));
  EXPECT_EQ(read_text_file(dir_ + "/out/f"), "head-abbccc");
  EXPECT_EQ(read_text_file(dir_ + "/out/single"), "one block");
  EXPECT_EQ(read_text_file(dir_ + "/out/rawfile"), "raw root");
}

TEST_F(FlatfsExporterTest, BigLeavesAreCopiedAroundTheirDataAndChecked) {
  std::string big(300000, 'q');
  big[0] = 'A';
  big.back() = 'Z';
  Cid leaf = file(big, {0640, unixfs_pb::UnixTime{5, 6}});  // fields after DATA: mode, mtime
  Cid f = file_of({{leaf, big.size()}, {raw("!"), 1}});
  get(dir({{"f", f}, {"leaf", leaf}}));
  EXPECT_EQ(read_text_file(dir_ + "/out/f"), big + "!");
  EXPECT_EQ(read_text_file(dir_ + "/out/leaf"), big);
  fs::remove_all(dir_ + "/out");
  // A big leaf whose trailing filesize lies is refused like a small one.
  unixfs_pb::Data d;
  d.type = unixfs_pb::Type::kFile;
  d.data = to_bytes(big);
  d.filesize = 7;
  Cid liar = put({{}, unixfs_pb::encode(d)});
  EXPECT_NE(get_error(dir({{"f", file_of({{liar, big.size()}})}})), "");
}

// Leaves whose data sits at every offset within a page, relative to where it lands in the
// output: dag-pb leaves (data after a header, copied through a buffer) and raw leaves (copied by
// copy_file_range when they line up), some bigger than the copy buffer, in one file.
TEST_F(FlatfsExporterTest, LeavesAtAnyAlignmentAreCopiedByteForByte) {
  std::string want;
  std::vector<std::pair<Cid, uint64_t>> children;
  uint32_t x = 12345;
  auto bytes = [&](size_t n) {
    std::string s(n, '\0');
    for (auto& c : s) {
      x = x * 1103515245 + 12345;
      c = static_cast<char>(x >> 24);
    }
    return s;
  };
  for (size_t n : {4096u, 5000u, 300000u, 4097u, 8192u, 270000u, 4100u}) {
    std::string a = bytes(n);
    children.emplace_back(file(a), n);
    want += a;
    std::string b = bytes(n + 3);
    children.emplace_back(raw(b), b.size());
    want += b;
  }
  get(dir({{"f", file_of(children)}}));
  EXPECT_TRUE(read_text_file(dir_ + "/out/f") == want);
}

// Issue 15: a leaf whose UnixFS message holds Data twice. protobuf (and so `cat`, kubo and every
// other reader) takes the last; `get` once copied the first through its fast path, so a
// container could see other bytes than `cat` for one CID.
TEST_F(FlatfsExporterTest, RepeatedDataFieldGivesWhatCatGives) {
  // Two Data fields of one length (so that filesize fits either), the block big enough for the
  // fast path, which reads only the few bytes around the data it copies.
  std::string first(3000, 'F');
  std::string last(3000, 'L');
  Bytes msg;
  pb::put_uint(msg, 1, static_cast<uint64_t>(unixfs_pb::Type::kFile));
  pb::put_bytes(msg, 2, as_bytes(first));
  pb::put_bytes(msg, 2, as_bytes(last));
  pb::put_uint(msg, 3, last.size());
  ASSERT_EQ(unixfs_pb::decode(msg).data, to_bytes(last));
  Cid leaf = put({{}, msg});
  Cid f = file_of({{leaf, last.size()}});
  get(dir({{"leaf", leaf}, {"f", f}}));
  // (EXPECT_TRUE: a failure would print 3000 bytes twice.)
  EXPECT_TRUE(read_text_file(dir_ + "/out/leaf") == last) << "get copied the first Data field";
  EXPECT_TRUE(read_text_file(dir_ + "/out/f") == last) << "get copied the first Data field";
  // And the whole-block path (a small leaf) agrees.
  Bytes small;
  pb::put_uint(small, 1, static_cast<uint64_t>(unixfs_pb::Type::kFile));
  pb::put_bytes(small, 2, as_bytes("first"));
  pb::put_bytes(small, 2, as_bytes("last"));
  fs::remove_all(dir_ + "/out");
  get(dir({{"small", put({{}, small})}}));
  EXPECT_EQ(read_text_file(dir_ + "/out/small"), "last");
}

TEST_F(FlatfsExporterTest, ChildThatHoldsLessThanItsBlocksizeIsRefused) {
  Cid f = file_of({{raw("abc"), 3}, {raw("de"), 5}});
  EXPECT_NE(get_error(dir({{"f", f}})), "");
}

TEST_F(FlatfsExporterTest, FilesizeThatDisagreesIsRefused) {
  Cid f = file_of({{raw("abc"), 3}}, "", 1000);
  EXPECT_NE(get_error(dir({{"f", f}})), "");
}

TEST_F(FlatfsExporterTest, AbsurdBlocksizesAreRefused) {
  Cid f = file_of({{raw("abc"), uint64_t{1} << 62}, {raw("d"), uint64_t{1} << 62}});
  EXPECT_NE(get_error(dir({{"f", f}})), "");
}

TEST_F(FlatfsExporterTest, MissingLeafNamesItsCid) {
  Cid absent = Cid::of(1, kCodecRaw, to_bytes("absent"));
  Cid f = file_of({{raw("x"), 1}, {absent, 6}});
  std::string err = get_error(dir({{"f", f}}));
  EXPECT_NE(err.find(absent.str()), std::string::npos) << err;
}

TEST_F(ExporterTest, WritesFilesDirsSymlinksAndEmptyDirs) {
  Cid root = dir({{"a.txt", file("hello")},
                  {"empty", dir({})},
                  {"link", symlink("a.txt")},
                  {"sub", dir({{"b", file("")}})}});
  auto st = get(root);
  EXPECT_EQ(st.files, 2u);
  EXPECT_EQ(st.directories, 3u);
  EXPECT_EQ(st.symlinks, 1u);
  EXPECT_EQ(read_text_file(dir_ + "/out/a.txt"), "hello");
  EXPECT_TRUE(fs::is_empty(dir_ + "/out/empty"));
  EXPECT_EQ(fs::read_symlink(dir_ + "/out/link"), "a.txt");
  EXPECT_EQ(fs::file_size(dir_ + "/out/sub/b"), 0u);
}

TEST_F(ExporterTest, AppliesModesExactlyIncludingSpecialBits) {
  Cid root = dir({{"suid", file("x", {04755, {}})},
                  {"sgid", file("x", {02711, {}})},
                  {"ro", file("x", {0444, {}})},
                  {"sticky", dir({{"f", file("y")}}, {01777, {}})},
                  {"locked", dir({{"f", file("z")}}, {0500, {}})}},
                 {0750, {}});
  get(root);
  auto mode = [&](const std::string& p) {
    struct stat s {};
    EXPECT_EQ(::lstat((dir_ + "/out/" + p).c_str(), &s), 0) << p;
    return s.st_mode & 07777;
  };
  EXPECT_EQ(mode("suid"), 04755u);
  EXPECT_EQ(mode("sgid") & 0777, 0711u);  // setgid survives only for a group we are in
  EXPECT_EQ(mode("ro"), 0444u);
  EXPECT_EQ(mode("sticky"), 01777u);
  EXPECT_EQ(mode("locked"), 0500u);  // applied after its child was written
  EXPECT_EQ(mode("."), 0750u);
  EXPECT_EQ(read_text_file(dir_ + "/out/locked/f"), "z");
  ::chmod((dir_ + "/out/locked").c_str(), 0700);  // so TearDown can remove it
}

TEST_F(ExporterTest, AppliesMtimesToTheNanosecondIncludingPre1970) {
  Cid root = dir({{"old", file("x", {{}, unixfs_pb::UnixTime{-86400 * 365, 5}})},
                  {"ns", file("x", {{}, unixfs_pb::UnixTime{1700000000, 123456789}})},
                  {"l", symlink("ns", {{}, unixfs_pb::UnixTime{1600000000, 1}})},
                  {"d", dir({{"child", file("c")}}, {{}, unixfs_pb::UnixTime{1000, 999999999}})}});
  get(root);
  auto mtime = [&](const std::string& p) {
    struct stat s {};
    EXPECT_EQ(::lstat((dir_ + "/out/" + p).c_str(), &s), 0);
    return std::pair<int64_t, long>(s.st_mtim.tv_sec, s.st_mtim.tv_nsec);
  };
  EXPECT_EQ(mtime("old"), (std::pair<int64_t, long>(-86400 * 365, 5)));
  EXPECT_EQ(mtime("ns"), (std::pair<int64_t, long>(1700000000, 123456789)));
  EXPECT_EQ(mtime("l"), (std::pair<int64_t, long>(1600000000, 1)));
  EXPECT_EQ(mtime("d"), (std::pair<int64_t, long>(1000, 999999999)));  // set after its child
}

TEST_F(ExporterTest, NoStoredModeMeansDefaultsUnderTheUmask) {
  mode_t old = ::umask(027);
  Cid root = dir({{"f", file("x")}, {"d", dir({})}});
  get(root);
  ::umask(old);
  struct stat s {};
  ASSERT_EQ(::stat((dir_ + "/out/f").c_str(), &s), 0);
  EXPECT_EQ(s.st_mode & 07777, 0640u);
  ASSERT_EQ(::stat((dir_ + "/out/d").c_str(), &s), 0);
  EXPECT_EQ(s.st_mode & 07777, 0750u);
}

class HostileName : public ExporterTest, public ::testing::WithParamInterface<std::string> {};

TEST_P(HostileName, IsRefusedAndNothingEscapes) {
  Cid root = dir({{"ok", file("fine")}, {GetParam(), file("payload")}});
  std::string err = get_error(root);
  EXPECT_NE(err, "") << "accepted name " << GetParam();
  EXPECT_EQ(err.find('\n'), std::string::npos);  // one line, even for a name with a newline
  expect_contained();
}

INSTANTIATE_TEST_SUITE_P(Names, HostileName,
                         ::testing::Values("..", ".", "", "../victim/x", "/tmp/abs", "a/b",
                                           std::string("nul\0byte", 8), "../../etc/passwd"));

TEST_F(ExporterTest, NewlineInNameIsShownEscaped) {
  Cid root = dir({{"a/\nb", file("x")}});
  std::string err = get_error(root);
  EXPECT_NE(err.find("\\x0a"), std::string::npos) << err;
}

TEST_F(ExporterTest, DuplicateNamesAreRefused) {
  Cid root = dir({{"a", file("first")}, {"a", file("second")}});
  EXPECT_NE(get_error(root).find("duplicate"), std::string::npos) << get_error(root);
  EXPECT_EQ(read_text_file(dir_ + "/out/a"), "first");
}

TEST_F(ExporterTest, SymlinkThenDirectoryOfTheSameNameCannotWriteThroughIt) {
  Cid root = dir({{"a", symlink(dir_ + "/victim")}, {"a", dir({{"pwned", file("x")}})}});
  EXPECT_NE(get_error(root).find("duplicate"), std::string::npos);
  expect_contained();
}

TEST_F(ExporterTest, SymlinkThenFileOfTheSameNameDoesNotFollowIt) {
  Cid root = dir({{"a", symlink(dir_ + "/victim/owned")}, {"a", file("x")}});
  EXPECT_NE(get_error(root), "");
  expect_contained();
  EXPECT_FALSE(fs::exists(dir_ + "/victim/owned"));
}

TEST_F(ExporterTest, SymlinksAnywhereAreWrittenVerbatimNeverFollowed) {
  Cid root = dir({{"abs", symlink("/etc/passwd")},
                  {"up", symlink("../../../../victim")},
                  {"self", symlink("self")}});
  get(root);
  EXPECT_EQ(fs::read_symlink(dir_ + "/out/abs"), "/etc/passwd");
  EXPECT_EQ(fs::read_symlink(dir_ + "/out/up"), "../../../../victim");
  EXPECT_EQ(fs::read_symlink(dir_ + "/out/self"), "self");
  expect_contained();
}

TEST_F(ExporterTest, SymlinkWithEmptyOrNulTargetIsRefused) {
  EXPECT_NE(get_error(dir({{"e", symlink("")}})), "");
  fs::remove_all(dir_ + "/out");
  EXPECT_NE(get_error(dir({{"n", symlink(std::string("a\0b", 3))}})), "");
}

TEST_F(ExporterTest, AbsurdFilesizeIsRefused) {
  Cid leaf = file("tiny");
  unixfs_pb::Data d;
  d.type = unixfs_pb::Type::kFile;
  d.filesize = uint64_t{1} << 62;
  d.blocksizes = {uint64_t{1} << 62};
  Cid big = put({{{leaf, std::string(""), 10}}, unixfs_pb::encode(d)});
  std::string err = get_error(dir({{"big", big}}));
  EXPECT_NE(err, "");
  EXPECT_TRUE(!fs::exists(dir_ + "/out/big") || fs::file_size(dir_ + "/out/big") <= 4);
}

TEST_F(ExporterTest, BlocksizesThatDisagreeWithLeavesAreRefused) {
  Cid leaf = file("0123456789");
  unixfs_pb::Data d;
  d.type = unixfs_pb::Type::kFile;
  d.filesize = 30;
  d.blocksizes = {10, 20};
  Cid liar =
      put({{{leaf, std::string(""), 10}, {leaf, std::string(""), 10}}, unixfs_pb::encode(d)});
  EXPECT_NE(get_error(dir({{"liar", liar}})), "");
}

TEST_F(ExporterTest, VeryDeepTreeIsRefused) {
  Cid node = file("bottom");
  for (int i = 0; i < 400; ++i) node = dir({{"d", node}});
  std::string err = get_error(node);
  EXPECT_NE(err.find("deeper than"), std::string::npos) << err.substr(0, 200);
}

TEST_F(ExporterTest, MissingBlockNamesItsCid) {
  Cid absent = Cid::of(0, kCodecDagPb, to_bytes("not stored anywhere"));
  std::string err = get_error(dir({{"gone", absent}}));
  EXPECT_NE(err.find(absent.str()), std::string::npos) << err;
}

TEST_F(ExporterTest, RefusesANonEmptyTargetDirectory) {
  fs::create_directories(dir_ + "/out");
  write_file_atomic(dir_ + "/out/existing", as_bytes("mine"));
  EXPECT_NE(get_error(dir({{"existing", file("theirs")}})).find("not empty"), std::string::npos);
  EXPECT_EQ(read_text_file(dir_ + "/out/existing"), "mine");
}

TEST_F(ExporterTest, FillsAnExistingEmptyTargetDirectory) {
  fs::create_directories(dir_ + "/out");
  get(dir({{"f", file("x")}}));
  EXPECT_EQ(read_text_file(dir_ + "/out/f"), "x");
}

TEST_F(ExporterTest, TargetThatIsASymlinkIsRefused) {
  fs::create_directory_symlink(dir_ + "/victim", dir_ + "/out");
  EXPECT_NE(get_error(dir({{"f", file("x")}})), "");
  EXPECT_TRUE(fs::is_empty(dir_ + "/victim"));
}

TEST_F(ExporterTest, FileRootGoesInsideAnExistingDirectoryUnderItsName) {
  fs::create_directories(dir_ + "/out");
  auto st = get(file("content"), "out", "name.txt");
  EXPECT_EQ(st.written_path, dir_ + "/out/name.txt");
  EXPECT_EQ(read_text_file(dir_ + "/out/name.txt"), "content");
}

TEST_F(ExporterTest, FileRootNeverOverwrites) {
  write_file_atomic(dir_ + "/out", as_bytes("mine"));
  EXPECT_NE(get_error(file("theirs")).find("already exists"), std::string::npos);
  EXPECT_EQ(read_text_file(dir_ + "/out"), "mine");
  fs::create_directories(dir_ + "/d");
  write_file_atomic(dir_ + "/d/x", as_bytes("mine too"));
  EXPECT_NE(get_error(file("theirs"), "d").find("already exists"), std::string::npos);
  EXPECT_EQ(read_text_file(dir_ + "/d/x"), "mine too");
}

TEST(SafeName, Rules) {
  EXPECT_TRUE(is_safe_name("a"));
  EXPECT_TRUE(is_safe_name("..."));
  EXPECT_TRUE(is_safe_name("ünï cødé"));
  EXPECT_FALSE(is_safe_name(""));
  EXPECT_FALSE(is_safe_name("."));
  EXPECT_FALSE(is_safe_name(".."));
  EXPECT_FALSE(is_safe_name("a/b"));
  EXPECT_FALSE(is_safe_name(std::string("a\0b", 3)));
}

}  // namespace
}  // namespace cidrun::unixfs
