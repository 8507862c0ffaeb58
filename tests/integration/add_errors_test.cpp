// `cidrun add` on bad input: one clear error line, a non-zero exit, nothing pinned, and a store
// that still verifies.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>
#include <utility>

#include "integration/content_helpers.h"

namespace cidrun::testing {
namespace {

void expect_one_line_error(const Result& r, const std::string& needle) {
  EXPECT_NE(r.code, 0);
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_NE(r.err.find(needle), std::string::npos) << "stderr: " << r.err;
}

void expect_store_consistent(const Sandbox& sb) {
  Result pins = sb.run("pin ls");
  EXPECT_EQ(pins.code, 0) << pins.err;
  EXPECT_EQ(pins.out, "") << "a failed add must pin nothing";
  Result v = sb.run("repo verify");
  EXPECT_EQ(v.code, 0) << v.out << v.err;
}

TEST(AddErrors, MissingPathNamesIt) {
  Sandbox sb;
  expect_one_line_error(sb.run("add -r " + shell_quote(sb.path("nope"))), "nope");
  expect_store_consistent(sb);
}

// Issue 15: a newline or an escape sequence in an argument was echoed raw, so one error could
// print two lines or drive the terminal.
TEST(AddErrors, ControlCharactersInArgumentsStayOnOneLine) {
  Sandbox sb;
  Result r = sb.run("cat " + shell_quote("foo\nbar\x1b[2J"));
  EXPECT_NE(r.code, 0);
  EXPECT_EQ(r.err, "cidrun: error: invalid CID 'foo\\x0abar\\x1b[2J': invalid hex digit\n");
  r = sb.run("add " + shell_quote(sb.path("no\nsuch\x1b[31m")));
  expect_one_line_error(r, "no\\x0asuch\\x1b[31m");
}

TEST(AddErrors, DirectoryWithoutRecursive) {
  Sandbox sb;
  fs::create_directories(sb.path("d"));
  expect_one_line_error(sb.run("add " + shell_quote(sb.path("d"))), "-r");
}

TEST(AddErrors, SpecialFilesAreRefusedByPath) {
  Sandbox sb;
  fs::create_directories(sb.path("tree/sub"));
  std::ofstream(sb.path("tree/a")) << "a";
  ASSERT_EQ(::mkfifo(sb.path("tree/sub/fifo").c_str(), 0600), 0);
  // Files before the fifo may already be printed (kubo streams its output too); nothing is pinned.
  expect_one_line_error(sb.run("add -r " + shell_quote(sb.path("tree"))), "tree/sub/fifo");
  expect_store_consistent(sb);
}

TEST(AddErrors, BadFlagsAreRejectedBeforeAnyWork) {
  Sandbox sb;
  std::ofstream(sb.path("f")) << "x";
  std::string f = " " + shell_quote(sb.path("f"));
  // The flags, and what their one-line error must say.
  const std::pair<const char*, const char*> cases[] = {
      {"--cid-version 2", "CID version"},
      {"--chunker size-0", "chunker"},
      {"--chunker size-3000000", "maximum chunk size"},
      {"--chunker rabin-1-2-3", "rabin"},
      {"--chunker bogus", "bogus"},
      {"--raw-leaves --preserve-mode", "raw-leaves"},
      {"--profile unixfs-v1-2025 --mtime 5", "raw-leaves"},
      {"--profile nope", "profile"},
      {"--hamt-threshold 12parsecs", "size"},
      {"--mode 9999", "mode"},
      {"--mtime-nsecs 5", "--mtime"},
      {"--max-file-links 1", "links"},
  };
  for (const auto& [flags, says] : cases) {
    SCOPED_TRACE(flags);
    expect_one_line_error(sb.run(std::string("add ") + flags + f), says);
  }
}

TEST(AddErrors, FileGrowingWhileReadIsRefused) {
  Sandbox sb;
  std::string path = sb.path("growing");
  {
    std::ofstream out(path, std::ios::binary);
    std::string mib(1 << 20, 'x');
    for (int i = 0; i < 64; ++i) out << mib;
  }
  // A writer appends for the whole time add reads the file; the size cidrun saw before reading
  // and after reading then differ.
  std::string writer =
      "sh -c 'end=$(($(date +%s) + 20)); while [ $(date +%s) -lt $end ]; do echo y >> " +
      shell_quote(path) + "; done' & echo $!";
  FILE* p = ::popen(writer.c_str(), "r");
  ASSERT_NE(p, nullptr);
  char pid[32] = {};
  ASSERT_NE(std::fgets(pid, sizeof pid, p), nullptr);
  ::pclose(p);
  ::usleep(100000);
  Result r = sb.run("add -Q " + shell_quote(path));
  std::system(("kill " + std::string(pid)).c_str());
  expect_one_line_error(r, "changed while being added");
  expect_store_consistent(sb);
}

}  // namespace
}  // namespace cidrun::testing
