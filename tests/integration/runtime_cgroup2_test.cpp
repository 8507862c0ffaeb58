// The cgroup v2 backend on this host's real cgroup2 mount, forced with CIDRUN_TEST_CGROUP2_ROOT:
// on a hybrid host that mount (/sys/fs/cgroup/unified) has no controller but hugetlb, yet every
// core v2 feature works there: creating cgroups, moving processes (cgroup.procs), freezing
// (cgroup.freeze), killing (cgroup.kill), cgroup.events, eBPF device rules, and hugetlb limits.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/statfs.h>

#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "integration/runtime_helpers.h"

#ifndef CGROUP2_SUPER_MAGIC
#define CGROUP2_SUPER_MAGIC 0x63677270
#endif

using namespace rt_test;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

// The host's cgroup2 mount: /sys/fs/cgroup on a v2 host, /sys/fs/cgroup/unified on a hybrid one.
std::string cgroup2_root() {
  for (const char* dir : {"/sys/fs/cgroup", "/sys/fs/cgroup/unified"}) {
    struct statfs st {};
    if (::statfs(dir, &st) == 0 && st.f_type == CGROUP2_SUPER_MAGIC) return dir;
  }
  return "";
}

#define REQUIRE_CGROUP2()                                                      \
  if (cgroup2_root().empty()) GTEST_SKIP() << "no cgroup2 mount on this host"; \
  ASSERT_EQ(::geteuid(), 0u) << "needs root"

std::string v2() {
  return "CIDRUN_TEST_CGROUP2_ROOT=" + cgroup2_root() + " " + cidrun();
}

std::set<std::string> words(const std::string& text) {
  std::set<std::string> out;
  std::stringstream ss(text);
  std::string w;
  while (ss >> w) out.insert(w);
  return out;
}

std::string cgroup_of(const std::string& bundle_name) {
  return "/cidrun-test/" + std::to_string(::getpid()) + "-" + bundle_name;
}

int pid_of(const std::string& id) {
  Result r = sh(cidrun() + " state " + id);
  return r.code == 0 ? json::parse(r.out)["pid"].get<int>() : 0;
}

// Running or sleeping; a zombie waiting for whoever adopted it to reap it is dead.
bool alive(int pid) {
  std::string stat = slurp("/proc/" + std::to_string(pid) + "/stat");
  auto paren = stat.rfind(") ");
  return paren != std::string::npos && stat[paren + 2] != 'Z';
}

std::vector<int> procs(const std::string& dir) {
  std::vector<int> out;
  std::stringstream ss(slurp(dir + "/cgroup.procs"));
  int pid;
  while (ss >> pid) out.push_back(pid);
  return out;
}

long counter(const std::string& bundle) {
  try {
    return std::stol(slurp(bundle + "/rootfs/tmp/count"));
  } catch (const std::exception&) {
    return -1;
  }
}

}  // namespace

TEST(RuntimeCgroup2, LifecycleFreezesAndKillsThroughTheCgroup) {
  REQUIRE_CGROUP2();
  // The counter file is written by the container and read here, so the root is writable.
  std::string b = make_bundle(
      "v2life",
      {"/bin/sh", "-c", "i=0; while :; do i=$((i+1)); echo $i >/tmp/count; sleep 0.02; done"},
      [](json& c) { c["root"]["readonly"] = false; });
  const std::string dir = cgroup2_root() + cgroup_of("v2life");
  Result c = sh(v2() + " create -b " + b + " v2life");
  ASSERT_EQ(c.code, 0) << c.err;
  const int pid = pid_of("v2life");
  ASSERT_GT(pid, 0);

  // The init is in its own v2 cgroup, which the host sees and which cgroup.procs lists.
  EXPECT_EQ(procs(dir), std::vector<int>{pid});
  EXPECT_NE(slurp("/proc/" + std::to_string(pid) + "/cgroup").find("0::" + cgroup_of("v2life")),
            std::string::npos)
      << slurp("/proc/" + std::to_string(pid) + "/cgroup");
  EXPECT_NE(slurp(dir + "/cgroup.events").find("populated 1"), std::string::npos);

  ASSERT_EQ(sh(cidrun() + " start v2life").code, 0);
  ASSERT_TRUE(eventually([&] { return counter(b) > 2; })) << "the counter never ran";

  // pause: the kernel reports the cgroup frozen and the counter stops.
  Result p = sh(cidrun() + " pause v2life");
  ASSERT_EQ(p.code, 0) << p.err;
  EXPECT_EQ(status_of("v2life"), "paused");
  EXPECT_NE(slurp(dir + "/cgroup.events").find("frozen 1"), std::string::npos);
  EXPECT_EQ(slurp(dir + "/cgroup.freeze"), "1\n");
  const long frozen_at = counter(b);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_EQ(counter(b), frozen_at) << "the counter moved while paused";
  // /proc/PID/status cannot tell: the v2 freezer parks a task in a signal-delivery trap, which
  // shows as "S (sleeping)" like any sleep; the counter above is the proof.

  Result res = sh(cidrun() + " resume v2life");
  ASSERT_EQ(res.code, 0) << res.err;
  EXPECT_EQ(status_of("v2life"), "running");
  EXPECT_NE(slurp(dir + "/cgroup.events").find("frozen 0"), std::string::npos);
  EXPECT_TRUE(eventually([&] { return counter(b) > frozen_at + 2; })) << "still frozen";

  Result ps = sh(cidrun() + " ps --format json v2life");
  ASSERT_EQ(ps.code, 0) << ps.err;
  EXPECT_NE(ps.out.find(std::to_string(pid)), std::string::npos) << ps.out;

  // delete --force of a paused container: killed through cgroup.kill, the cgroup removed.
  ASSERT_EQ(sh(cidrun() + " pause v2life").code, 0);
  std::string log = work_dir() + "/v2life.log";
  Result del = sh(cidrun() + " --debug --log " + log + " delete --force v2life");
  ASSERT_EQ(del.code, 0) << del.err;
  EXPECT_NE(slurp(log).find("through cgroup.kill"), std::string::npos) << slurp(log);
  EXPECT_FALSE(fs::exists(dir)) << dir << " left behind";
  EXPECT_TRUE(eventually([&] { return !alive(pid); })) << "the init survived";
  EXPECT_NE(status_of("v2life").find("does not exist"), std::string::npos);
}

TEST(RuntimeCgroup2, WithoutAPidNamespaceEveryProcessDiesWithTheCgroup) {
  REQUIRE_CGROUP2();
  // Without its own pid namespace, the init's children outlive it unless the cgroup kills them.
  std::string b =
      make_bundle("v2nopid", {"/bin/sh", "-c", "sleep 1000 & sleep 1000 & wait"}, [](json& c) {
        auto& ns = c["linux"]["namespaces"];
        for (auto it = ns.begin(); it != ns.end();) {
          it = (*it)["type"] == "pid" ? ns.erase(it) : it + 1;
        }
      });
  const std::string dir = cgroup2_root() + cgroup_of("v2nopid");
  ASSERT_EQ(sh(v2() + " create -b " + b + " v2nopid").code, 0);
  ASSERT_EQ(sh(cidrun() + " start v2nopid").code, 0);
  ASSERT_TRUE(eventually([&] { return procs(dir).size() == 3; })) << slurp(dir + "/cgroup.procs");
  std::vector<int> all = procs(dir);
  // The init goes first: its children are reparented, still in the cgroup.
  ASSERT_EQ(sh(cidrun() + " kill v2nopid KILL").code, 0);
  ASSERT_TRUE(eventually([&] { return status_of("v2nopid") == "stopped"; }));
  EXPECT_EQ(procs(dir).size(), 2u);
  Result del = sh(cidrun() + " delete v2nopid");
  ASSERT_EQ(del.code, 0) << del.err;
  for (int pid : all) EXPECT_TRUE(eventually([&] { return !alive(pid); })) << pid << " survived";
  EXPECT_FALSE(fs::exists(dir));
}

TEST(RuntimeCgroup2, ALimitWhoseControllerIsMissingIsAOneLineError) {
  REQUIRE_CGROUP2();
  const std::set<std::string> has = words(slurp(cgroup2_root() + "/cgroup.controllers"));
  if (has.count("memory") != 0) GTEST_SKIP() << "this host's cgroup v2 has the memory controller";
  std::string have;
  for (const auto& c : has) have += (have.empty() ? "" : " ") + c;
  const std::string name = "v2mem-" + std::to_string(::getpid());
  Result r = sh(v2() + " run --rm --name " + name + " --memory 64m " + busybox_root() + " -- true");
  EXPECT_NE(r.code, 0);
  EXPECT_EQ(r.err,
            "cidrun: error: cgroup: linux.resources.memory needs the memory controller, "
            "which the cgroup v2 hierarchy at " +
                cgroup2_root() + " does not have (it has: " + (have.empty() ? "none" : have) +
                ")\n");
  EXPECT_FALSE(fs::exists(cgroup2_root() + "/cidrun/" + name)) << "cgroup left behind";
  EXPECT_EQ(sh(cidrun() + " list -q").out.find(name), std::string::npos);
  // Limits of controllers it has still work, and a run without limits runs.
  Result ok = sh(v2() + " run --rm " + busybox_root() + " -- /bin/echo fine");
  EXPECT_EQ(ok.code, 0) << ok.err;
  EXPECT_EQ(ok.out, "fine\n");
}

TEST(RuntimeCgroup2, HugetlbLimitIsWritten) {
  REQUIRE_CGROUP2();
  if (words(slurp(cgroup2_root() + "/cgroup.controllers")).count("hugetlb") == 0)
    GTEST_SKIP() << "no hugetlb controller in " << cgroup2_root();
  if (!fs::exists("/sys/kernel/mm/hugepages/hugepages-2048kB"))
    GTEST_SKIP() << "no 2 MB huge pages on this machine";
  auto limits = [](json& c) {
    c["linux"]["resources"]["hugepageLimits"] = {{{"pageSize", "2MB"}, {"limit", 4 << 20}}};
  };
  std::string b = make_bundle("v2huge", {"sleep", "30"}, limits);
  const std::string dir = cgroup2_root() + cgroup_of("v2huge");
  Result c = sh(v2() + " create -b " + b + " v2huge");
  ASSERT_EQ(c.code, 0) << c.err;
  EXPECT_EQ(slurp(dir + "/hugetlb.2MB.max"), std::to_string(4 << 20) + "\n");
  ASSERT_EQ(sh(cidrun() + " delete --force v2huge").code, 0);
  EXPECT_FALSE(fs::exists(dir));

  // The v1 backend of a hybrid host, where hugetlb is only on the v2 mount, says so.
  if (cgroup2_root() != "/sys/fs/cgroup" && !fs::exists("/sys/fs/cgroup/hugetlb")) {
    std::string v1 = make_bundle("v1huge", {"true"}, limits);
    Result r1 = sh(cidrun() + " create -b " + v1 + " v1huge");
    EXPECT_NE(r1.code, 0);
    EXPECT_EQ(r1.err,
              "cidrun: error: cgroup: the hugetlb controller is not mounted on this host\n");
  }

  // A bad page size names no file.
  std::string bad = make_bundle("v2hugebad", {"true"}, [](json& config) {
    config["linux"]["resources"]["hugepageLimits"] = {
        {{"pageSize", "../cgroup.procs"}, {"limit", 1}}};
  });
  Result r = sh(v2() + " create -b " + bad + " v2hugebad");
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.err.find("pageSize must be a number with KB, MB or GB"), std::string::npos) << r.err;
}

TEST(RuntimeCgroup2, DeviceRulesAreEnforcedByTheEbpfProgram) {
  REQUIRE_CGROUP2();
  // A block device bound into the container is outside the default allowed devices: the v2
  // device program must refuse opening it (no v1 devices cgroup is involved here).
  const std::string dev = "/dev/loop0";
  if (!fs::exists(dev)) GTEST_SKIP() << dev << " missing";
  Result r = sh(v2() + " run --rm --mount type=bind,src=" + dev + ",dst=/tmp/dev " +
                busybox_root() + " -- /bin/sh -c 'cat /tmp/dev >/dev/null; echo rc=$?'");
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("rc=1"), std::string::npos) << r.out;
  EXPECT_NE(r.err.find("Operation not permitted"), std::string::npos) << r.err;
  // The allowed ones open.
  Result ok = sh(v2() + " run --rm " + busybox_root() +
                 " -- /bin/sh -c 'head -c 3 /dev/zero | wc -c; echo x >/dev/null'");
  EXPECT_EQ(ok.code, 0) << ok.err;
  EXPECT_EQ(ok.out, "3\n");
}

// The init is born in its cgroup (clone3 CLONE_INTO_CGROUP): nothing moves it there, so no write
// to cgroup.procs waits on the kernel's cgroup_threadgroup_rwsem. With a namespace joined by
// path, an intermediate process clones the init and the runtime moves it in instead; either way
// the init ends up alone in the container's cgroup.
TEST(RuntimeCgroup2, TheInitIsClonedIntoItsCgroup) {
  REQUIRE_CGROUP2();
  for (bool join : {false, true}) {
    SCOPED_TRACE(join ? "joining the host's network namespace" : "new namespaces only");
    const std::string id = join ? "v2join" : "v2clone";
    std::string b = make_bundle(id, {"/bin/sleep", "60"}, [&](json& c) {
      if (!join) return;
      for (auto& ns : c["linux"]["namespaces"])
        if (ns["type"] == "network") ns["path"] = "/proc/" + std::to_string(::getpid()) + "/ns/net";
    });
    const std::string dir = cgroup2_root() + cgroup_of(id);
    std::string log = work_dir() + "/" + id + ".log";
    std::string create = v2();
    for (const std::string& part :
         {std::string(" --debug --log "), log, std::string(" create -b "), b, std::string(" "), id})
      create += part;
    Result c = sh(create);
    ASSERT_EQ(c.code, 0) << c.err;
    const int pid = pid_of(id);
    ASSERT_GT(pid, 0);
    EXPECT_EQ(procs(dir), std::vector<int>{pid});
    EXPECT_EQ(slurp(log).find("init cloned into " + cgroup_of(id)) != std::string::npos, !join)
        << slurp(log);
    ASSERT_EQ(sh(cidrun() + " delete --force " + id).code, 0);
    EXPECT_FALSE(fs::exists(dir)) << dir << " left behind";
  }
}
