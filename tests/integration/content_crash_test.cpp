// kill -9 at random moments during `add` and `dag import`, each followed by `repo verify`: a
// crash may lose work but must never leave a corrupt block (temp + rename writes, staging for
// imports), and gc must clean up what a dead import left behind.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>

#include <chrono>
#include <random>
#include <thread>

#include "integration/content_helpers.h"

extern char** environ;

namespace cidrun::testing {
namespace {

constexpr int kKills = 30;

pid_t spawn(const std::vector<std::string>& args) {
  std::vector<char*> argv;
  argv.reserve(args.size() + 1);
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
  pid_t pid = -1;
  int rc = posix_spawn(&pid, argv[0], &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  return rc == 0 ? pid : -1;
}

// Runs the command to completion once and returns how long it took.
std::chrono::microseconds time_run(const std::vector<std::string>& args) {
  auto start = std::chrono::steady_clock::now();
  pid_t pid = spawn(args);
  int status = 0;
  ::waitpid(pid, &status, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() -
                                                               start);
}

void kill_at_random_moments(const Sandbox& s, const std::vector<std::string>& args,
                            const char* what) {
  auto full = time_run(args);
  std::mt19937 rng(12345);
  int killed_mid_run = 0;
  // Until kKills kills landed mid-run (a loaded machine makes run times vary), at most 3x tries.
  for (int i = 0; killed_mid_run < kKills && i < 3 * kKills; ++i) {
    // Fresh repo each time half of the runs, so both first writes and re-writes get interrupted.
    if (i % 2 == 0) std::system(("rm -rf " + shell_quote(s.repo())).c_str());
    std::uniform_int_distribution<long> delay(0, full.count() * 3 / 4);
    pid_t pid = spawn(args);
    ASSERT_GT(pid, 0);
    std::this_thread::sleep_for(std::chrono::microseconds(delay(rng)));
    ::kill(pid, SIGKILL);
    int status = 0;
    ::waitpid(pid, &status, 0);
    if (WIFSIGNALED(status)) ++killed_mid_run;
    if (!fs::exists(s.repo() + "/blocks/SHARDING")) continue;  // killed before the repo existed
    Result r = s.run("repo verify");
    ASSERT_EQ(r.code, 0) << what << " kill #" << i << ": " << r.out << r.err;
  }
  EXPECT_GE(killed_mid_run, kKills / 2) << "the kills should land during the run";
}

// src/ in the sandbox: 40 files of random bytes, 50 kB to 2 MB (about 41 MB in all).
std::string make_random_files(const Sandbox& s) {
  std::string src = s.path("src");
  std::system(("mkdir -p " + shell_quote(src) + " && cd " + shell_quote(src) +
               " && for i in $(seq 1 40); do head -c $((i * 50000)) /dev/urandom > f$i; done")
                  .c_str());
  return src;
}

TEST(ContentCrash, KillDuringAddNeverLeavesACorruptBlock) {
  Sandbox s;
  std::string src = make_random_files(s);
  kill_at_random_moments(s, {CIDRUN_BINARY, "--repo-dir", s.repo(), "add", "-r", "-Q", src}, "add");
}

TEST(ContentCrash, KillDuringDagImportNeverLeavesACorruptBlockAndGcCleansUp) {
  Sandbox s;
  std::string src = make_random_files(s);
  std::string maker = s.path("maker");
  std::string root = s.ok("add -r -Q " + shell_quote(src), maker);
  s.ok("dag export " + root + " -o " + shell_quote(s.path("x.car")), maker);
  kill_at_random_moments(
      s, {CIDRUN_BINARY, "--repo-dir", s.repo(), "dag", "import", s.path("x.car")}, "dag import");
  // Whatever a killed import left in tmp/ belongs to a dead pid: gc removes it.
  if (fs::exists(s.repo() + "/blocks/SHARDING")) {
    s.ok("repo gc");
    EXPECT_TRUE(!fs::exists(s.repo() + "/tmp") || fs::is_empty(s.repo() + "/tmp"));
    s.ok("dag import " + shell_quote(s.path("x.car")));
    EXPECT_EQ(s.run("repo verify").code, 0);
  }
}

}  // namespace
}  // namespace cidrun::testing
