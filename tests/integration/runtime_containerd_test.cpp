// cidrun under containerd (integration/containerd_process.h): an OCI archive of the busybox root
// made with umoci and imported with `ctr image import`, and containers run by containerd's runc
// shim with cidrun as its runc binary.
#include <signal.h>

#include <gtest/gtest.h>
#include <algorithm>
#include <stdexcept>
#include <string>

#include "integration/containerd_process.h"

using namespace rt_test;

namespace {

// The image's name once imported (umoci's archive has one manifest, tagged "bb").
constexpr const char* kImage = "cidrun-test/busybox:bb";

// containerd with umoci's OCI archive of the busybox root imported as kImage.
class BusyboxContainerd : public Containerd {
 public:
  BusyboxContainerd() {
    make_image_archive();
    Result r = ctr("image import --index-name " + std::string(kImage) + " " + dir() + "/bb.tar");
    if (r.code != 0) throw std::runtime_error("ctr image import: " + r.err);
  }

 private:
  void make_image_archive() {
    const std::string layout = dir() + "/layout", bundle = dir() + "/unpacked";
    Result r =
        sh("umoci init --layout " + layout + " && umoci new --image " + layout +
           ":bb && umoci unpack --image " + layout + ":bb " + bundle + " && cp -a " +
           busybox_root() + "/. " + bundle + "/rootfs/ && umoci repack --image " + layout + ":bb " +
           bundle + " && umoci config --image " + layout + ":bb --config.cmd /bin/sh && tar -C " +
           layout + " -cf " + dir() + "/bb.tar . && rm -rf " + bundle);
    if (r.code != 0) throw std::runtime_error("making the OCI archive with umoci: " + r.err);
  }
};

}  // namespace

// ctr run: the program's stdout and exit status come back through the shim, also with a tty,
// and --rm leaves neither a task nor a container.
TEST(RuntimeContainerd, RunReturnsOutputAndExitStatusWithAndWithoutATty) {
  BusyboxContainerd c;
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
  BusyboxContainerd c;
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
  BusyboxContainerd c;
  const std::string events = c.dir() + "/events";
  pid_t watcher = spawn_sh(c.ctr_command() + " events", events);
  // Subscribed once a container's creation shows up.
  ASSERT_TRUE(eventually([&] {
    c.ctr("containers create " + std::string(kImage) + " probe");
    c.ctr("containers rm probe");
    return slurp(events).find("/containers/create") != std::string::npos;
  })) << slurp(events);
  // The shim watches the cgroup for OOM once `start` has returned (as containerd's runc shim
  // does): a container that runs out of memory before then is killed with no event. The ASan
  // cidrun's exit-time leak check delays that return enough to lose the race, so the container
  // waits a moment first.
  Result r = sh(c.run_command() + " --rm --memory-limit 8388608 " + kImage +
                " oom sh -c 'sleep 2; x=a; while :; do x=$x$x; done'");
  EXPECT_EQ(r.code, 137) << r.err;
  EXPECT_TRUE(wait_for_text(events, "/tasks/oom")) << slurp(events);
  ::kill(watcher, SIGTERM);
  wait_exit(watcher);
}
