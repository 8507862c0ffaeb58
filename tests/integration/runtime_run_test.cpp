// `cidrun run` end to end as root: each spec feature observed from inside the container.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "integration/runtime_helpers.h"

using namespace rt_test;

TEST(RuntimeRun, EchoPrintsAndExitsZero) {
  Result r = sh(cidrun() + " run --rm " + busybox_root() + " -- /bin/busybox echo hello");
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "hello\n");
}

TEST(RuntimeRun, CommandWithoutDashDashKeepsItsOptions) {
  Result r = sh(cidrun() + " run --rm " + busybox_root() + " /bin/sh -c 'echo a b'");
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "a b\n");
}

TEST(RuntimeRun, ExitStatusIsTheContainers) {
  EXPECT_EQ(run_sh("exit 7").code, 7);
  // A pid namespace's init cannot be killed from inside it: without one, sh can kill itself.
  nlohmann::json c = default_config();
  nlohmann::json nss = nlohmann::json::array();
  for (const auto& ns : c["linux"]["namespaces"])
    if (ns["type"] != "pid") nss.push_back(ns);
  c["linux"]["namespaces"] = nss;
  std::string cfg = work_dir() + "/nopid.json";
  write_file(cfg, c.dump());
  EXPECT_EQ(run_sh("kill -9 $$", "--config " + cfg).code, 128 + 9);
}

TEST(RuntimeRun, MissingProgramIs127WithOneLine) {
  Result r = sh(cidrun() + " run --rm " + busybox_root() + " -- /nonexistent");
  EXPECT_EQ(r.code, 127);
  EXPECT_NE(r.err.find("/nonexistent"), std::string::npos) << r.err;
}

TEST(RuntimeRun, SignalsAreForwarded) {
  std::string cmd =
      cidrun() + " run --rm " + busybox_root() +
      " -- /bin/sh -c 'trap \"exit 42\" TERM; echo ready; while :; do sleep 0.05; done'";
  std::string out = work_dir() + "/sig.out";
  pid_t pid = spawn_sh(cmd, out);
  EXPECT_TRUE(wait_for_text(out, "ready")) << slurp(out);
  ::kill(pid, SIGTERM);
  EXPECT_EQ(wait_exit(pid), 42) << slurp(out);
}

TEST(RuntimeRun, NamespacesHostnameAndPid1) {
  Result r = run_sh("hostname; echo $$; readlink /proc/1/exe", "--hostname box");
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "box\n1\n/bin/busybox\n");
}

TEST(RuntimeRun, DefaultCapabilitiesNoNewPrivsAndSeccomp) {
  Result r = run_sh(
      "grep -E '^(CapEff|CapBnd|CapPrm|CapInh|CapAmb|NoNewPrivs|Seccomp):' "
      "/proc/self/status");
  EXPECT_EQ(r.code, 0) << r.err;
  // runc spec's set: CAP_AUDIT_WRITE, CAP_KILL, CAP_NET_BIND_SERVICE.
  EXPECT_NE(r.out.find("CapEff:\t0000000020000420"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("CapBnd:\t0000000020000420"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("CapInh:\t0000000000000000"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("NoNewPrivs:\t1"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("Seccomp:\t2"), std::string::npos) << r.out;
}

TEST(RuntimeRun, DefaultSeccompDeniesWithEperm) {
  // unshare(CLONE_NEWUSER) needs no capability, so only the filter can refuse it.
  Result denied = run_sh("unshare -U true");
  EXPECT_NE(denied.code, 0);
  EXPECT_NE(denied.err.find("Operation not permitted"), std::string::npos) << denied.err;
  EXPECT_EQ(run_sh("unshare -U true", "--seccomp unconfined").code, 0);
}

TEST(RuntimeRun, UserWorkdirEnvAndUmask) {
  Result r = run_sh("id -u; id -g; pwd; echo $FOO; umask", "-u 1000:1001 -w /tmp -e FOO=bar");
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "1000\n1001\n/tmp\nbar\n0022\n");
}

TEST(RuntimeRun, DevicesAndLinks) {
  Result r = run_sh(
      "for d in null zero full random urandom tty; do stat -c '%n %F %t:%T' /dev/$d; done; "
      "readlink /dev/ptmx; readlink /dev/fd; readlink /dev/stdin; echo x >/dev/null && head -c 3 "
      "/dev/zero | wc -c; "
      "grep -c ' /dev/pts \\| /dev/shm ' /proc/self/mountinfo");
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("/dev/null character special file 1:3"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("/dev/urandom character special file 1:9"), std::string::npos);
  EXPECT_NE(r.out.find("/dev/tty character special file 5:0"), std::string::npos);
  EXPECT_NE(r.out.find("pts/ptmx\n/proc/self/fd\n/proc/self/fd/0\n3\n2\n"), std::string::npos)
      << r.out;
}

TEST(RuntimeRun, MaskedAndReadonlyPaths) {
  Result r = run_sh(
      "wc -c </proc/timer_list; wc -c </proc/keys; ls /sys/firmware | wc -l; "
      "echo 1 >/proc/sys/kernel/domainname && echo wrote; "
      "grep ' /proc/sys ' /proc/self/mountinfo | cut -d' ' -f6 | cut -d, -f1");
  EXPECT_EQ(r.out, "0\n0\n0\nro\n") << r.out << r.err;
}

TEST(RuntimeRun, ReadOnlyRoot) {
  EXPECT_EQ(run_sh("touch /x").code, 0);
  Result r = run_sh("touch /y", "--read-only");
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.err.find("Read-only file system"), std::string::npos) << r.err;
  EXPECT_EQ(run_sh("touch /tmp/../dev/shm/z", "--read-only").code, 0);
}

TEST(RuntimeRun, BindMountReadOnly) {
  std::string host = work_dir() + "/share";
  ::mkdir(host.c_str(), 0755);
  write_file(host + "/f", "from host\n");
  Result r = run_sh("cat /mnt/f; echo x >/mnt/g", "--mount type=bind,src=" + host + ",dst=/mnt,ro");
  EXPECT_EQ(r.out, "from host\n");
  EXPECT_NE(r.err.find("Read-only file system"), std::string::npos) << r.err;
}

// The init mounts its root before it reads "go" when nothing needs the runtime first: one that
// fails there must still report its own error, whichever of the two got to the socket first.
TEST(RuntimeRun, AMountErrorBeforeGoIsTheInitsOwn) {
  const std::string missing = work_dir() + "/no-such-source";
  std::string b = make_bundle("mount-error", {"/bin/true"}, [&](nlohmann::json& c) {
    c["mounts"].push_back({{"destination", "/mnt"}, {"type", "bind"}, {"source", missing}});
  });
  for (int i = 0; i < 15; ++i) {
    Result r = sh(cidrun() + " run --rm --no-cgroup --seccomp unconfined " + b);
    EXPECT_EQ(r.code, 1);
    ASSERT_EQ(r.err,
              "cidrun: error: bind mount source " + missing + ": No such file or directory\n")
        << "run " << i;
  }
}

TEST(RuntimeRun, CgroupLimitsVisibleInside) {
  Result r = run_sh(
      "cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max "
      "/sys/fs/cgroup/cpu/cpu.cfs_quota_us",
      "--memory 64m --pids-limit 50 --cpus 0.5");
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "67108864\n50\n50000\n");
}

TEST(RuntimeRun, NetworkNoneHasOnlyLoopbackUp) {
  Result r = run_sh("ls /sys/class/net; ip -o link show lo | grep -c UP");
  EXPECT_EQ(r.out, "lo\n1\n") << r.err;
}

TEST(RuntimeRun, UserNamespaceMappings) {
  nlohmann::json c = default_config();
  c["linux"]["namespaces"].push_back({{"type", "user"}});
  c["linux"]["uidMappings"] = {{{"containerID", 0}, {"hostID", 100000}, {"size", 65536}}};
  c["linux"]["gidMappings"] = {{{"containerID", 0}, {"hostID", 100000}, {"size", 65536}}};
  std::string cfg = work_dir() + "/userns.json";
  write_file(cfg, c.dump());
  Result r = run_sh("cat /proc/self/uid_map /proc/self/gid_map; id -u; stat -c %F /dev/null",
                    "--config " + cfg);
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out,
            "         0     100000      65536\n         0     100000      65536\n0\n"
            "character special file\n");
}

TEST(RuntimeRun, TerminalWithScript) {
  // script(1) gives cidrun a terminal; inside, stdin/stdout are the container's own pty.
  Result r = sh("script -qec \"" + cidrun() + " run --rm -t " + busybox_root() +
                " -- /bin/sh -c 'tty; stty size'\" /dev/null");
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("/dev/pts/0"), std::string::npos) << r.out;
}

TEST(RuntimeRun, BundleDirectoryWithConfig) {
  std::string b = work_dir() + "/bundle";
  sh("mkdir -p " + b + " && cp -a " + busybox_root() + " " + b + "/rootfs");
  nlohmann::json c = default_config();
  c["process"]["args"] = {"/bin/sh", "-c", "echo from bundle; hostname"};
  c["hostname"] = "bundled";
  write_file(b + "/config.json", c.dump());
  Result r = sh(cidrun() + " run --rm " + b);
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "from bundle\nbundled\n");
}

TEST(RuntimeRun, BadConfigIsOneClearLine) {
  std::string cfg = work_dir() + "/bad.json";
  write_file(cfg,
             "{\"ociVersion\": \"1.0.2\", \"root\": {\"path\": \"rootfs\"}, \"process\": "
             "{\"args\": \"sh\"}}");
  Result r = sh(cidrun() + " run --rm --config " + cfg + " " + busybox_root());
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("process.args: must be an array"), std::string::npos) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
}

TEST(RuntimeRun, WithoutRmStateStaysUntilDelete) {
  Result r = sh(cidrun() + " run --name keep1 " + busybox_root() + " -- /bin/true");
  EXPECT_EQ(r.code, 0) << r.err;
  Result st = sh(cidrun() + " state keep1");
  EXPECT_NE(st.out.find("\"stopped\""), std::string::npos) << st.out << st.err;
  EXPECT_EQ(sh(cidrun() + " delete keep1").code, 0);
  EXPECT_NE(sh(cidrun() + " state keep1").code, 0);
}

TEST(RuntimeRun, PlainDirectoryRootIsTheContainersOwn) {
  // As with nsinit/runc, a directory given to run is written in place (CIDs get an overlay).
  std::string dir = make_root("own");
  Result r = sh(cidrun() + " run --rm " + dir + " -- /bin/sh -c 'echo hi >/new'");
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(slurp(dir + "/new"), "hi\n");
}

TEST(RuntimeRun, ProcessSettingsSysctlAndDomainname) {
  nlohmann::json c = default_config();
  c["root"]["readonly"] = false;
  c["process"]["oomScoreAdj"] = 500;
  c["process"]["rlimits"] = {{{"type", "RLIMIT_NOFILE"}, {"hard", 200}, {"soft", 100}}};
  c["process"]["user"] = {{"uid", 0}, {"gid", 0}, {"additionalGids", {10, 20}}, {"umask", 077}};
  c["linux"]["sysctl"] = {{"net.ipv4.ip_forward", "1"}};
  c["domainname"] = "example.org";
  std::string cfg = work_dir() + "/proc.json";
  write_file(cfg, c.dump());
  Result r = run_sh(
      "cat /proc/self/oom_score_adj; ulimit -n; ulimit -Hn; id -G; umask; "
      "cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/domainname",
      "--config " + cfg);
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "500\n100\n200\n0 10 20\n0077\n1\nexample.org\n");
}

TEST(RuntimeRun, InteractiveStdinIsForwarded) {
  Result r = sh("echo piped | " + cidrun() + " run --rm -i " + busybox_root() + " -- /bin/cat");
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "piped\n");
  // Without -i the container's stdin is empty, as with docker/podman.
  Result n = sh("echo piped | " + cidrun() + " run --rm " + busybox_root() + " -- /bin/cat");
  EXPECT_EQ(n.out, "");
}
