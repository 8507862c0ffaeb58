// linux.resources as the container sees them in its cgroup.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "integration/runtime_helpers.h"

using namespace rt_test;
using nlohmann::json;

// memory.kernelTCP is honoured where cgroup v1 still has its file, an error where it does not.
TEST(RuntimeResources, KernelTcpLimitIsWrittenOnCgroupV1) {
  std::string b =
      make_bundle("kmemtcp", {"cat", "/sys/fs/cgroup/memory/memory.kmem.tcp.limit_in_bytes"},
                  [](json& c) { c["linux"]["resources"]["memory"]["kernelTCP"] = 50593792; });
  Result r = sh(cidrun() + " run -b " + b + " t1");
  if (::access("/sys/fs/cgroup/memory/memory.kmem.tcp.limit_in_bytes", F_OK) == 0) {
    EXPECT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(r.out, "50593792\n") << r.err;
  } else {
    EXPECT_NE(r.code, 0);
    EXPECT_NE(r.err.find("memory.kernelTCP"), std::string::npos) << r.err;
  }
}

// runc update, as containerd's shim calls it (`update --resources -`, linux.resources on stdin)
// and with runc's single-field flags: the container's cgroup gets the new limits, and bad input
// is one line with nothing changed.
TEST(RuntimeResources, UpdateChangesTheLimitsOfARunningContainer) {
  std::string b = make_bundle("update", {"sleep", "60"});
  ASSERT_EQ(sh(cidrun() + " create -b " + b + " up1").code, 0);
  ASSERT_EQ(sh(cidrun() + " start up1").code, 0);
  // Seen from inside: the container's own cgroup (v1 file, else v2's).
  auto inside = [](const std::string& v1, const std::string& v2) {
    return chomp(sh(cidrun() + " exec up1 sh -c 'cat /sys/fs/cgroup/" + v1 +
                    " 2>/dev/null || cat /sys/fs/cgroup/" + v2 + "'")
                     .out);
  };
  // containerd sends the whole linux.resources, device rules included: those stay as created.
  Result r =
      sh("echo '{\"memory\":{\"limit\":67108864},\"pids\":{\"limit\":50},"
         "\"devices\":[{\"allow\":false,\"access\":\"rwm\"}]}' | " +
         cidrun() + " update --resources - up1");
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(inside("memory/memory.limit_in_bytes", "memory.max"), "67108864");
  EXPECT_EQ(inside("pids/pids.max", "pids.max"), "50");
  EXPECT_EQ(sh(cidrun() + " exec up1 sh -c 'echo x >/dev/null'").code, 0);
  r = sh(cidrun() + " update --pids-limit 20 --cpu-period 100000 --cpu-quota 50000 up1");
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(inside("pids/pids.max", "pids.max"), "20");
  EXPECT_EQ(inside("cpu/cpu.cfs_quota_us", "cpu.max"),
            ::access("/sys/fs/cgroup/cpu", F_OK) == 0 ? "50000" : "50000 100000");
  // The saved config carries what is in force (exec and a later update start from it).
  nlohmann::json saved = nlohmann::json::parse(slurp(work_dir() + "/state/up1/config.json"));
  EXPECT_EQ(saved["linux"]["resources"]["pids"]["limit"], 20);
  EXPECT_EQ(saved["linux"]["resources"]["memory"]["limit"], 67108864);

  r = sh(cidrun() + " update up1");
  EXPECT_EQ(r.err, "cidrun: error: update: nothing to change (give --resources or a limit flag)\n");
  r = sh("echo '[1]' | " + cidrun() + " update -r - up1");
  EXPECT_EQ(r.err, "cidrun: error: update: --resources - must hold a JSON object\n");
  r = sh("echo '{\"pids\":{\"limit\":\"many\"}}' | " + cidrun() + " update -r - up1");
  EXPECT_NE(r.code, 0);
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_EQ(inside("pids/pids.max", "pids.max"), "20");
  ASSERT_EQ(sh(cidrun() + " delete -f up1").code, 0);
  r = sh(cidrun() + " update --memory 1 up1");
  EXPECT_EQ(r.err, "cidrun: error: container \"up1\" does not exist\n");
}

// --systemd-cgroup (containerd's SystemdCgroup = true): cgroupsPath is slice:prefix:name and the
// container's cgroup is the one systemd gives that unit; any other shape is refused at once.
TEST(RuntimeResources, SystemdCgroupPathIsWhereSystemdPutsTheUnit) {
  std::string slice = "cidruntest" + std::to_string(::getpid()) + ".slice";
  std::string b = make_bundle("sdcg", {"cat", "/proc/self/cgroup"}, [&](json& c) {
    c["linux"]["cgroupsPath"] = slice + ":cidrun-test:sd1";
    auto& ns = c["linux"]["namespaces"];
    ns.erase(
        std::remove_if(ns.begin(), ns.end(), [](const json& n) { return n["type"] == "cgroup"; }),
        ns.end());  // the host's view of the path
  });
  Result r = sh(cidrun() + " --systemd-cgroup run -b " + b + " sd1");
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find(":/" + slice + "/cidrun-test-sd1.scope\n"), std::string::npos) << r.out;

  std::string bad = make_bundle("sdcg-bad", {"true"},
                                [](json& c) { c["linux"]["cgroupsPath"] = "/not/systemd"; });
  Result refused = sh(cidrun() + " --systemd-cgroup run -b " + bad + " sd2");
  EXPECT_NE(refused.code, 0);
  EXPECT_NE(refused.err.find("slice:prefix:name"), std::string::npos) << refused.err;
  EXPECT_EQ(std::count(refused.err.begin(), refused.err.end(), '\n'), 1) << refused.err;
  EXPECT_EQ(sh(cidrun() + " state sd2").code, 1) << "a refused container left state";
  sh("rmdir /sys/fs/cgroup/*/" + slice + " /sys/fs/cgroup/" + slice + " 2>/dev/null");
}
