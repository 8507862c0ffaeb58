// runc's form of run: `run -b BUNDLE [-d] [--pid-file F] [--keep] ID`, beside `run ROOT`.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "integration/runtime_helpers.h"

using namespace rt_test;
using nlohmann::json;

TEST(RuntimeRunBundle, ForegroundReturnsTheExitStatusAndLeavesNoState) {
  std::string b = make_bundle("fg", {"sh", "-c",
                                     "echo from $(hostname); read x; echo got $x; "
                                     "exit 3"});
  // As with runc, the container's stdin is the caller's.
  Result r = sh("echo line | " + cidrun() + " run -b " + b + " fg1");
  EXPECT_EQ(r.code, 3) << r.err;
  EXPECT_EQ(r.out, "from cidrun\ngot line\n");
  EXPECT_NE(status_of("fg1").find("does not exist"), std::string::npos);
}

TEST(RuntimeRunBundle, KeepLeavesTheStoppedContainerForDelete) {
  std::string b = make_bundle("keep", {"true"});
  ASSERT_EQ(sh(cidrun() + " run --keep --bundle " + b + " k1").code, 0);
  EXPECT_EQ(status_of("k1"), "stopped");
  EXPECT_EQ(sh(cidrun() + " delete k1").code, 0);
}

TEST(RuntimeRunBundle, DetachLeavesItRunningWithItsPidFile) {
  std::string b = make_bundle("detach", {"sleep", "30"});
  std::string pid_file = work_dir() + "/detach.pid";
  Result r = sh(cidrun() + " run -d -b " + b + " --pid-file " + pid_file + " d1");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(status_of("d1"), "running");
  json st = json::parse(sh(cidrun() + " state d1").out);
  EXPECT_EQ(std::to_string(st["pid"].get<int>()), slurp(pid_file));
  EXPECT_EQ(sh(cidrun() + " delete -f d1").code, 0);
}

TEST(RuntimeRunBundle, MisuseIsOneLine) {
  std::string b = make_bundle("misuse", {"true"});
  Result r = sh(cidrun() + " run -b " + b + " x1 -- /bin/echo");
  EXPECT_NE(r.code, 0);
  EXPECT_EQ(r.err, "cidrun: error: run -b BUNDLE ID takes no command: the bundle's is run\n");
}
