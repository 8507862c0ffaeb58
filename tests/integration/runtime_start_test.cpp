// create and start (the runtime spec's lifecycle): everything that can fail fails in `create`,
// and when `start` returns the container's program runs.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <climits>
#include <nlohmann/json.hpp>

#include "integration/runtime_helpers.h"

using namespace rt_test;
using nlohmann::json;

namespace {

int pid_of(const std::string& id) {
  return json::parse(sh(cidrun() + " state " + id).out)["pid"].get<int>();
}

std::string exe_of(int pid) {
  char buf[PATH_MAX];
  ssize_t n = ::readlink(("/proc/" + std::to_string(pid) + "/exe").c_str(), buf, sizeof buf);
  return n < 0 ? "" : std::string(buf, static_cast<size_t>(n));
}

// create must fail with `want` in its error, leaving no container behind.
void expect_create_fails(const std::string& bundle, const std::string& id,
                         const std::string& want) {
  Result r = sh(cidrun() + " create -b " + bundle + " " + id);
  EXPECT_NE(r.code, 0) << "create succeeded";
  EXPECT_NE(r.err.find(want), std::string::npos) << r.err;
  EXPECT_NE(status_of(id).find("does not exist"), std::string::npos);
}

}  // namespace

// The spec: a value that cannot be mapped to a kernel interface is an error of `create`.
TEST(RuntimeStart, UnknownRlimitFailsCreate) {
  std::string b = make_bundle("rlimit", {"true"}, [](json& c) {
    c["process"]["rlimits"] = {{{"type", "RLIMIT_TEST"}, {"hard", 1024}, {"soft", 1024}}};
  });
  expect_create_fails(b, "r1", "unknown rlimit \"RLIMIT_TEST\"");
}

// The process's own setup (working directory, the program's lookup as its user) happens before
// `create` returns, so its errors are create's and no dead container is left "created".
TEST(RuntimeStart, ProcessSetupErrorsFailCreate) {
  std::string b = make_bundle("nocwd", {"true"}, [](json& c) { c["process"]["cwd"] = "/nowhere"; });
  expect_create_fails(b, "c1", "cwd /nowhere");
  // Executable by root only: the lookup runs as the process's user.
  b = make_bundle("rootonly", {"/rootonly"}, [](json& c) {
    c["process"]["user"] = {{"uid", 1000}, {"gid", 1000}};
  });
  write_file(b + "/rootfs/rootonly", "#!/bin/sh\n");
  sh("chmod 0700 " + b + "/rootfs/rootonly");
  expect_create_fails(b, "c2", "exec: \"/rootonly\": permission denied");
}

// The spec: `start` runs the program; once it returns, the program runs. The init's fd of the
// exec fifo closes at its execve, which `start` waits for: the init is the program then, not the
// runtime's code, so a signal sent right away is the program's to handle.
TEST(RuntimeStart, WhenStartReturnsTheProgramRuns) {
  std::string b = make_bundle("runs", {"sleep", "30"});
  ASSERT_EQ(sh(cidrun() + " create -b " + b + " s1").code, 0);
  int pid = pid_of("s1");
  // The path as the container's mount namespace names it.
  EXPECT_NE(exe_of(pid), "/bin/busybox") << "the program ran before start";
  ASSERT_EQ(sh(cidrun() + " start s1").code, 0);
  EXPECT_EQ(exe_of(pid), "/bin/busybox");
  EXPECT_EQ(sh(cidrun() + " delete -f s1").code, 0);
}

// The spec: poststart hooks run after the program started, before `start` returns.
TEST(RuntimeStart, PoststartHooksSeeTheProgramRunning) {
  std::string seen = work_dir() + "/poststart.exe";
  std::string b = make_bundle("poststart", {"sleep", "30"}, [&](json& c) {
    // The hook reads the state from stdin and records what the container's init runs.
    std::string script =
        "pid=$(sed -n 's/.*\"pid\":\\([0-9]*\\).*/\\1/p'); readlink /proc/$pid/exe >" + seen;
    c["hooks"]["poststart"] = {{{"path", "/bin/sh"}, {"args", {"sh", "-c", script}}}};
  });
  ASSERT_EQ(sh(cidrun() + " create -b " + b + " p1").code, 0);
  ASSERT_EQ(sh(cidrun() + " start p1").code, 0);
  EXPECT_EQ(chomp(slurp(seen)), "/bin/busybox");
  EXPECT_EQ(sh(cidrun() + " delete -f p1").code, 0);
}

// A signal sent as soon as `start` returned reaches the program's own handler.
TEST(RuntimeStart, KillRightAfterStartReachesTheProgram) {
  std::string b = make_bundle("killsig", {"sh", "-c",
                                          "trap 'echo got TERM; exit 3' TERM; "
                                          "echo ready; while :; do sleep 0.01; done"});
  std::string out = work_dir() + "/killsig.out";
  ASSERT_EQ(sh(cidrun() + " create -b " + b + " k1 >" + out).code, 0);
  ASSERT_EQ(sh(cidrun() + " start k1").code, 0);
  // The shell installs its trap after it started; it says so.
  ASSERT_TRUE(wait_for_text(out, "ready")) << slurp(out);
  ASSERT_EQ(sh(cidrun() + " kill k1 TERM").code, 0);
  EXPECT_TRUE(wait_status("k1", "stopped"));
  EXPECT_TRUE(wait_for_text(out, "got TERM")) << slurp(out);
  EXPECT_EQ(sh(cidrun() + " delete k1").code, 0);
}

// In a user namespace the init is the container's root, which has no right to the exec fifo
// in the runtime's state directory: it waits on an fd the runtime opened for it.
TEST(RuntimeStart, UserNamespaceContainerStarts) {
  std::string b = make_bundle("userns", {"sleep", "30"}, [](json& c) {
    c["linux"]["namespaces"].push_back({{"type", "user"}});
    c["linux"]["uidMappings"] = {{{"containerID", 0}, {"hostID", 100000}, {"size", 65536}}};
    c["linux"]["gidMappings"] = {{{"containerID", 0}, {"hostID", 100000}, {"size", 65536}}};
  });
  ASSERT_EQ(sh(cidrun() + " create -b " + b + " u1").code, 0);
  EXPECT_EQ(status_of("u1"), "created");
  ASSERT_EQ(sh(cidrun() + " start u1").code, 0) << status_of("u1");
  EXPECT_EQ(status_of("u1"), "running");
  Result r = sh(cidrun() + " exec u1 cat /proc/1/uid_map");
  EXPECT_EQ(r.out, "         0     100000      65536\n") << r.err;
  EXPECT_EQ(sh(cidrun() + " delete -f u1").code, 0);
}

// A `start` whose init died meanwhile is an error, not a container said to be running.
TEST(RuntimeStart, StartOfAnInitThatDiedIsAnError) {
  std::string b = make_bundle("died", {"sleep", "30"});
  ASSERT_EQ(sh(cidrun() + " create -b " + b + " d1").code, 0);
  ASSERT_EQ(::kill(pid_of("d1"), SIGKILL), 0);
  EXPECT_TRUE(wait_status("d1", "stopped"));
  Result r = sh(cidrun() + " start d1");
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.err.find("not created"), std::string::npos) << r.err;
  EXPECT_EQ(sh(cidrun() + " delete d1").code, 0);
}
