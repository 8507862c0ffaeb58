// Rootless: `cidrun run` and the runc lifecycle as an unprivileged user (nobody, through
// setpriv), the way runc/crun run rootless: a user namespace mapping the caller's uid/gid to
// root, no cgroup unless one is delegated, device nodes bound from the host.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "integration/runtime_helpers.h"

using namespace rt_test;
using nlohmann::json;

namespace {

constexpr int kNobody = 65534;

std::string read_sysctl(const std::string& path) {
  return chomp(slurp(path));
}

// Why this kernel refuses unprivileged user namespaces, or "" when it allows them.
std::string userns_refused() {
  if (read_sysctl("/proc/sys/user/max_user_namespaces") == "0")
    return "user.max_user_namespaces is 0";
  if (read_sysctl("/proc/sys/kernel/unprivileged_userns_clone") == "0")
    return "kernel.unprivileged_userns_clone is 0";
  if (read_sysctl("/proc/sys/kernel/apparmor_restrict_unprivileged_userns") == "1")
    return "kernel.apparmor_restrict_unprivileged_userns is 1";
  return "";
}

// A directory nobody owns, holding a busybox root nobody owns.
const std::string& home() {
  static const std::string dir = [] {
    std::string d = work_dir() + "/nobody";
    sh("install -d -o " + std::to_string(kNobody) + " -g " + std::to_string(kNobody) + " " + d);
    sh("cp -a " + busybox_root() + " " + d + "/root && chown -R " + std::to_string(kNobody) + ":" +
       std::to_string(kNobody) + " " + d + "/root");
    return d;
  }();
  return dir;
}

// Runs a shell command line as nobody with a clean environment (no capabilities survive the
// uid change), without a network like every other test (network_test.cpp covers slirp4netns).
Result as_nobody(const std::string& cmd, const std::string& env = "") {
  return sh("setpriv --reuid=" + std::to_string(kNobody) + " --regid=" + std::to_string(kNobody) +
            " --clear-groups env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin CIDRUN_NETWORK=none HOME=" +
            home() + " " + env + " /bin/sh -c " + shell_quote(cmd));
}

std::string cidrun_nobody() {
  return std::string(CIDRUN_BINARY) + " --root " + home() + "/state";
}

}  // namespace

class RuntimeRootless : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why = userns_refused();
    if (!why.empty()) GTEST_SKIP() << "unprivileged user namespaces are off: " << why;
  }
};

TEST_F(RuntimeRootless, RunIsRootInAUserNamespaceAndNobodyOutside) {
  Result r = as_nobody(cidrun_nobody() + " run --rm " + home() +
                       "/root -- /bin/sh -c 'id -u; id -g; cat /proc/self/uid_map "
                       "/proc/self/gid_map; hostname; echo $$; touch /made-inside; "
                       "grep -E \"^(CapEff|NoNewPrivs|Seccomp):\" /proc/self/status; exit 3'");
  EXPECT_EQ(r.code, 3) << r.err;
  EXPECT_EQ(r.out,
            "0\n0\n         0      65534          1\n         0      65534          1\ncidrun\n1\n"
            "CapEff:\t0000000020000420\nNoNewPrivs:\t1\nSeccomp:\t2\n")
      << r.err;
  struct stat st {};
  ASSERT_EQ(::stat((home() + "/root/made-inside").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, static_cast<uid_t>(kNobody));  // container root is nobody on the host
}

TEST_F(RuntimeRootless, ContainerRootCannotReadWhatTheUserCannot) {
  std::string secret = work_dir() + "/secret";
  write_file(secret, "root only\n");
  ::chmod(secret.c_str(), 0600);
  Result r = as_nobody(cidrun_nobody() + " run --rm --mount type=bind,src=" + secret +
                       ",dst=/secret " + home() + "/root -- /bin/cat /secret");
  EXPECT_NE(r.code, 0);
  EXPECT_EQ(r.out, "");
  EXPECT_NE(r.err.find("Permission denied"), std::string::npos) << r.err;
}

TEST_F(RuntimeRootless, RunFromACidUsesAnOverlayInTheUserNamespace) {
  std::string repo = " --repo-dir " + home() + "/repo";
  Result add = as_nobody(std::string(CIDRUN_BINARY) + repo +
                         " add -r -Q --preserve-mode --preserve-mtime " + home() + "/root");
  ASSERT_EQ(add.code, 0) << add.err;
  std::string cid = add.out.substr(0, add.out.find('\n'));
  Result r = as_nobody(cidrun_nobody() + repo + " run --rm " + cid +
                       " -- /bin/sh -c 'echo new >/etc/new; cat /etc/new; id -u; "
                       "awk \"\\$5 == \\\"/\\\" {print \\$9}\" /proc/self/mountinfo'");
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "new\n0\noverlay\n");
  Result again = as_nobody(cidrun_nobody() + repo + " run --rm " + cid + " -- /bin/ls /etc/new");
  EXPECT_NE(again.code, 0) << "a write reached the image cache";
}

TEST_F(RuntimeRootless, StateGoesToTheUsersRuntimeDirectory) {
  std::string xdg = home() + "/xdg";
  ASSERT_EQ(as_nobody("mkdir -m 700 " + xdg).code, 0);
  Result r =
      as_nobody(std::string(CIDRUN_BINARY) + " run --name kept " + home() + "/root -- /bin/true",
                "XDG_RUNTIME_DIR=" + xdg);
  EXPECT_EQ(r.code, 0) << r.err;
  struct stat st {};
  EXPECT_EQ(::stat((xdg + "/cidrun/kept/state.json").c_str(), &st), 0);
  Result del = as_nobody(std::string(CIDRUN_BINARY) + " delete kept", "XDG_RUNTIME_DIR=" + xdg);
  EXPECT_EQ(del.code, 0) << del.err;
  // A state root another user made first is refused, not used.
  std::string planted = home() + "/planted";
  ::mkdir(planted.c_str(), 0777);
  Result p = as_nobody(std::string(CIDRUN_BINARY) + " --root " + planted + " run --rm " + home() +
                       "/root -- /bin/true");
  EXPECT_NE(p.code, 0);
  EXPECT_NE(p.err.find("belongs to uid 0, not to this user"), std::string::npos) << p.err;
}

TEST_F(RuntimeRootless, LimitsWithoutADelegatedCgroupAreAClearError) {
  Result r = as_nobody(cidrun_nobody() + " run --rm --memory 32m " + home() + "/root -- /bin/true");
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("rootless: resource limits need a cgroup delegated to this user"),
            std::string::npos)
      << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
}

TEST_F(RuntimeRootless, LifecycleWithARootlessBundle) {
  std::string b = home() + "/bundle";
  ASSERT_EQ(as_nobody("mkdir " + b + " && cp -a " + home() + "/root " + b + "/rootfs && cd " + b +
                      " && " + CIDRUN_BINARY + " spec --rootless")
                .code,
            0);
  json c = json::parse(slurp(b + "/config.json"));
  EXPECT_EQ(c["linux"]["uidMappings"][0]["hostID"], kNobody);
  c["process"]["args"] = {"sleep", "30"};
  c["process"]["terminal"] = false;
  write_file(b + "/config.json", c.dump());
  std::string cr = cidrun_nobody();
  ASSERT_EQ(as_nobody(cr + " create --bundle " + b + " rl1").code, 0);
  Result st = as_nobody(cr + " state rl1");
  EXPECT_EQ(json::parse(st.out)["status"], "created") << st.err;
  ASSERT_EQ(as_nobody(cr + " start rl1").code, 0);
  Result e = as_nobody(cr + " exec rl1 /bin/sh -c 'id -u; cat /proc/self/uid_map'");
  EXPECT_EQ(e.out, "0\n         0      65534          1\n") << e.err;
  EXPECT_EQ(as_nobody(cr + " kill rl1 KILL").code, 0);
  EXPECT_EQ(as_nobody(cr + " delete --force rl1").code, 0);
  EXPECT_NE(as_nobody(cr + " state rl1").code, 0);
}
