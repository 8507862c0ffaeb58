// cgroup v1 is exercised for real (root, on a host with v1 hierarchies under /sys/fs/cgroup);
// cgroup v2 against a fake cgroupfs tree in a temp directory, checking the values written.
#include "runtime/cgroups.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>

#include "util/error.h"

namespace cidrun::runtime {
namespace {

namespace fs = std::filesystem;

std::string slurp(const fs::path& path) {
  std::ifstream in(path);
  std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

void put(const fs::path& path, const std::string& content) {
  fs::create_directories(path.parent_path());
  std::ofstream(path) << content;
}

template <typename Fn>
std::string error_of(Fn fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

TEST(CgroupPaths, ResolveAndRefuseEscapes) {
  EXPECT_EQ(cgroupfs::resolve_path("", "abc", "/"), "/cidrun/abc");
  EXPECT_EQ(cgroupfs::resolve_path("/a//b/", "abc", "/x"), "/a/b");
  EXPECT_EQ(cgroupfs::resolve_path("rel/c", "abc", "/user.slice"), "/user.slice/rel/c");
  EXPECT_EQ(cgroupfs::resolve_path("rel", "abc", "/"), "/rel");
  EXPECT_NE(
      error_of([] { cgroupfs::resolve_path("/a/../../b", "x", "/"); }).find("must not contain .."),
      std::string::npos);
  EXPECT_NE(error_of([] { cgroupfs::resolve_path("/", "x", "/"); }).find("root cgroup"),
            std::string::npos);
  const std::string self = "4:memory:/process_api/abc\n3:cpu,cpuacct:/c\n0::/unified/x\n";
  EXPECT_EQ(cgroupfs::own_cgroup(self, "memory"), "/process_api/abc");
  EXPECT_EQ(cgroupfs::own_cgroup(self, "cpuacct"), "/c");
  EXPECT_EQ(cgroupfs::own_cgroup(self, ""), "/unified/x");
  EXPECT_EQ(cgroupfs::own_cgroup(self, "pids"), "/");
}

// --systemd-cgroup: where systemd puts slice:prefix:name (runc's and crun's conversion).
TEST(CgroupPaths, SystemdSliceScopeAndName) {
  EXPECT_EQ(systemd_cgroup_path("system.slice:docker:abc", "x"), "/system.slice/docker-abc.scope");
  EXPECT_EQ(systemd_cgroup_path("kubepods-besteffort-pod12.slice:cri-containerd:c1", "x"),
            "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod12.slice/"
            "cri-containerd-c1.scope");
  EXPECT_EQ(systemd_cgroup_path(":cidrun:c2", "x"), "/system.slice/cidrun-c2.scope");
  EXPECT_EQ(systemd_cgroup_path("-.slice::c3", "x"), "/c3.scope");
  EXPECT_EQ(systemd_cgroup_path("", "id9"), "/system.slice/cidrun-id9.scope");
  EXPECT_EQ(systemd_cgroup_path("system.slice:p:my-app.slice", "x"), "/my.slice/my-app.slice");
  for (const char* bad : {"/plain/path", "a:b", "a:b:c:d", "notaslice:p:n", "a--b.slice:p:n",
                          "-a.slice:p:n", "a-.slice:p:n", "system.slice:p:", "system.slice:p:a/b",
                          "system.slice:p/q:n", "a/b.slice:p:n"}) {
    EXPECT_THROW(systemd_cgroup_path(bad, "x"), Error) << bad;
  }
}

TEST(CgroupPaths, SharesToWeightAsRuncAndCrun) {
  EXPECT_EQ(cpu_shares_to_weight(0), 0u);
  EXPECT_EQ(cpu_shares_to_weight(2), 1u);
  EXPECT_EQ(cpu_shares_to_weight(1024), 39u);
  EXPECT_EQ(cpu_shares_to_weight(262144), 10000u);
  EXPECT_EQ(cpu_shares_to_weight(1), 1u);
}

const char* kHybridMountinfo =
    "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
    "32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n"
    "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
    "40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd\n"
    "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";

TEST(CgroupDetect, HybridIsV1PureIsV2NoneIsAnError) {
  EXPECT_EQ(detect_cgroup_version({"/sys/fs/cgroup", kHybridMountinfo, ""}), CgroupVersion::kV1);
  EXPECT_EQ(
      detect_cgroup_version(
          {"/sys/fs/cgroup", "30 23 0:26 / /sys/fs/cgroup rw shared:4 - cgroup2 cgroup2 rw\n", ""}),
      CgroupVersion::kV2);
  EXPECT_EQ(detect_cgroup_version(
                {"/sys/fs/cgroup", "31 23 0:28 / /sys/fs/cgroup rw - tmpfs tmpfs rw\n", ""}),
            CgroupVersion::kNone);
  EXPECT_NE(error_of([] {
              CgroupManager::create(
                  "", "x", CgroupHost{"/sys/fs/cgroup", "1 0 0:1 / / rw - ext4 x rw\n", "0::/\n"});
            }).find("no cgroup filesystem is mounted"),
            std::string::npos);
}

TEST(CgroupDisabled, DoesNothingAndRoundTrips) {
  auto m = CgroupManager::create("", "abc", true);
  m->apply(getpid());
  m->set_resources({{"memory", {{"limit", 1}}}});
  EXPECT_TRUE(m->pids().empty());
  EXPECT_EQ(m->path(), "");
  auto reopened = CgroupManager::open(m->save());
  EXPECT_EQ(reopened->save(), m->save());
  EXPECT_NE(error_of([&] { m->freeze(); }).find("no cgroup"), std::string::npos);
  EXPECT_NE(error_of([] {
              CgroupManager::open({{"version", 7}});
            }).find("not understood"),
            std::string::npos);
}

// ---- cgroup v1, for real ----

class CgroupV1Test : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(geteuid(), 0u) << "cgroup v1 tests create real cgroups and need root";
    if (detect_cgroup_version() != CgroupVersion::kV1) {
      GTEST_SKIP() << "this host does not use cgroup v1 (v2 is covered by the fake-tree tests)";
    }
    path_ = "/cidrun-test-" + std::to_string(getpid());
    child_ = fork();
    if (child_ == 0) {
      for (;;) pause();
    }
  }
  void TearDown() override {
    if (child_ > 0) {
      kill(child_, SIGKILL);
      waitpid(child_, nullptr, 0);
    }
    if (manager_) {
      try {
        manager_->destroy();
      } catch (const Error&) {
      }
    }
  }
  std::string dir(const char* controller) const {
    return std::string("/sys/fs/cgroup/") + controller + path_;
  }

  std::string path_;
  pid_t child_ = -1;
  std::unique_ptr<CgroupManager> manager_;
};

TEST_F(CgroupV1Test, LimitsFreezeAndDestroy) {
  manager_ = CgroupManager::create(path_, "unused");
  EXPECT_EQ(manager_->path(), path_);
  manager_->apply(child_);
  // A new cpuset cgroup inherits the parent's cpus and mems, or nothing could run in it.
  EXPECT_EQ(slurp(dir("cpuset") + "/cpuset.cpus"), slurp("/sys/fs/cgroup/cpuset/cpuset.cpus"));
  EXPECT_EQ(slurp(dir("cpuset") + "/cpuset.mems"), slurp("/sys/fs/cgroup/cpuset/cpuset.mems"));

  manager_->set_resources({
      {"memory", {{"limit", 64 << 20}, {"reservation", 32 << 20}, {"swap", 128 << 20}}},
      {"pids", {{"limit", 32}}},
      {"cpu", {{"shares", 512}, {"quota", 50000}, {"period", 100000}, {"cpus", "0"}}},
      {"devices",
       {{{"allow", false}, {"access", "rwm"}},
        {{"allow", true}, {"type", "c"}, {"major", 1}, {"minor", 3}, {"access", "rwm"}},
        {{"allow", true}, {"type", "c"}, {"major", 136}, {"access", "rw"}}}},
  });
  EXPECT_EQ(slurp(dir("memory") + "/memory.limit_in_bytes"), std::to_string(64 << 20));
  EXPECT_EQ(slurp(dir("memory") + "/memory.soft_limit_in_bytes"), std::to_string(32 << 20));
  EXPECT_EQ(slurp(dir("memory") + "/memory.memsw.limit_in_bytes"), std::to_string(128 << 20));
  EXPECT_EQ(slurp(dir("pids") + "/pids.max"), "32");
  EXPECT_EQ(slurp(dir("cpu") + "/cpu.shares"), "512");
  EXPECT_EQ(slurp(dir("cpu") + "/cpu.cfs_quota_us"), "50000");
  EXPECT_EQ(slurp(dir("cpu") + "/cpu.cfs_period_us"), "100000");
  EXPECT_EQ(slurp(dir("cpuset") + "/cpuset.cpus"), "0");
  EXPECT_EQ(slurp(dir("devices") + "/devices.list"), "c 1:3 rwm\nc 136:* rw");

  // Lowering memory+swap below the old values must order the writes correctly.
  manager_->set_resources({{"memory", {{"limit", 16 << 20}, {"swap", 16 << 20}}}});
  EXPECT_EQ(slurp(dir("memory") + "/memory.limit_in_bytes"), std::to_string(16 << 20));
  EXPECT_EQ(slurp(dir("memory") + "/memory.memsw.limit_in_bytes"), std::to_string(16 << 20));
  manager_->set_resources({{"memory", {{"limit", -1}}}, {"pids", {{"limit", -1}}}});
  EXPECT_EQ(slurp(dir("pids") + "/pids.max"), "max");

  auto pids = manager_->pids();
  EXPECT_EQ(pids, std::vector<pid_t>{child_});
  auto stats = manager_->stats();
  EXPECT_EQ(stats["pids"]["current"], 1);
  // The child's pages stay charged where they were faulted in, so usage may well be 0 here.
  EXPECT_TRUE(stats["memory"]["usage"].contains("usage")) << stats.dump();
  EXPECT_TRUE(stats["cpu"]["usage"].contains("total"));

  manager_->freeze();
  EXPECT_EQ(slurp(dir("freezer") + "/freezer.state"), "FROZEN");
  // Another cidrun process (state, resume) reopens the same cgroup from the saved state.
  auto reopened = CgroupManager::open(nlohmann::json::parse(manager_->save().dump()));
  EXPECT_EQ(reopened->path(), path_);
  reopened->thaw();
  EXPECT_EQ(slurp(dir("freezer") + "/freezer.state"), "THAWED");
  EXPECT_EQ(reopened->pids(), std::vector<pid_t>{child_});

  reopened->kill_all(SIGKILL);
  int status = 0;
  ASSERT_EQ(waitpid(child_, &status, 0), child_);
  child_ = -1;
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
  reopened->destroy();
  for (const char* c : {"memory", "pids", "cpu", "cpuset", "freezer", "devices", "systemd"}) {
    EXPECT_FALSE(fs::exists(dir(c))) << dir(c);
  }
  reopened->destroy();  // already gone: fine
  manager_.reset();
}

TEST_F(CgroupV1Test, DestroyKillsLeftoverProcesses) {
  manager_ = CgroupManager::create(path_, "unused");
  manager_->apply(child_);
  manager_->freeze();  // frozen tasks ignore SIGKILL until thawed: destroy must cope
  manager_->destroy();
  int status = 0;
  ASSERT_EQ(waitpid(child_, &status, 0), child_);
  child_ = -1;
  EXPECT_TRUE(WIFSIGNALED(status));
  EXPECT_FALSE(fs::exists(dir("memory")));
  manager_.reset();
}

// The init moves itself in (run and create): a new process writes to the files opened before it
// existed, and ends up in the cgroup of every hierarchy, cpuset usable.
TEST_F(CgroupV1Test, ANewProcessMovesItselfIn) {
  manager_ = CgroupManager::create(path_, "unused");
  std::vector<UniqueFd> fds = manager_->open_self_attach();
  ASSERT_FALSE(fds.empty());
  std::vector<int> raw;
  raw.reserve(fds.size());
  for (const auto& fd : fds) raw.push_back(fd.get());
  int ready[2];
  ASSERT_EQ(pipe(ready), 0);
  pid_t mover = fork();
  if (mover == 0) {
    try {
      attach_self(raw);
    } catch (const Error&) {
      _exit(1);
    }
    (void)!write(ready[1], "x", 1);
    for (;;) pause();
  }
  close(ready[1]);
  char c = 0;
  ASSERT_EQ(read(ready[0], &c, 1), 1) << "attach_self failed in the child";
  close(ready[0]);
  std::string own = slurp("/proc/" + std::to_string(mover) + "/cgroup") + "\n";
  kill(mover, SIGKILL);
  waitpid(mover, nullptr, 0);
  for (const char* ctl : {"memory", "pids", "cpuset", "freezer", "devices"}) {
    EXPECT_NE(own.find(std::string(":") + ctl + ":" + path_ + "\n"), std::string::npos)
        << ctl << " in\n"
        << own;
  }
  EXPECT_EQ(slurp(dir("cpuset") + "/cpuset.cpus"), slurp("/sys/fs/cgroup/cpuset/cpuset.cpus"));
  fds.clear();
  manager_->destroy();
  EXPECT_FALSE(fs::exists(dir("memory")));
  manager_.reset();
}

TEST(CgroupDisabled, HasNoFilesToMoveThrough) {
  auto m = CgroupManager::create("", "id", /*disabled=*/true);
  EXPECT_TRUE(m->open_self_attach().empty());
  EXPECT_FALSE(m->enabled());
}

TEST_F(CgroupV1Test, ErrorsNameTheFileAndErrno) {
  manager_ = CgroupManager::create(path_, "unused");
  manager_->apply(child_);
  std::string e = error_of([&] { manager_->set_resources({{"cpu", {{"quota", 10}}}}); });
  EXPECT_EQ(e, "cgroup: write " + dir("cpu") + "/cpu.cfs_quota_us=10: Invalid argument");
  e = error_of([&] { manager_->set_resources({{"unified", {{"memory.high", "1"}}}}); });
  EXPECT_NE(e.find("needs cgroup v2"), std::string::npos) << e;
  e = error_of([&] { manager_->set_resources({{"devices", {{{"allow", true}, {"type", "x"}}}}}); });
  EXPECT_NE(e.find("type must be a, b or c"), std::string::npos) << e;
  e = error_of([&] { manager_->set_resources({{"memory", {{"limit", "lots"}}}}); });
  EXPECT_NE(e.find("limit must be an integer"), std::string::npos) << e;
}

// ---- cgroup v2, against a fake tree ----

class CgroupV2FakeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() / ("cidrun-cg2-" + std::to_string(getpid()));
    fs::remove_all(root_);
    put(root_ / "cgroup.controllers", "cpuset cpu io memory pids\n");
    put(root_ / "cgroup.subtree_control", "");
    put(root_ / "cidrun/cgroup.controllers", "cpu memory pids\n");
    put(root_ / "cidrun/cgroup.subtree_control", "");
    const fs::path leaf = root_ / "cidrun/test";
    for (const char* f :
         {"cgroup.procs", "memory.max", "memory.swap.max", "memory.low", "memory.high", "pids.max",
          "cpu.max", "cpu.weight", "cpuset.cpus", "cgroup.freeze", "io.weight", "io.max"}) {
      put(leaf / f, "");
    }
    put(leaf / "cgroup.controllers", "cpuset cpu io memory pids\n");
    put(leaf / "cgroup.events", "populated 1\nfrozen 0\n");
    put(leaf / "memory.current", "12345\n");
    put(leaf / "pids.current", "3\n");
    put(leaf / "cpu.stat", "usage_usec 10\nuser_usec 6\nsystem_usec 4\n");
    host_.root = root_.string();
    host_.mountinfo =
        "30 23 0:26 / " + root_.string() + " rw,nosuid shared:4 - cgroup2 cgroup2 rw\n";
    host_.self_cgroup = "0::/\n";
  }
  void TearDown() override { fs::remove_all(root_); }
  std::string leaf(const char* file) const { return slurp(root_ / "cidrun/test" / file); }

  fs::path root_;
  CgroupHost host_;
};

TEST_F(CgroupV2FakeTest, ApplyEnablesControllersInParents) {
  auto m = CgroupManager::create("/cidrun/test", "test", host_);
  EXPECT_EQ(m->path(), "/cidrun/test");
  m->apply(1234);
  EXPECT_EQ(slurp(root_ / "cgroup.subtree_control"), "+cpuset +cpu +io +memory +pids");
  EXPECT_EQ(slurp(root_ / "cidrun/cgroup.subtree_control"), "+cpu +memory +pids");
  EXPECT_EQ(leaf("cgroup.procs"), "1234");
}

TEST_F(CgroupV2FakeTest, ApplyEnablesOnlyControllersNotYetEnabled) {
  put(root_ / "cgroup.subtree_control", "cpu memory\n");
  put(root_ / "cidrun/cgroup.subtree_control", "cpu memory pids\n");
  make_cgroup_v2("/cidrun/test", host_)->apply(1234);
  EXPECT_EQ(slurp(root_ / "cgroup.subtree_control"), "+cpuset +io +pids");
  EXPECT_EQ(slurp(root_ / "cidrun/cgroup.subtree_control"), "cpu memory pids");  // untouched
}

TEST_F(CgroupV2FakeTest, ALimitWithoutItsControllerSaysWhichAndWhy) {
  put(root_ / "cidrun/test/cgroup.controllers", "cpu pids\n");
  auto m = make_cgroup_v2("/cidrun/test", host_);
  auto e = error_of([&] { m->set_resources({{"memory", {{"limit", 1 << 20}}}}); });
  EXPECT_EQ(e, "cgroup: linux.resources.memory needs the memory controller, which " +
                   (root_ / "cidrun/test").string() +
                   " does not get from its parent's cgroup.subtree_control (it gets: cpu pids)");
  EXPECT_EQ(leaf("memory.max"), "");  // nothing written
  e = error_of([&] {
    m->set_resources({{"hugepageLimits", {{{"pageSize", "2MB"}, {"limit", 1}}}}});
  });
  EXPECT_EQ(e,
            "cgroup: linux.resources.hugepageLimits needs the hugetlb controller, which the "
            "cgroup v2 hierarchy at " +
                root_.string() + " does not have (it has: cpu cpuset io memory pids)");
  e = error_of([&] { m->set_resources({{"unified", {{"io.weight", "100"}}}}); });
  EXPECT_NE(e.find("linux.resources.unified.io.weight needs the io controller"), std::string::npos)
      << e;
  e = error_of([&] { m->set_resources({{"cpu", {{"cpus", "0"}}}}); });
  EXPECT_NE(e.find("needs the cpuset controller"), std::string::npos) << e;
  // What the cgroup does get still works.
  m->set_resources({{"pids", {{"limit", 5}}}, {"cpu", {{"shares", 2}}}});
  EXPECT_EQ(leaf("pids.max"), "5");
}

TEST_F(CgroupV2FakeTest, DefaultPathAndRelativePath) {
  EXPECT_EQ(CgroupManager::create("", "abc", host_)->path(), "/cidrun/abc");
  host_.self_cgroup = "0::/user.slice\n";
  EXPECT_EQ(CgroupManager::create("pod/x", "abc", host_)->path(), "/user.slice/pod/x");
}

TEST_F(CgroupV2FakeTest, ResourcesAreConvertedToV2Files) {
  auto m = make_cgroup_v2("/cidrun/test", host_);
  m->set_resources({
      {"memory", {{"limit", 64 << 20}, {"swap", 96 << 20}, {"reservation", 16 << 20}}},
      {"pids", {{"limit", 100}}},
      {"cpu", {{"shares", 1024}, {"quota", 50000}, {"period", 100000}, {"cpus", "0-1"}}},
      {"blockIO",
       {{"weight", 500},
        {"throttleReadBpsDevice", {{{"major", 8}, {"minor", 0}, {"rate", 1048576}}}}}},
      {"unified", {{"memory.high", "1G"}}},
  });
  EXPECT_EQ(leaf("memory.max"), std::to_string(64 << 20));
  EXPECT_EQ(leaf("memory.swap.max"), std::to_string(32 << 20));  // memory+swap minus memory
  EXPECT_EQ(leaf("memory.low"), std::to_string(16 << 20));
  EXPECT_EQ(leaf("pids.max"), "100");
  EXPECT_EQ(leaf("cpu.weight"), "39");
  EXPECT_EQ(leaf("cpu.max"), "50000 100000");
  EXPECT_EQ(leaf("cpuset.cpus"), "0-1");
  EXPECT_EQ(leaf("io.weight"), std::to_string(1 + (500 - 10) * 9999 / 990));
  EXPECT_EQ(leaf("io.max"), "8:0 rbps=1048576");
  EXPECT_EQ(leaf("memory.high"), "1G");

  m->set_resources({{"memory", {{"limit", -1}}},
                    {"pids", {{"limit", -1}}},
                    {"cpu", {{"shares", 2}, {"quota", -1}, {"period", 200000}}}});
  EXPECT_EQ(leaf("memory.max"), "max");
  EXPECT_EQ(leaf("memory.swap.max"), "max");  // unlimited memory, swap unset: both unlimited
  EXPECT_EQ(leaf("pids.max"), "max");
  EXPECT_EQ(leaf("cpu.weight"), "1");
  EXPECT_EQ(leaf("cpu.max"), "max 200000");
}

TEST_F(CgroupV2FakeTest, UnsupportedAndBadResourcesAreErrors) {
  auto m = make_cgroup_v2("/cidrun/test", host_);
  auto e = error_of([&] {
    m->set_resources({{"hugepageLimits", {{{"pageSize", "../../cgroup.procs"}, {"limit", 1}}}}});
  });
  EXPECT_NE(e.find("pageSize must be a number with KB, MB or GB"), std::string::npos) << e;
  e = error_of([&] { m->set_resources({{"unified", {{"../cgroup.procs", "1"}}}}); });
  EXPECT_NE(e.find("invalid linux.resources.unified key"), std::string::npos) << e;
  e = error_of([&] { m->set_resources({{"memory", {{"limit", 100}, {"swap", 50}}}}); });
  EXPECT_NE(e.find("must be >= memory.limit"), std::string::npos) << e;
  e = error_of([&] { m->set_resources({{"memory", {{"swap", 50}}}}); });
  EXPECT_NE(e.find("needs a memory.limit"), std::string::npos) << e;
  e = error_of([&] { m->set_resources({{"cpu", {{"realtimeRuntime", 5}}}}); });
  EXPECT_NE(e.find("not supported on cgroup v2"), std::string::npos) << e;
  e = error_of([&] { m->set_resources({{"devices", {{{"allow", false}, {"access", "rwm"}}}}}); });
  // A plain directory is no cgroup: the eBPF program cannot be attached to it.
  EXPECT_NE(e.find("device program"), std::string::npos) << e;
  e = error_of([&] { m->set_resources({{"devices", {{{"allow", true}, {"access", "rwx"}}}}}); });
  EXPECT_NE(e.find("made of r, w and m"), std::string::npos) << e;
  e = error_of([&] { m->set_resources({{"network", {{"classID", 1}}}}); });
  EXPECT_NE(e.find("does not exist on cgroup v2"), std::string::npos) << e;
}

TEST_F(CgroupV2FakeTest, FreezeWaitsForCgroupEvents) {
  auto m = make_cgroup_v2("/cidrun/test", host_);
  // The fake kernel has already settled: freeze() returns once cgroup.events says so.
  put(root_ / "cidrun/test/cgroup.events", "populated 1\nfrozen 1\n");
  m->freeze();
  EXPECT_EQ(leaf("cgroup.freeze"), "1");
  put(root_ / "cidrun/test/cgroup.events", "populated 1\nfrozen 0\n");
  m->thaw();
  EXPECT_EQ(leaf("cgroup.freeze"), "0");
}

TEST_F(CgroupV2FakeTest, StatsPidsSaveAndOpen) {
  auto m = make_cgroup_v2("/cidrun/test", host_);
  put(root_ / "cidrun/test/cgroup.procs", "10\n11\n");
  put(root_ / "cidrun/test/sub/cgroup.procs", "12\n");
  auto pids = m->pids();
  std::sort(pids.begin(), pids.end());
  EXPECT_EQ(pids, (std::vector<pid_t>{10, 11, 12}));
  auto s = m->stats();
  EXPECT_EQ(s["memory"]["usage"]["usage"], 12345);
  EXPECT_EQ(s["pids"]["current"], 3);
  EXPECT_EQ(s["cpu"]["usage"]["total"], 10000);
  EXPECT_EQ(s["cpu"]["usage"]["kernel"], 4000);
  auto reopened = CgroupManager::open(nlohmann::json::parse(m->save().dump()));
  EXPECT_EQ(reopened->path(), "/cidrun/test");
  reopened->set_resources({{"pids", {{"limit", 7}}}});
  EXPECT_EQ(leaf("pids.max"), "7");
}

TEST_F(CgroupV2FakeTest, DestroyRemovesEmptyCgroupTree) {
  fs::create_directories(root_ / "cidrun/gone/nested");
  auto m = make_cgroup_v2("/cidrun/gone", host_);
  m->destroy();
  EXPECT_FALSE(fs::exists(root_ / "cidrun/gone"));
  m->destroy();  // already gone: fine
}

// The v2 device filter is an eBPF program, which works on any cgroup2 mount: on a hybrid host the
// unified hierarchy at /sys/fs/cgroup/unified takes it too, so it is tested for real there.
TEST(CgroupV2Devices, EbpfProgramEnforcesRules) {
  ASSERT_EQ(geteuid(), 0u) << "needs root to attach eBPF programs";
  std::string root;
  for (const char* candidate : {"/sys/fs/cgroup", "/sys/fs/cgroup/unified"}) {
    if (detect_cgroup_version({candidate, "", ""}) == CgroupVersion::kV2) root = candidate;
  }
  if (root.empty()) GTEST_SKIP() << "no cgroup2 mount at /sys/fs/cgroup or /sys/fs/cgroup/unified";
  auto m = make_cgroup_v2("/cidrun-test-dev-" + std::to_string(getpid()), {root, "", "0::/\n"});
  int go[2];
  ASSERT_EQ(pipe(go), 0);
  pid_t child = fork();
  if (child == 0) {
    close(go[1]);  // so that the parent going away ends the wait below
    char c;
    if (read(go[0], &c, 1) != 1) _exit(10);
    // Allowed: read+write /dev/null. Denied: /dev/zero, and writing /dev/full (read-only rule).
    int null_fd = open("/dev/null", O_RDWR);
    int zero_fd = open("/dev/zero", O_RDONLY);
    int full_w = open("/dev/full", O_WRONLY);
    int full_r = open("/dev/full", O_RDONLY);
    _exit((null_fd >= 0 ? 0 : 1) | (zero_fd < 0 && errno != 0 ? 0 : 2) | (full_w < 0 ? 0 : 4) |
          (full_r >= 0 ? 0 : 8));
  }
  close(go[0]);
  // Whatever fails below, the child and the cgroup must not outlive the test.
  struct Cleanup {
    pid_t child;
    int go;
    CgroupManager* m;
    ~Cleanup() {
      if (go >= 0) close(go);
      if (child > 0) {
        kill(child, SIGKILL);
        waitpid(child, nullptr, 0);
      }
      try {
        m->destroy();
      } catch (const Error&) {
      }
    }
  } cleanup{child, go[1], m.get()};
  m->apply(child);
  auto rules = nlohmann::json::array(
      {{{"allow", false}, {"access", "rwm"}},
       {{"allow", true}, {"type", "c"}, {"major", 1}, {"minor", 3}, {"access", "rwm"}},
       {{"allow", true}, {"type", "c"}, {"major", 1}, {"minor", 7}, {"access", "rw"}},
       {{"allow", false}, {"type", "c"}, {"major", 1}, {"minor", 7}, {"access", "w"}}});
  m->set_resources({{"devices", rules}});
  m->set_resources({{"devices", rules}});  // replaces the program instead of stacking a second
  ASSERT_EQ(write(go[1], "x", 1), 1);
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  cleanup.child = -1;
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "1: /dev/null refused, 2: /dev/zero allowed, "
                                       "4: /dev/full writable, 8: /dev/full unreadable";
}

}  // namespace
}  // namespace cidrun::runtime
