// cidrun under containerd, the way Kubernetes reaches a runtime: Debian's containerd with its own
// config, root, state and socket in this test's directory, an OCI archive of the busybox root
// imported with `ctr image import`, and containers run by containerd's runc shim
// (io.containerd.runc.v2) with cidrun as its runc binary.
//
// containerd and its shims keep their runtime files under /run/containerd whatever the config
// says, so containerd runs in a mount namespace of its own with a private tmpfs on /run, and
// every ctr runs in that namespace too (its fifos must be where the shim looks): nothing of the
// host's /run is touched.
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <filesystem>
#include <string>

#include "integration/runtime_helpers.h"

using namespace rt_test;
namespace fs = std::filesystem;

namespace {

// The image's name once imported (umoci's archive has one manifest, tagged "bb").
constexpr const char* kImage = "cidrun-test/busybox:bb";

class Containerd {
 public:
  Containerd()
      : dir_(work_dir() + "/containerd"), namespace_("cidrun-test-" + std::to_string(::getpid())) {
    sh("rm -rf " + dir_ + " && mkdir -p " + dir_);
    // The shims detach from containerd (they daemonize): orphans come to this process, which
    // reaps them, rather than to a pid 1 that may not.
    ::prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
    make_image_archive();
    write_config();
    // The shim runs this wrapper as runc: it records each call, so the test can tell that
    // cidrun was the runtime and what the shim asked of it, then runs cidrun itself.
    write_file(dir_ + "/runtime",
               "#!/bin/sh\necho \"$*\" >>" + dir_ + "/calls\nexec " + CIDRUN_BINARY + " \"$@\"\n");
    ::chmod((dir_ + "/runtime").c_str(), 0755);
    pid_ = spawn_sh("unshare -m --propagation private sh -c " +
                        shell_quote("mount -t tmpfs -o mode=0755 cidrun-test-run /run && exec "
                                    "containerd --config " +
                                    dir_ + "/config.toml"),
                    dir_ + "/containerd.log");
    if (!eventually([&] { return ctr("version").code == 0; })) {
      stop();
      throw std::runtime_error("containerd did not start: " + slurp(dir_ + "/containerd.log"));
    }
    mount_ns_ = fs::read_symlink("/proc/" + std::to_string(pid_) + "/ns/mnt").string();
    Result r = ctr("image import --index-name " + std::string(kImage) + " " + dir_ + "/bb.tar");
    if (r.code != 0) {
      stop();
      throw std::runtime_error("ctr image import: " + r.err);
    }
  }
  ~Containerd() { stop(); }
  Containerd(const Containerd&) = delete;
  Containerd& operator=(const Containerd&) = delete;

  // `ctr ARGS` against this containerd, in its mount namespace.
  Result ctr(const std::string& args) const { return sh(ctr_command() + " " + args); }
  std::string ctr_command() const {
    // A containerd namespace of this test's own: the shim puts containers in cgroups under it.
    return "nsenter -t " + std::to_string(pid_) + " -m ctr -a " + dir_ + "/containerd.sock -n " +
           namespace_;
  }
  // `ctr run` with cidrun as the shim's runc binary.
  std::string run_command() const {
    return ctr_command() + " run --runc-binary " + dir_ + "/runtime";
  }
  // What the shim ran, one call a line.
  std::string calls() const { return slurp(dir_ + "/calls"); }
  const std::string& dir() const { return dir_; }

 private:
  void make_image_archive() {
    const std::string layout = dir_ + "/layout", bundle = dir_ + "/unpacked";
    Result r =
        sh("umoci init --layout " + layout + " && umoci new --image " + layout +
           ":bb && umoci unpack --image " + layout + ":bb " + bundle + " && cp -a " +
           busybox_root() + "/. " + bundle + "/rootfs/ && umoci repack --image " + layout + ":bb " +
           bundle + " && umoci config --image " + layout + ":bb --config.cmd /bin/sh && tar -C " +
           layout + " -cf " + dir_ + "/bb.tar . && rm -rf " + bundle);
    if (r.code != 0) throw std::runtime_error("making the OCI archive with umoci: " + r.err);
  }

  void write_config() const {
    // No CRI plugin: it would look for CNI configs and listen for kubelets.
    write_file(dir_ + "/config.toml",
               "version = 2\n"
               "disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n"
               "root = \"" +
                   dir_ +
                   "/root\"\n"
                   "state = \"" +
                   dir_ +
                   "/state\"\n"
                   "[grpc]\n  address = \"" +
                   dir_ +
                   "/containerd.sock\"\n"
                   "[ttrpc]\n  address = \"" +
                   dir_ +
                   "/containerd.sock.ttrpc\"\n"
                   "[debug]\n  address = \"" +
                   dir_ + "/debug.sock\"\n");
  }

  void stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    wait_exit(pid_);
    pid_ = -1;
    // A shim whose task a failed test left behind outlives containerd: whatever still runs in
    // containerd's mount namespace is ours to end.
    if (mount_ns_.empty()) return;
    for (const auto& e : fs::directory_iterator("/proc")) {
      std::error_code ec;
      const std::string name = e.path().filename().string();
      if (name.find_first_not_of("0123456789") != std::string::npos) continue;
      if (fs::read_symlink(e.path() / "ns/mnt", ec).string() == mount_ns_)
        ::kill(std::stoi(name), SIGKILL);
    }
    // The runtime removes each container's cgroup; the namespace's, the shim's parent of them,
    // is ours to remove.
    sh("rmdir /sys/fs/cgroup/*/" + namespace_ + " /sys/fs/cgroup/" + namespace_ + " 2>/dev/null");
    // Reap the shims that came to us (a shim ends shortly after its task is deleted).
    eventually(
        [] {
          while (::waitpid(-1, nullptr, WNOHANG) > 0) {
          }
          return ::waitpid(-1, nullptr, WNOHANG) < 0 && errno == ECHILD;
        },
        std::chrono::seconds(5));
  }

  std::string dir_;
  std::string namespace_;
  pid_t pid_ = -1;
  std::string mount_ns_;
};

}  // namespace

// ctr run: the program's stdout and exit status come back through the shim, also with a tty,
// and --rm leaves neither a task nor a container.
TEST(RuntimeContainerd, RunReturnsOutputAndExitStatusWithAndWithoutATty) {
  Containerd c;
  Result r = sh(c.run_command() + " --rm " + kImage + " plain sh -c 'echo hello; exit 3'");
  EXPECT_EQ(r.code, 3) << r.err;
  EXPECT_EQ(r.out, "hello\n");
  // ctr --tty wants a terminal of its own: script gives it one.
  r = sh("script -qec " +
         shell_quote(c.run_command() + " --rm --tty " + kImage + " tty sh -c 'tty; exit 4'") +
         " /dev/null");
  EXPECT_EQ(r.code, 4) << r.err;
  EXPECT_NE(r.out.find("/dev/pts/0"), std::string::npos) << r.out;
  EXPECT_EQ(c.ctr("task ls -q").out, "");
  EXPECT_EQ(c.ctr("containers ls -q").out, "");
  // cidrun was the runtime, driven as runc is: create, start, delete, with a JSON log.
  const std::string calls = c.calls();
  EXPECT_NE(calls.find("--log-format json create --bundle"), std::string::npos) << calls;
  EXPECT_NE(calls.find("--console-socket"), std::string::npos) << calls;
  EXPECT_NE(calls.find(" start plain"), std::string::npos) << calls;
  EXPECT_NE(calls.find(" delete"), std::string::npos) << calls;
}

// A detached task: exec with and without a tty, ps, pause and resume, metrics, kill --all, delete.
TEST(RuntimeContainerd, TaskExecPsPauseResumeKillDelete) {
  Containerd c;
  Result r = sh(c.run_command() + " -d " + kImage + " t1 sh -c 'sleep 300 & sleep 301 & wait'");
  ASSERT_EQ(r.code, 0) << r.err;
  r = c.ctr("task exec --exec-id e1 t1 sh -c 'echo in-exec; exit 5'");
  EXPECT_EQ(r.code, 5) << r.err;
  EXPECT_EQ(r.out, "in-exec\n");
  r = sh("script -qec " +
         shell_quote(c.ctr_command() + " task exec --tty --exec-id e2 t1 sh -c 'tty; exit 6'") +
         " /dev/null");
  EXPECT_EQ(r.code, 6) << r.err;
  EXPECT_NE(r.out.find("/dev/pts/"), std::string::npos) << r.out;
  // The init and both sleeps (ps asks the runtime: `ps --format json`).
  auto lines = [](const std::string& text) { return std::count(text.begin(), text.end(), '\n'); };
  EXPECT_TRUE(eventually([&] { return lines(c.ctr("task ps t1").out) == 4; }))
      << c.ctr("task ps t1").out;
  ASSERT_EQ(c.ctr("task pause t1").code, 0);
  EXPECT_NE(c.ctr("task ls").out.find("PAUSED"), std::string::npos);
  ASSERT_EQ(c.ctr("task resume t1").code, 0);
  EXPECT_NE(c.ctr("task ls").out.find("RUNNING"), std::string::npos);
  r = c.ctr("task metrics t1");
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("pids.current"), std::string::npos) << r.out;
  ASSERT_EQ(c.ctr("task kill --all --signal KILL t1").code, 0);
  EXPECT_TRUE(eventually([&] { return c.ctr("task ls").out.find("STOPPED") != std::string::npos; }))
      << c.ctr("task ls").out;
  EXPECT_EQ(c.ctr("task delete t1").code, 0);
  EXPECT_EQ(c.ctr("containers rm t1").code, 0);
  EXPECT_EQ(c.ctr("task ls -q").out, "");
  const std::string calls = c.calls();
  EXPECT_NE(calls.find(" exec --process "), std::string::npos) << calls;
  EXPECT_NE(calls.find(" pause t1"), std::string::npos) << calls;
  EXPECT_NE(calls.find(" kill --all t1 9"), std::string::npos) << calls;
}

// A container over its memory limit is killed by the kernel, and containerd hears of it: the
// shim follows the runtime's cgroup and publishes /tasks/oom.
TEST(RuntimeContainerd, OutOfMemoryIsAnEvent) {
  Containerd c;
  const std::string events = c.dir() + "/events";
  pid_t watcher = spawn_sh(c.ctr_command() + " events", events);
  // Subscribed once a container's creation shows up.
  ASSERT_TRUE(eventually([&] {
    c.ctr("containers create " + std::string(kImage) + " probe");
    c.ctr("containers rm probe");
    return slurp(events).find("/containers/create") != std::string::npos;
  })) << slurp(events);
  Result r = sh(c.run_command() + " --rm --memory-limit 8388608 " + kImage +
                " oom sh -c 'x=a; while :; do x=$x$x; done'");
  EXPECT_EQ(r.code, 137) << r.err;
  EXPECT_TRUE(wait_for_text(events, "/tasks/oom")) << slurp(events);
  ::kill(watcher, SIGTERM);
  wait_exit(watcher);
}
