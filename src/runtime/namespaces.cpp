#include "runtime/namespaces.h"

#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <map>

#include "util/error.h"

namespace cidrun::runtime {
namespace {

// clone(2) with fork semantics (no new stack): the child returns 0 here and continues.
pid_t raw_clone(unsigned long flags) {
  return static_cast<pid_t>(::syscall(SYS_clone, flags, nullptr, nullptr, nullptr, nullptr));
}

// struct clone_args up to its cgroup field (CLONE_ARGS_SIZE_VER2, Linux 5.7), as the kernel's
// uapi lays it out; declared here because <linux/sched.h> clashes with glibc's <sched.h>.
struct CloneArgs {
  uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls, set_tid,
      set_tid_size, cgroup;
};
static_assert(sizeof(CloneArgs) == 88);
constexpr uint64_t kCloneIntoCgroup = 0x200000000ULL;

// clone3(2) with fork semantics (no stack given: the child runs on a copy of ours), born in the
// cgroup that cgroup_fd names.
pid_t clone_into_cgroup(unsigned long flags, int cgroup_fd) {
  CloneArgs args{};
  args.flags = flags | kCloneIntoCgroup;
  args.exit_signal = SIGCHLD;
  args.cgroup = static_cast<uint64_t>(cgroup_fd);
  return static_cast<pid_t>(::syscall(SYS_clone3, &args, sizeof args));
}

[[noreturn]] void run_child(const std::function<void()>& child) {
  try {
    child();
  } catch (...) {
  }
  ::_exit(1);
}

}  // namespace

unsigned long namespace_clone_flag(const std::string& type) {
  static const std::map<std::string, unsigned long> m{
      {"pid", CLONE_NEWPID},       {"network", CLONE_NEWNET}, {"mount", CLONE_NEWNS},
      {"ipc", CLONE_NEWIPC},       {"uts", CLONE_NEWUTS},     {"user", CLONE_NEWUSER},
      {"cgroup", CLONE_NEWCGROUP}, {"time", CLONE_NEWTIME},
  };
  auto it = m.find(type);
  return it == m.end() ? 0 : it->second;
}

std::string namespace_proc_name(const std::string& type) {
  if (type == "network") return "net";
  if (type == "mount") return "mnt";
  return type;
}

pid_t spawn_in_namespaces(std::vector<NamespaceToJoin>& joins, unsigned long clone_flags,
                          SyncSocket& parent_end, SyncSocket& child_end,
                          const std::function<void()>& child, int cgroup_fd, bool* into_cgroup) {
  if (into_cgroup) *into_cgroup = false;
  if (joins.empty()) {
    pid_t pid = -1;
    if (cgroup_fd >= 0) {
      pid = clone_into_cgroup(clone_flags, cgroup_fd);
      // An older kernel (ENOSYS, E2BIG, EINVAL) or a cgroup that refuses (the caller's
      // cgroup.procs write then says why): a plain clone.
      if (pid >= 0 && into_cgroup) *into_cgroup = true;
    }
    if (pid < 0) pid = raw_clone(clone_flags | SIGCHLD);
    if (pid < 0) throw_errno("clone");
    if (pid == 0) {
      parent_end.close();
      run_child(child);
    }
    return pid;
  }
  pid_t mid = ::fork();
  if (mid < 0) throw_errno("fork");
  if (mid == 0) {
    parent_end.close();
    try {
      for (auto& ns : joins)
        if (::setns(ns.fd.get(), static_cast<int>(namespace_clone_flag(ns.type))) < 0)
          throw_errno("join " + ns.type + " namespace");
      // CLONE_PARENT: the final process is the runtime's child, not ours, so we can exit now.
      pid_t pid = raw_clone(clone_flags | CLONE_PARENT | SIGCHLD);
      if (pid < 0) throw_errno("clone");
      if (pid == 0) run_child(child);
      child_end.send(SyncStep::kChildPid, pid);
      ::_exit(0);
    } catch (const std::exception& e) {
      child_end.send_failure(e.what());
      ::_exit(1);
    }
  }
  int status;
  while (::waitpid(mid, &status, 0) < 0 && errno == EINTR) {
  }
  return static_cast<pid_t>(
      parent_end.expect(SyncStep::kChildPid, "namespace setup process").value);
}

void bring_up_loopback() {
  UniqueFd s(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!s.valid()) throw_errno("socket for loopback");
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
  if (::ioctl(s.get(), SIOCGIFFLAGS, &ifr) < 0) throw_errno("get flags of lo");
  ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP | IFF_RUNNING);
  if (::ioctl(s.get(), SIOCSIFFLAGS, &ifr) < 0) throw_errno("bring up lo");
}

}  // namespace cidrun::runtime
