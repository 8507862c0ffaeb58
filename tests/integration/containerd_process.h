// containerd for the integration tests, the way Kubernetes reaches a runtime: Debian's containerd
// with its own config, root, state and socket in the test's work directory, a containerd
// namespace of the test's own, and containers run by containerd's runc shim
// (io.containerd.runc.v2) with cidrun as its runc binary.
//
// containerd and its shims keep their runtime files under /run/containerd whatever the config
// says, so containerd runs in a mount namespace of its own with a private tmpfs on /run, and
// every ctr runs in that namespace too (its fifos must be where the shim looks): nothing of the
// host's /run is touched.
#pragma once

#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <filesystem>
#include <stdexcept>
#include <string>

#include "integration/runtime_helpers.h"

namespace rt_test {

class Containerd {
 public:
  // Starts containerd and waits until it answers; throws (with its log) when it does not.
  Containerd()
      : dir_(work_dir() + "/containerd"), namespace_("cidrun-test-" + std::to_string(::getpid())) {
    sh("rm -rf " + dir_ + " && mkdir -p " + dir_);
    // The shims detach from containerd (they daemonize): orphans come to this process, which
    // reaps them, rather than to a pid 1 that may not.
    ::prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
    write_config();
    // The shim runs this wrapper as runc: it records each call, so a test can tell that cidrun
    // was the runtime and what the shim asked of it, then runs cidrun itself.
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
    mount_ns_ = std::filesystem::read_symlink("/proc/" + std::to_string(pid_) + "/ns/mnt").string();
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
    for (const auto& e : std::filesystem::directory_iterator("/proc")) {
      std::error_code ec;
      const std::string name = e.path().filename().string();
      if (name.find_first_not_of("0123456789") != std::string::npos) continue;
      if (std::filesystem::read_symlink(e.path() / "ns/mnt", ec).string() == mount_ns_)
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

}  // namespace rt_test
