// Round trips through the binary: add -> get must give back the same bytes and the same
// metadata (modes incl. setuid/setgid/sticky, mtimes incl. nanoseconds and pre-1970, symlinks,
// empty dirs, unicode names, HAMT dirs); add -> dag export -> dag import -> get likewise; and the
// store commands (cat, ls, block, pin, repo) on the result.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "integration/content_helpers.h"

namespace cidrun::testing {
namespace {

void sh(const std::string& script) {
  ASSERT_EQ(std::system(("set -e; " + script).c_str()), 0) << script;
}

// A tree with every kind of entry and metadata UnixFS 1.5 can carry.
std::string make_rich_tree(const Sandbox& s) {
  std::string t = s.path("src");
  std::string q = shell_quote(t);
  sh("mkdir -p " + q + "/sub/deeper " + q + "/empty " + q + "/sticky " + q + "/ünïcødé-дир");
  sh("cd " + q +
     " && printf hello > a.txt && : > zero && head -c 262144 /dev/urandom > chunk-exact"
     " && head -c 262145 /dev/urandom > chunk-plus-one && head -c 3000000 /dev/urandom > sub/big"
     " && printf x > 'ünïcødé-дир/файл 名前 🎉' && printf y > sub/deeper/f && ln -s a.txt link"
     " && ln -s /etc/passwd sub/abs-link && ln -s ../nowhere dangling"
     " && printf s > suid && chmod 4755 suid && printf g > sgid && chmod 2711 sgid"
     " && chmod 1777 sticky && chmod 0700 sub/deeper && chmod 0444 a.txt && chmod 2755 sub");
  // Leaves first, directories after their children: creating entries changes a dir's mtime.
  sh("cd " + q +
     " && touch -h -d '1960-01-01 00:00:00.123456789 UTC' sub/big"
     " && touch -h -d '2001-02-03 04:05:06.000000001 UTC' a.txt"
     " && touch -h -d '1969-12-31 23:59:59.999999999 UTC' link"
     " && touch -h -d '2020-01-01 00:00:00 UTC' zero"
     " && touch -d '1999-09-09 09:09:09.5 UTC' sub/deeper sub empty sticky && touch -d '2010-10-10 "
     "10:10:10.1 UTC' .");
  return t;
}

TEST(ContentRoundTrip, AddGetPreservesBytesAndMetadata) {
  Sandbox s;
  std::string src = make_rich_tree(s);
  std::string root = s.ok("add -r -Q --preserve-mode --preserve-mtime " + shell_quote(src));
  s.ok("get " + root + " -o " + shell_quote(s.path("out")));
  EXPECT_EQ(diff_trees(src, s.path("out")), "");
}

TEST(ContentRoundTrip, AddGetWithoutMetadataKeepsBytesAndLinks) {
  Sandbox s;
  std::string src = make_rich_tree(s);
  std::string root = s.ok("add -r -Q --cid-version 1 " + shell_quote(src));
  s.ok("get " + root + " -o " + shell_quote(s.path("out")));
  EXPECT_EQ(slurp(s.path("out/sub/big")), slurp(src + "/sub/big"));
  EXPECT_EQ(fs::read_symlink(s.path("out/sub/abs-link")), "/etc/passwd");
  EXPECT_TRUE(fs::is_empty(s.path("out/empty")));
  struct stat st {};
  ASSERT_EQ(::stat(s.path("out/suid").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07000, 0u);  // no stored mode: no special bits appear from nowhere
}

TEST(ContentRoundTrip, HamtDirectoryRoundTripsAndLists) {
  Sandbox s;
  std::string src = s.path("many");
  sh("mkdir -p " + shell_quote(src) + " && cd " + shell_quote(src) +
     " && for i in $(seq 1 600); do printf $i > file-$i; done && touch -d '2000-01-01 UTC' . ");
  // A low threshold forces sharding with 600 entries.
  std::string root = s.ok("add -r -Q --preserve-mtime --hamt-threshold 1000 " + shell_quote(src));
  std::string listing = s.ok("ls " + root);
  EXPECT_EQ(std::count(listing.begin(), listing.end(), '\n') + 1, 600);
  EXPECT_NE(listing.find(" file-599"), std::string::npos);
  EXPECT_EQ(s.ok("cat " + root + "/file-417"), "417");
  s.ok("get " + root + " -o " + shell_quote(s.path("out")));
  EXPECT_EQ(diff_trees(src, s.path("out"), /*compare_root_meta=*/false), "");
}

TEST(ContentRoundTrip, CarExportImportGetIsIdentical) {
  Sandbox s;
  std::string src = make_rich_tree(s);
  std::string root = s.ok("add -r -Q --preserve-mode --preserve-mtime " + shell_quote(src));
  s.ok("dag export " + root + " -o " + shell_quote(s.path("x.car")));
  std::string other = s.path("repo2");
  std::string out = s.ok("dag import --stats " + shell_quote(s.path("x.car")), other);
  EXPECT_NE(out.find("Pinned root\t" + root + "\tsuccess"), std::string::npos) << out;
  EXPECT_NE(out.find("Imported "), std::string::npos);
  s.ok("get " + root + " -o " + shell_quote(s.path("out")), other);
  EXPECT_EQ(diff_trees(src, s.path("out")), "");
  // Deterministic: the second repo exports the same bytes, and to stdout as to a file.
  s.ok("dag export " + root + " -o " + shell_quote(s.path("y.car")), other);
  EXPECT_EQ(slurp(s.path("x.car")), slurp(s.path("y.car")));
  EXPECT_EQ(s.run("dag export " + root).out, slurp(s.path("x.car")));
  EXPECT_NE(s.ok("repo verify", other).find("all"), std::string::npos);
}

// The first `parts` varint-framed parts of a CAR (the header, then sections).
std::string car_prefix(const std::string& car, int parts) {
  size_t pos = 0;
  for (int i = 0; i < parts; ++i) {
    uint64_t len = 0;
    int shift = 0;
    while (static_cast<unsigned char>(car.at(pos)) & 0x80) {
      len |= uint64_t{static_cast<unsigned char>(car[pos++]) & 0x7fu} << shift;
      shift += 7;
    }
    len |= uint64_t{static_cast<unsigned char>(car[pos++])} << shift;
    pos += len;
  }
  return car.substr(0, pos);
}

// Issue 15: a root that cannot be pinned after `dag import` (its DAG is incomplete) was reported on
// stdout only, with exit status 1. kubo's line stays on stdout; the error is one line on stderr.
TEST(ContentRoundTrip, ImportWhoseRootCannotBePinnedSaysSoOnStderr) {
  Sandbox s;
  sh("head -c 700000 /dev/urandom > " + shell_quote(s.path("f")));
  std::string root = s.ok("add -Q " + shell_quote(s.path("f")));
  s.ok("dag export " + root + " -o " + shell_quote(s.path("x.car")));
  // The header and the root block alone: its leaves are missing.
  std::ofstream(s.path("root-only.car"), std::ios::binary) << car_prefix(slurp(s.path("x.car")), 2);
  std::string other = s.path("repo2");
  Result r = s.run("dag import " + shell_quote(s.path("root-only.car")), other);
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.out.find("Pinned root\t" + root + "\tFAILED: "), std::string::npos) << r.out;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_NE(r.err.find("cidrun: error: cannot pin root " + root), std::string::npos) << r.err;
  EXPECT_EQ(s.ok("pin ls", other), "");
}

TEST(ContentRoundTrip, ImportOfACorruptCarChangesNothing) {
  Sandbox s;
  sh("printf 'some content here' > " + shell_quote(s.path("f")));
  std::string root = s.ok("add -Q " + shell_quote(s.path("f")));
  s.ok("dag export " + root + " -o " + shell_quote(s.path("x.car")));
  std::string car = slurp(s.path("x.car"));
  car[car.size() - 3] ^= 0x55;  // flip a byte of the block
  std::ofstream(s.path("bad.car"), std::ios::binary) << car;
  std::ofstream(s.path("short.car"), std::ios::binary) << car.substr(0, car.size() - 4);
  std::string other = s.path("repo2");
  for (const char* bad : {"bad.car", "short.car"}) {
    Result r = s.run("dag import " + shell_quote(s.path(bad)), other);
    EXPECT_NE(r.code, 0);
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_NE(r.err.find(bad), std::string::npos) << r.err;
  }
  EXPECT_NE(s.ok("repo stat", other).find("NumObjects: 0"), std::string::npos);
  EXPECT_TRUE(fs::is_empty(other + "/tmp"));
}

TEST(ContentCommands, CatOffsetLengthAndErrors) {
  Sandbox s;
  sh("printf 0123456789 > " + shell_quote(s.path("f")) + " && mkdir " + shell_quote(s.path("d")) +
     " && cp " + shell_quote(s.path("f")) + " " + shell_quote(s.path("d/g")));
  std::string f = s.ok("add -Q " + shell_quote(s.path("f")));
  std::string d = s.ok("add -r -Q " + shell_quote(s.path("d")));
  EXPECT_EQ(s.ok("cat " + f), "0123456789");
  EXPECT_EQ(s.ok("cat -o 3 -l 4 " + f), "3456");
  EXPECT_EQ(s.ok("cat --offset 8 " + d + "/g"), "89");
  EXPECT_EQ(s.ok("cat -o 20 " + f), "");
  Result r = s.run("cat " + d);
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.err.find("directory"), std::string::npos);
  r = s.run("cat " + d + "/nope");
  EXPECT_NE(r.code, 0);
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
}

TEST(ContentCommands, LsShowsTypesSizesModesAndJson) {
  Sandbox s;
  std::string src = make_rich_tree(s);
  std::string root = s.ok("add -r -Q --preserve-mode --preserve-mtime " + shell_quote(src));
  std::string plain = s.ok("ls " + root);
  EXPECT_NE(plain.find(" 5 a.txt"), std::string::npos) << plain;
  EXPECT_NE(plain.find(" - sub/"), std::string::npos) << plain;
  std::string longer = s.ok("ls -l " + root);
  EXPECT_NE(longer.find("-rwsr-xr-x"), std::string::npos) << longer;
  EXPECT_NE(longer.find("drwxrwxrwt"), std::string::npos) << longer;
  EXPECT_NE(longer.find("2001-02-03T04:05:06.000000001Z"), std::string::npos) << longer;
  auto j = nlohmann::json::parse(s.ok("ls --json " + root + "/sub"));
  auto links = j["Objects"][0]["Links"];
  ASSERT_EQ(links.size(), 3u);
  EXPECT_EQ(links[0]["Name"], "abs-link");
  EXPECT_EQ(links[0]["Type"], 4);
  EXPECT_EQ(links[0]["Target"], "/etc/passwd");
  EXPECT_EQ(links[1]["Name"], "big");
  EXPECT_EQ(links[1]["Size"], 3000000);
  EXPECT_EQ(links[1]["Mtime"], -315619200);
  EXPECT_EQ(links[1]["MtimeNsecs"], 123456789);
  EXPECT_EQ(links[2]["Type"], 1);
  EXPECT_EQ(links[2]["Mode"], "0700");
}

TEST(ContentCommands, BlockPutGetStatRm) {
  Sandbox s;
  sh("printf 'raw block' > " + shell_quote(s.path("b")));
  std::string cid = s.ok("block put " + shell_quote(s.path("b")));
  EXPECT_EQ(cid.substr(0, 4), "bafk");
  EXPECT_EQ(s.ok("block get " + cid), "raw block");
  EXPECT_EQ(s.ok("block stat " + cid), "Key: " + cid + "\nSize: 9");
  Result r = s.run("block put --cid-codec dag-pb " + shell_quote(s.path("b")));
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.err.find("dag-pb"), std::string::npos);
  EXPECT_NE(s.run("block put --mhtype md5 " + shell_quote(s.path("b"))).code, 0);
  s.ok("pin add " + cid);
  r = s.run("block rm " + cid);
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.err.find("pinned"), std::string::npos);
  EXPECT_EQ(s.ok("block rm --force " + cid), "removed " + cid);
  EXPECT_NE(s.run("block get " + cid).code, 0);
}

TEST(ContentCommands, PinsGcAndRepoStat) {
  Sandbox s;
  sh("printf one > " + shell_quote(s.path("one")) + " && printf two > " +
     shell_quote(s.path("two")));
  std::string kept = s.ok("add -Q " + shell_quote(s.path("one")));
  std::string loose = s.ok("add -Q --pin=false " + shell_quote(s.path("two")));
  EXPECT_EQ(s.ok("pin ls --type recursive"), kept + " recursive");
  auto j = nlohmann::json::parse(s.ok("pin ls --json"));
  EXPECT_EQ(j["Keys"][kept]["Type"], "recursive");
  std::string gc = s.ok("repo gc");
  // Store keys are multihashes: gc names them as CIDv1 raw, like kubo.
  EXPECT_EQ(gc.rfind("removed bafkrei", 0), 0u) << gc;
  EXPECT_EQ(std::count(gc.begin(), gc.end(), '\n'), 0) << gc;
  EXPECT_NE(s.run("cat " + loose).code, 0);
  EXPECT_EQ(s.ok("cat " + kept), "one");
  auto stat = nlohmann::json::parse(s.ok("repo stat --json"));
  EXPECT_EQ(stat["NumObjects"], 1);
  EXPECT_EQ(s.ok("pin rm " + kept), "unpinned " + kept);
  s.ok("repo gc");
  EXPECT_NE(s.ok("repo stat").find("NumObjects: 0"), std::string::npos);
  Result r = s.run("pin add " + loose);
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.err.find(loose), std::string::npos);
}

TEST(ContentCommands, VerifyDetectsCorruptionAndRepairs) {
  Sandbox s;
  sh("printf data > " + shell_quote(s.path("f")));
  std::string cid = s.ok("add -Q " + shell_quote(s.path("f")));
  EXPECT_EQ(s.run("repo verify").code, 0);
  sh("f=$(find " + shell_quote(s.repo() + "/blocks") +
     " -name '*.data' | head -1); chmod u+w $f; printf junk > $f");
  Result r = s.run("repo verify");
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.out.find("corrupt block"), std::string::npos) << r.out;
  r = s.run("repo verify --repair");
  EXPECT_NE(r.out.find("removed corrupt block"), std::string::npos);
  r = s.run("repo verify");  // now the pinned block is missing
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.out.find("missing block"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace cidrun::testing
