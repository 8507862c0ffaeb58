// exec: a new process inside a running container — every namespace of its init joined (user
// first, so the others are entered with the container's privileges), its cgroup joined, then the
// same final steps as the init (process.cpp).
#include <fcntl.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>

#include "runtime/cgroups.h"
#include "runtime/container.h"
#include "runtime/namespaces.h"
#include "runtime/process.h"
#include "runtime/state.h"
#include "runtime/terminal.h"
#include "util/error.h"
#include "util/log.h"

namespace cidrun::runtime {

namespace {

using nlohmann::json;

ino_t ns_inode(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) < 0) return 0;
  return st.st_ino;
}

struct ExecPlan {
  const ExecOptions* opts;
  json seccomp;
  bool user_ns;
  sigset_t saved_mask;
  // A container without a mount namespace of its own shares ours: its root is the init's
  // chroot, entered through this fd (else -1: joining its mount namespace entered its root).
  int root_fd = -1;
};

[[noreturn]] void exec_child(const ExecPlan& plan, const SyncSocket& sock) {
  UniqueFd slave;
  try {
    ::sigprocmask(SIG_SETMASK, &plan.saved_mask, nullptr);
    sock.expect_from_runtime(SyncStep::kGo);
    if (plan.user_ns) {
      if (::setresgid(0, 0, 0) < 0) throw_errno("setgid 0 in the user namespace");
      if (::setresuid(0, 0, 0) < 0) throw_errno("setuid 0 in the user namespace");
    }
    if (plan.root_fd >= 0) {
      if (::fchdir(plan.root_fd) < 0) throw_errno("enter the container's root");
      if (::chroot(".") < 0) throw_errno("chroot into the container's root");
      if (::chdir("/") < 0) throw_errno("chdir /");
      ::close(plan.root_fd);
    }
    if (plan.opts->process.terminal) {
      // setns(mnt) made the container's root our root: this is the container's devpts.
      Pty pty = open_pty("/dev/ptmx");
      set_window_size(pty.master.get(), plan.opts->process.console_rows,
                      plan.opts->process.console_cols);
      sock.send(SyncStep::kPty, 0, pty.master.get());
      slave = std::move(pty.slave);
    }
    sock.send(SyncStep::kReady);
    sock.expect_from_runtime(SyncStep::kStart);
  } catch (const std::exception& e) {
    exit_setup_failed(e, sock);
  }
  FinalizeOptions fo;
  fo.process = &plan.opts->process;
  fo.seccomp = plan.seccomp;
  fo.terminal_slave = slave.valid() ? slave.release() : -1;
  fo.preserve_fds = plan.opts->preserve_fds;
  fo.setgroups_allowed = !plan.user_ns || ::geteuid() == 0;
  finalize_and_exec(fo, sock);
}

}  // namespace

nlohmann::json exec_process_defaults(const std::string& state_root, const std::string& id) {
  StateStore store(state_root);
  store.load(id);
  nlohmann::json config = store.load_config(id);
  nlohmann::json p = config.contains("process") && config["process"].is_object()
                         ? config["process"]
                         : nlohmann::json::object();
  p["terminal"] = false;
  p["args"] = nlohmann::json::array();
  p.erase("consoleSize");
  return p;
}

std::string container_root_path(const std::string& state_root, const std::string& id) {
  StateStore store(state_root);
  ContainerState st = store.load(id);
  if (st.pid <= 0 || process_start_time(st.pid) != st.pid_start_time)
    throw Error("container " + id + " is not running");
  return "/proc/" + std::to_string(st.pid) + "/root";
}

int exec_in_container(const std::string& state_root, const std::string& id,
                      const ExecOptions& opts) {
  StateStore store(state_root);
  ContainerState st = store.load(id);
  std::string status = container_status(store, st);
  if (status != "running" && status != "created")
    throw Error("cannot exec in container " + id + ": it is " + status);
  if (opts.process.args.empty()) throw Error("exec: no command given");
  if (opts.process.terminal && opts.detach && opts.console_socket.empty())
    throw Error("exec --tty --detach needs --console-socket");
  Spec spec = parse_spec(store.load_config(id), "saved config of " + id);

  // Open every namespace first: after joining the mount namespace these paths lead elsewhere.
  std::vector<NamespaceToJoin> joins;
  bool user_ns = false;
  UniqueFd shared_root;
  for (const char* type : {"user", "ipc", "uts", "network", "pid", "cgroup", "mount"}) {
    std::string name = namespace_proc_name(type);
    std::string theirs = "/proc/" + std::to_string(st.pid) + "/ns/" + name;
    ino_t ino = ns_inode(theirs);
    if (ino != 0 && ino == ns_inode("/proc/self/ns/" + name) && name == "mnt") {
      std::string root = "/proc/" + std::to_string(st.pid) + "/root";
      shared_root.reset(::open(root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
      if (!shared_root.valid()) throw_errno("open " + root);
    }
    if (ino == 0 || ino == ns_inode("/proc/self/ns/" + name)) continue;
    UniqueFd fd(::open(theirs.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd.valid()) throw_errno("open " + theirs);
    if (std::string(type) == "user") user_ns = true;
    joins.push_back({type, std::move(fd)});
  }
  // The recorded start time proves those fds belong to the container's init, not a reused pid.
  if (process_start_time(st.pid) != st.pid_start_time)
    throw Error("container " + id + " is not running");

  sigset_t fwd, saved;
  sigemptyset(&fwd);
  for (int s : {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH, SIGCHLD, SIGPIPE})
    sigaddset(&fwd, s);
  ::sigprocmask(SIG_BLOCK, &fwd, &saved);
  UniqueFd sigfd(::signalfd(-1, &fwd, SFD_CLOEXEC | SFD_NONBLOCK));

  ExecPlan plan{&opts, spec.seccomp, user_ns, saved, shared_root.get()};
  // Named sockets, not a structured binding: the child's lambda captures one.
  std::pair<SyncSocket, SyncSocket> ends = SyncSocket::pair();
  SyncSocket& parent_end = ends.first;
  SyncSocket& child_end = ends.second;
  pid_t pid =
      spawn_in_namespaces(joins, 0, parent_end, child_end, [&] { exec_child(plan, child_end); });
  child_end.close();
  shared_root.reset();
  UniqueFd master;
  try {
    if (!st.cgroup.is_null()) CgroupManager::open(st.cgroup)->apply(pid);
    parent_end.send(SyncStep::kGo, pid);
    if (opts.process.terminal) parent_end.expect(SyncStep::kPty, "exec process", &master);
    parent_end.expect(SyncStep::kReady, "exec process");
    if (master.valid() && !opts.console_socket.empty()) {
      send_to_console_socket(opts.console_socket, master.get());
      master.reset();
    }
    parent_end.send(SyncStep::kStart);
    // The process closes its end at execve (close-on-exec); a failure arrives as a message.
    if (std::optional<SyncMessage> m = parent_end.recv(); m && m->step == SyncStep::kFailed) {
      // The process could not exec: its status (127 not found, 126 not executable) is ours.
      log::fatal(m->text);
      while (::waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
      }
      ::sigprocmask(SIG_SETMASK, &saved, nullptr);
      return static_cast<int>(m->value);
    }
  } catch (...) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    ::sigprocmask(SIG_SETMASK, &saved, nullptr);
    throw;
  }
  if (!opts.pid_file.empty()) {
    std::string text = std::to_string(pid);
    write_file_atomic(opts.pid_file,
                      ByteView(reinterpret_cast<const uint8_t*>(text.data()), text.size()), false,
                      0644);
  }
  if (opts.detach) {
    ::sigprocmask(SIG_SETMASK, &saved, nullptr);
    return 0;
  }
  int code = wait_forwarding(pid, sigfd.get(), master.get(), true);
  ::sigprocmask(SIG_SETMASK, &saved, nullptr);
  return code;
}

}  // namespace cidrun::runtime
