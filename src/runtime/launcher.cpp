// create and run: the runtime (parent) side and the container's init (child) side of a start.
//
//   runtime                                  init (in its new namespaces)
//   cgroup dirs, their "tasks" files opened,
//   exec fifo (create) opened read-write
//   spawn ------------------------------->   move itself into the cgroup (v1)
//   uid/gid maps, cgroup (v2), resources,    [wait "go" here with a new user ns or on v2]
//   "go"                                     become root of the user ns, cgroup ns, hostname,
//                                            rootfs mounts + devices, [else wait "go"] -> "mounted"
//   prestart + createRuntime hooks, "hooks"  createContainer hooks, pivot_root, sysctl,
//                                            pty (-> "pty" + fd), masked/ro paths,
//                                            the process's setup up to seccomp (process.h) ->
//                                            "ready"
//   state.json, pid file, console socket     wait for start: a byte on the exec fifo (create) or
//   (run: "start", poststart, wait)          "start" (run); startContainer hooks, execve
// Everything that can fail happens before "ready", so that `create` reports it; once `start`
// has seen the init's fifo fd close at its execve, the program runs (lifecycle.cpp).
// "mounted"/"hooks" happen only when there are prestart or createRuntime hooks, and run's
// "start" only when the runtime still has a pid file or console socket to handle after "ready":
// otherwise each would only add two wake-ups to the start.
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "runtime/cgroups.h"
#include "runtime/container.h"
#include "runtime/hooks.h"
#include "runtime/namespaces.h"
#include "runtime/process.h"
#include "runtime/rootfs.h"
#include "runtime/self_protect.h"
#include "runtime/state.h"
#include "runtime/sync.h"
#include "runtime/sysctl.h"
#include "runtime/terminal.h"
#include "util/error.h"
#include "util/log.h"
#include "util/proc.h"

namespace cidrun::runtime {
namespace {

using nlohmann::json;

enum class Mode { kCreate, kRun };

struct InitPlan {
  const LaunchOptions* opts;
  Mode mode;
  const Spec* spec;
  const Overlay* overlay;
  int exec_fifo_fd;      // create: the exec fifo, opened read-write by the runtime
  bool user_ns = false;  // in a user namespace (new or joined)
  bool new_cgroup_ns = false;
  sigset_t saved_mask;
  int exec_stub_fd = -1;
  // Files through which the init moves itself into its cgroup (CgroupManager::open_self_attach).
  std::vector<int> cgroup_fds;
  // The init waits for "go" before its own setup when that needs the runtime's work first: uid
  // and gid maps (user namespace) or its cgroup (moved in by the runtime: the cgroup namespace
  // and mount show the cgroup it is in). Otherwise it mounts its root meanwhile and takes "go"
  // (its cgroup's limits are written) only before anything but cidrun's code can run.
  bool go_first = true;
  // Each handshake is two wake-ups on the start's critical path: taken only when the runtime has
  // work to do at that point (runtime_hooks_step) or can still fail after "ready" (start_step).
  bool runtime_hooks_step = true;
  bool start_step = true;
  // Set when the init is to be cloned into its cgroup: whether clone3 did (read in the init's
  // copy of the launcher's memory). If not, the runtime moves the init, which waits for "go" first.
  const bool* cloned_into_cgroup = nullptr;
};

// Both sides decide from the same inputs whether the "mounted"/"hooks" and "start" steps happen.
bool has_runtime_hooks(const Spec& spec) {
  return !spec.hooks.prestart.empty() || !spec.hooks.create_runtime.empty();
}
bool needs_start_step(const LaunchOptions& o) {
  return !o.pid_file.empty() || !o.console_socket.empty();
}

json hook_state(const LaunchOptions& o, const std::string& status, pid_t pid) {
  return {{"ociVersion", "1.1.0"}, {"id", o.id},
          {"status", status},      {"pid", pid},
          {"bundle", o.bundle},    {"annotations", o.spec.annotations}};
}

void set_hostname(const Spec& s) {
  if (!s.hostname.empty() && ::sethostname(s.hostname.data(), s.hostname.size()) < 0)
    throw_errno("sethostname " + s.hostname);
  if (!s.domainname.empty() && ::setdomainname(s.domainname.data(), s.domainname.size()) < 0)
    throw_errno("setdomainname " + s.domainname);
}

// create: blocks until `start` writes its byte to the exec fifo (lifecycle.cpp). The fd stays
// open until execve closes it (close-on-exec), which is how `start` knows the program runs.
void wait_for_start_command(int exec_fifo) {
  char byte = 0;
  for (;;) {
    ssize_t n = ::read(exec_fifo, &byte, 1);
    if (n == 1) return;
    // The init holds the fifo open for writing too, so a read never sees end-of-file.
    if (n < 0 && errno != EINTR) throw_errno("read exec fifo");
  }
}

[[noreturn]] void container_init(const InitPlan& plan, const SyncSocket& sock) {
  const Spec& spec = *plan.spec;
  try {
    ::sigprocmask(SIG_SETMASK, &plan.saved_mask, nullptr);
    // Until the container is created, it must not outlive a runtime that died half-way.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
    ::umask(0);
    attach_self(plan.cgroup_fds);
    for (int fd : plan.cgroup_fds) ::close(fd);
    pid_t host_pid = 0;
    auto wait_go = [&] {
      host_pid = static_cast<pid_t>(sock.expect_from_runtime(SyncStep::kGo).value);
    };
    const bool go_first = plan.go_first || (plan.cloned_into_cgroup && !*plan.cloned_into_cgroup);
    if (go_first) wait_go();
    if (plan.user_ns) {
      if (::setresgid(0, 0, 0) < 0) throw_errno("setgid 0 in the user namespace");
      if (::setresuid(0, 0, 0) < 0) throw_errno("setuid 0 in the user namespace");
    }
    RootfsContext ctx;
    ctx.in_user_namespace = plan.user_ns;
    ctx.new_cgroup_namespace = plan.new_cgroup_ns;
    ctx.own_mount_namespace = spec.has_namespace("mount");
    for (const auto& m : spec.mounts)
      if (m.type == "cgroup" && ctx.cgroup_paths.empty()) ctx.cgroup_paths = read_self_cgroups();
    // After the runtime put us in our cgroup, so the namespace's root is that cgroup.
    if (plan.new_cgroup_ns && ::unshare(CLONE_NEWCGROUP) < 0) throw_errno("unshare cgroup ns");
    set_hostname(spec);
    const NamespaceSpec* net = spec.find_namespace("network");
    if (net && net->path.empty()) bring_up_loopback();
    prepare_rootfs(spec, plan.overlay, ctx);
    if (!go_first) wait_go();
    if (plan.runtime_hooks_step) {
      sock.send(SyncStep::kMounted);
      sock.expect_from_runtime(SyncStep::kHooksDone);
    }
    run_hooks(spec.hooks.create_container, hook_state(*plan.opts, "created", host_pid),
              "createContainer");
    enter_root(spec.root_path, ctx);
    if (!spec.sysctl.is_null()) {
      const NamespaceSpec* ipc = spec.find_namespace("ipc");
      const NamespaceSpec* uts = spec.find_namespace("uts");
      SysctlNamespaces sn{ipc && ipc->path.empty(), net && net->path.empty(),
                          uts && uts->path.empty()};
      apply_sysctl(spec.sysctl, sn);
    }
    UniqueFd pty_slave;
    if (spec.process.terminal) {
      Pty pty = open_pty("/dev/ptmx");
      set_window_size(pty.master.get(), spec.process.console_rows, spec.process.console_cols);
      // `run -t` on a terminal: the program must see that terminal's size from its first
      // instruction, not from when the parent starts relaying (it may already be running then).
      // stdin is still the caller's here; become_terminal_session replaces it later.
      if (plan.mode == Mode::kRun && spec.process.console_rows == 0 &&
          spec.process.console_cols == 0 && ::isatty(STDIN_FILENO)) {
        copy_window_size(STDIN_FILENO, pty.master.get());
      }
      bind_console(pty.master.get());
      sock.send(SyncStep::kPty, 0, pty.master.get());
      pty_slave = std::move(pty.slave);
    }
    finish_rootfs(spec);
    FinalizeOptions fo;
    fo.process = &spec.process;
    fo.seccomp = spec.seccomp;
    fo.terminal_slave = pty_slave.valid() ? pty_slave.release() : -1;
    fo.preserve_fds = plan.opts->preserve_fds;
    fo.setgroups_allowed = !plan.user_ns || ::geteuid() == 0;
    fo.exec_stub_fd = plan.exec_stub_fd;
    // Everything that can fail happens before "ready", so create and run report it; what is left
    // is the wait for the start, startContainer hooks and the execve.
    PreparedProgram program = prepare_process(fo);
    // From "ready" on, a created container lives on its own: `create` exits as soon as it reads
    // it. A run's init keeps dying with the runtime (a user switch cleared that setting).
    ::prctl(PR_SET_PDEATHSIG, plan.mode == Mode::kCreate ? 0 : SIGKILL, 0, 0, 0);
    sock.send(SyncStep::kReady);
    if (plan.mode == Mode::kCreate) {
      wait_for_start_command(plan.exec_fifo_fd);
    } else if (plan.start_step) {
      sock.expect_from_runtime(SyncStep::kStart);
    }
    run_hooks(spec.hooks.start_container, hook_state(*plan.opts, "running", host_pid),
              "startContainer");
    exec_program(program, sock);
  } catch (const std::exception& e) {
    exit_setup_failed(e, sock);
  }
}

void write_id_map(pid_t pid, const char* file, const std::vector<IdMapping>& maps) {
  std::string text;
  for (const auto& m : maps)
    text += std::to_string(m.container_id) + " " + std::to_string(m.host_id) + " " +
            std::to_string(m.size) + "\n";
  std::string path = "/proc/" + std::to_string(pid) + "/" + file;
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd.valid()) throw_errno("open " + path);
  if (::write(fd.get(), text.data(), text.size()) < 0) throw_errno("write " + path);
}

void write_pid_file(const std::string& path, pid_t pid) {
  if (path.empty()) return;
  std::string text = std::to_string(pid);
  // Written whole or not at all: podman reads it as soon as it appears.
  write_file_atomic(path, ByteView(reinterpret_cast<const uint8_t*>(text.data()), text.size()),
                    false, 0644);
}

// The device nodes every container gets (rootfs.cpp) must stay usable under a "deny all" device
// rule, so their allow rules follow the config's, as runc's AllowedDevices do.
json with_default_devices(const json& resources) {
  if (!resources.contains("devices") || !resources["devices"].is_array()) return resources;
  json r = resources;
  auto allow = [&](const char* type, int64_t major, int64_t minor, const char* access) {
    json rule = {{"allow", true}, {"type", type}, {"access", access}};
    if (major >= 0) rule["major"] = major;
    if (minor >= 0) rule["minor"] = minor;
    r["devices"].push_back(rule);
  };
  allow("c", -1, -1, "m");
  allow("b", -1, -1, "m");
  for (auto [maj, min] :
       {std::pair{1, 3}, {1, 5}, {1, 7}, {1, 8}, {1, 9}, {5, 0}, {5, 1}, {5, 2}, {10, 200}})
    allow("c", maj, min, "rwm");
  allow("c", 136, -1, "rwm");  // /dev/pts/*
  return r;
}

// Limits that need a cgroup; device rules alone do not (without privileges no device node can
// be created or opened beyond what the user ns allows anyway, so runc ignores them rootless).
bool asks_for_limits(const json& resources) {
  if (!resources.is_object()) return false;
  for (const auto& [key, value] : resources.items())
    if (key != "devices" && !value.is_null() && !value.empty()) return true;
  return false;
}

// Rootless, like runc and crun: a cgroup is used when one is delegated to the caller (its
// directories writable), else the container runs in the caller's cgroup unless the config
// asks for limits, which then fails with the reason. `step` creates or joins the cgroup.
template <typename Step>
void apply_cgroup(std::unique_ptr<CgroupManager>& cgroup, const json& resources,
                  const std::string& id, const Step& step) {
  try {
    step();
  } catch (const Error& e) {
    if (::geteuid() == 0) throw;
    if (asks_for_limits(resources)) {
      throw Error(std::string(e.what()) +
                  " (rootless: resource limits need a cgroup delegated to this user)");
    }
    log::debug(std::string("rootless, running without a cgroup: ") + e.what());
    try {
      cgroup->destroy();
    } catch (const Error&) {
    }
    cgroup = CgroupManager::create("", id, /*disabled=*/true);
  }
}

struct Launched {
  pid_t pid = 0;
  ContainerState state;
  std::unique_ptr<CgroupManager> cgroup;
  SyncSocket sock;
  UniqueFd pty_master;
  UniqueFd state_lock;  // held until the state is saved (StateStore::create_dir says why)
};

// Everything up to "ready". On failure nothing is left behind: the init is killed and reaped, its
// cgroup and state directory removed.
Launched launch(const LaunchOptions& opts_in, Mode mode, const sigset_t& saved_mask) {
  LaunchOptions opts = opts_in;
  Spec& spec = opts.spec;
  StateStore store(opts.state_root);
  if (!spec.has_namespace("mount") && !opts.lower_dirs.empty()) {
    throw Error(
        "linux.namespaces: a root made from an image needs a mount namespace (without one its "
        "overlay would be mounted in the runtime's)");
  }
  if (spec.process.terminal && mode == Mode::kCreate && opts.console_socket.empty())
    throw Error("process.terminal needs --console-socket when the runtime detaches");
  Launched l;
  l.state_lock = store.create_dir(opts.id);
  std::string sdir = store.dir(opts.id);
  l.state.id = opts.id;
  l.state.bundle = opts.bundle;
  l.state.created = rfc3339_now();
  l.state.annotations = spec.annotations;
  l.state.owner = ::geteuid() == 0 ? "root" : std::to_string(::geteuid());
  pid_t pid = 0;
  try {
    Overlay overlay;
    if (!opts.lower_dirs.empty()) {
      overlay.lowers = opts.lower_dirs;
      overlay.upper = sdir + "/upper";
      overlay.work = sdir + "/work";
      spec.root_path = sdir + "/rootfs";
      for (const auto& d : {overlay.upper, overlay.work, spec.root_path})
        if (::mkdir(d.c_str(), 0755) < 0) throw_errno("mkdir " + d);
    }
    {
      struct stat st;
      if (::stat(spec.root_path.c_str(), &st) < 0 || !S_ISDIR(st.st_mode))
        throw Error("root.path " + spec.root_path + " is not a directory");
    }
    l.state.rootfs = spec.root_path;
    if (!spec.has_namespace("mount")) {
      l.state.shared_root_mount_id = mount_id_of(spec.root_path);
      if (l.state.shared_root_mount_id == 0)
        throw_errno("statx (mount id) of root.path " + spec.root_path);
    }
    // The init waits for `start` reading this fifo through an fd opened here, as root on the
    // host: it may have no right to open the fifo itself (a user namespace, another user).
    // Read-write, so that the init's read blocks until `start` writes instead of seeing EOF.
    UniqueFd exec_fifo;
    if (mode == Mode::kCreate) {
      const std::string fifo = store.fifo_path(opts.id);
      if (::mkfifo(fifo.c_str(), 0600) < 0) throw_errno("mkfifo " + fifo);
      exec_fifo.reset(::open(fifo.c_str(), O_RDWR | O_CLOEXEC));
      if (!exec_fifo.valid()) throw_errno("open " + fifo);
    }

    if (opts.no_cgroup && asks_for_limits(spec.resources)) {
      throw Error(
          "linux.resources asks for limits, which cannot be applied without a cgroup "
          "(drop --no-cgroup or the limits)");
    }
    l.cgroup = CgroupManager::create(spec.cgroups_path, opts.id, opts.no_cgroup);
    // Made before the init exists, which moves itself in first thing (cheaper than apply(pid)).
    std::vector<UniqueFd> cgroup_fds;
    apply_cgroup(l.cgroup, spec.resources, opts.id,
                 [&] { cgroup_fds = l.cgroup->open_self_attach(); });

    std::vector<NamespaceToJoin> joins;
    unsigned long flags = 0;
    bool joins_user = false;
    for (const auto& ns : spec.namespaces) {
      if (ns.path.empty()) {
        if (ns.type != "cgroup") flags |= namespace_clone_flag(ns.type);
        continue;
      }
      UniqueFd fd(::open(ns.path.c_str(), O_RDONLY | O_CLOEXEC));
      if (!fd.valid()) throw_errno("open " + ns.type + " namespace " + ns.path);
      if (ns.type == "user") joins_user = true;
      joins.push_back({ns.type, std::move(fd)});
    }
    // As root the user namespace goes last: once in it, the host's privileges are gone. Without
    // them it goes first, as runc always does: joining a namespace needs CAP_SYS_ADMIN in the
    // caller's own user namespace too, which only the joined one gives (a rootless container on
    // the network namespace of a user namespace made for it, cli/slirp.h).
    const bool user_first = ::geteuid() != 0;
    std::stable_partition(joins.begin(), joins.end(), [&](const NamespaceToJoin& j) {
      return (j.type == "user") == user_first;
    });
    // Else, where the backend can (v2) and no namespace is joined through an intermediate
    // process, the init is cloned straight into its cgroup.
    UniqueFd clone_target;
    if (cgroup_fds.empty() && l.cgroup->enabled() && joins.empty()) {
      apply_cgroup(l.cgroup, spec.resources, opts.id,
                   [&] { clone_target = l.cgroup->open_clone_target(); });
    }
    bool cloned_into_cgroup = false;
    const bool runtime_attaches =
        cgroup_fds.empty() && !clone_target.valid() && l.cgroup->enabled();
    const NamespaceSpec* cg = spec.find_namespace("cgroup");
    UniqueFd exec_stub;
    if (mode == Mode::kRun && opts.exec_through_stub)
      exec_stub = sealed_exec_stub(3 + opts.preserve_fds);
    InitPlan plan{&opts,
                  mode,
                  &spec,
                  opts.lower_dirs.empty() ? nullptr : &overlay,
                  exec_fifo.get(),
                  (flags & CLONE_NEWUSER) != 0 || joins_user,
                  cg && cg->path.empty(),
                  saved_mask,
                  exec_stub.get(),
                  {},
                  (flags & CLONE_NEWUSER) != 0 || runtime_attaches,
                  has_runtime_hooks(spec),
                  mode == Mode::kRun && needs_start_step(opts)};
    for (const auto& fd : cgroup_fds) plan.cgroup_fds.push_back(fd.get());
    if (clone_target.valid()) plan.cloned_into_cgroup = &cloned_into_cgroup;
    // Named sockets, not a structured binding: the child's lambda captures one.
    std::pair<SyncSocket, SyncSocket> ends = SyncSocket::pair();
    SyncSocket& parent_end = ends.first;
    SyncSocket& child_end = ends.second;
    pid = spawn_in_namespaces(
        joins, flags, parent_end, child_end, [&] { container_init(plan, child_end); },
        clone_target.get(), &cloned_into_cgroup);
    child_end.close();
    // Only the init may hold the fifo: `start` learns from it that the init is gone or exec'd.
    exec_fifo.reset();
    exec_stub.reset();
    cgroup_fds.clear();
    if (clone_target.valid()) {
      log::debug(cloned_into_cgroup ? "cgroup: init cloned into " + l.cgroup->path()
                                    : "cgroup: clone3 into " + l.cgroup->path() +
                                          " failed, moving the init there instead");
    }
    clone_target.reset();
    l.pid = pid;
    l.state.pid = pid;
    if (flags & CLONE_NEWUSER) {
      if (::geteuid() != 0) {
        std::string p = "/proc/" + std::to_string(pid) + "/setgroups";
        UniqueFd fd(::open(p.c_str(), O_WRONLY | O_CLOEXEC));
        if (fd.valid()) (void)::write(fd.get(), "deny", 4);
      }
      write_id_map(pid, "uid_map", spec.uid_mappings);
      write_id_map(pid, "gid_map", spec.gid_mappings);
    }
    if (l.cgroup->enabled() && plan.cgroup_fds.empty() && !cloned_into_cgroup)
      apply_cgroup(l.cgroup, spec.resources, opts.id, [&] { l.cgroup->apply(pid); });
    if (!spec.resources.is_null()) l.cgroup->set_resources(with_default_devices(spec.resources));
    try {
      parent_end.send(SyncStep::kGo, pid);
    } catch (const Error&) {
      // Without go_first the init may have failed and gone already: its message says why.
      if (std::optional<SyncMessage> m = parent_end.recv(); m && m->step == SyncStep::kFailed)
        throw SetupFailed(m->text, static_cast<int>(m->value));
      throw;
    }
    // While the init sets up: nothing reads these before the state is saved.
    l.state.cgroup = l.cgroup->save();
    l.state.pid_start_time = process_start_time(pid);
    l.state.has_own_netns = spec.has_namespace("network");
    json saved = spec.raw;
    saved["root"]["path"] = spec.root_path;
    store.save_config(opts.id, saved);
    if (plan.runtime_hooks_step) {
      parent_end.expect(SyncStep::kMounted, "container init");
      json hs = hook_state(opts, "created", pid);
      run_hooks(spec.hooks.prestart, hs, "prestart");
      run_hooks(spec.hooks.create_runtime, hs, "createRuntime");
      parent_end.send(SyncStep::kHooksDone);
    }
    if (spec.process.terminal) parent_end.expect(SyncStep::kPty, "container init", &l.pty_master);
    parent_end.expect(SyncStep::kReady, "container init");
    if (!opts.lower_dirs.empty()) {
      l.state.remove_on_delete = {overlay.upper, overlay.work, spec.root_path};
    }
    // run saves it once the init has exec'd (self_protect.h: nothing may join the container
    // before then).
    if (mode == Mode::kCreate) store.save(l.state);
    write_pid_file(opts.pid_file, pid);
    if (l.pty_master.valid() && !opts.console_socket.empty()) {
      send_to_console_socket(opts.console_socket, l.pty_master.get());
      l.pty_master.reset();
    }
    l.sock = std::move(parent_end);
    return l;
  } catch (...) {
    if (pid > 0) {
      ::kill(pid, SIGKILL);
      while (::waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
      }
    }
    if (l.state.shared_root_mount_id != 0) {
      try {
        detach_shared_root(spec.root_path, l.state.shared_root_mount_id);
      } catch (const Error& e) {
        log::warn(e.what());
      }
    }
    if (l.cgroup) {
      try {
        l.cgroup->destroy();
      } catch (const Error& e) {
        log::warn(e.what());
      }
    }
    try {
      store.remove(opts.id);
    } catch (const Error&) {
    }
    throw;
  }
}

sigset_t forwarded_signals() {
  sigset_t set;
  sigemptyset(&set);
  for (int s :
       {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH, SIGCHLD, SIGCONT, SIGPIPE})
    sigaddset(&set, s);
  return set;
}

int exit_status(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return 1;
}

}  // namespace

int wait_forwarding(pid_t pid, int sigfd, int pty_master, bool forward_stdin) {
  std::optional<RawMode> raw;
  if (pty_master >= 0) {
    if (::isatty(STDIN_FILENO)) {
      copy_window_size(STDIN_FILENO, pty_master);
      if (forward_stdin) raw.emplace(STDIN_FILENO);
    }
    ::fcntl(pty_master, F_SETFL, ::fcntl(pty_master, F_GETFL) | O_NONBLOCK);
  }
  bool stdin_open = pty_master >= 0 && forward_stdin;
  bool master_open = pty_master >= 0;
  int status = -1;
  char buf[16384];
  // SIGCHLD goes to any thread that has it unblocked: a command whose helper threads (a block
  // fetcher's) started before the mask was set would lose it, and the wait would never end. The
  // init's pidfd says it exited whatever thread the signal met.
  UniqueFd pidfd = open_pidfd(pid);
  auto reap = [&] {
    int st;
    pid_t r;
    while ((r = ::waitpid(-1, &st, WNOHANG)) > 0)
      if (r == pid) status = st;
  };
  auto drain_master = [&] {
    while (master_open) {
      ssize_t n = ::read(pty_master, buf, sizeof buf);
      if (n > 0) {
        try {
          write_full(STDOUT_FILENO, buf, static_cast<size_t>(n), "stdout");
        } catch (const Error&) {
          master_open = false;
        }
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && errno == EAGAIN) return;
      master_open = false;  // EIO: every slave fd is closed
    }
  };
  while (status < 0) {
    pollfd fds[4];
    int nfds = 0;
    fds[nfds++] = {sigfd, POLLIN, 0};
    int pidfd_idx = -1;
    if (pidfd.valid()) {
      pidfd_idx = nfds;
      fds[nfds++] = {pidfd.get(), POLLIN, 0};
    }
    int master_idx = -1, stdin_idx = -1;
    if (master_open) {
      master_idx = nfds;
      fds[nfds++] = {pty_master, POLLIN, 0};
    }
    if (stdin_open) {
      stdin_idx = nfds;
      fds[nfds++] = {STDIN_FILENO, POLLIN, 0};
    }
    // Without a pidfd (before Linux 5.3), look for the exit now and then all the same.
    if (::poll(fds, static_cast<nfds_t>(nfds), pidfd.valid() ? -1 : 1000) < 0) {
      if (errno == EINTR) continue;
      throw_errno("poll");
    }
    if (!pidfd.valid()) reap();
    if (fds[0].revents & POLLIN) {
      signalfd_siginfo si;
      while (::read(sigfd, &si, sizeof si) == sizeof si) {
        int sig = static_cast<int>(si.ssi_signo);
        if (sig == SIGCHLD) {
          reap();
        } else if (sig == SIGWINCH) {
          if (pty_master >= 0) copy_window_size(STDIN_FILENO, pty_master);
        } else if (sig != SIGPIPE) {
          ::kill(pid, sig);
        }
      }
    }
    if (pidfd_idx >= 0 && fds[pidfd_idx].revents) reap();
    if (master_idx >= 0 && fds[master_idx].revents) drain_master();
    if (stdin_idx >= 0 && fds[stdin_idx].revents) {
      ssize_t n = ::read(STDIN_FILENO, buf, sizeof buf);
      if (n > 0) {
        try {
          write_full(pty_master, buf, static_cast<size_t>(n), "terminal");
        } catch (const Error&) {
        }
      } else if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN)) {
        stdin_open = false;
        // A terminal has no half-close: end-of-file is the EOF character.
        char eot = 4;
        (void)::write(pty_master, &eot, 1);
      }
    }
  }
  drain_master();
  if (raw) raw->restore();
  return exit_status(status);
}

pid_t create_container(const LaunchOptions& opts) {
  sigset_t mask;
  ::sigprocmask(SIG_SETMASK, nullptr, &mask);
  Launched l = launch(opts, Mode::kCreate, mask);
  return l.pid;
}

int run_container(const LaunchOptions& opts) {
  StateStore store(opts.state_root);
  sigset_t fwd = forwarded_signals(), saved;
  // Blocked before the init exists, so a signal that arrives during setup is not lost; the init
  // restores the original mask first thing.
  ::sigprocmask(SIG_BLOCK, &fwd, &saved);
  UniqueFd sigfd(::signalfd(-1, &fwd, SFD_CLOEXEC | SFD_NONBLOCK));
  if (!sigfd.valid()) throw_errno("signalfd");
  bool tty = opts.spec.process.terminal;
  if (!tty && !opts.interactive) {
    // Like docker/podman without -i: the container's stdin is empty, not the caller's terminal.
    UniqueFd null(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    if (null.valid()) ::dup2(null.get(), STDIN_FILENO);
  }
  Launched l;
  try {
    l = launch(opts, Mode::kRun, saved);
  } catch (const SetupFailed& e) {
    // The program is missing or cannot run: its status (127, 126) is run's, as with a shell.
    ::sigprocmask(SIG_SETMASK, &saved, nullptr);
    log::fatal(e.what());
    return e.exit_status();
  }
  json hs = hook_state(opts, "running", l.pid);
  int code = 1;
  try {
    if (needs_start_step(opts)) l.sock.send(SyncStep::kStart);
    // The init closes its end at execve (close-on-exec); a failure arrives as a message instead,
    // and the init exits with the status that goes with it.
    if (std::optional<SyncMessage> m = l.sock.recv(); m && m->step == SyncStep::kFailed)
      log::fatal(m->text);
    l.sock.close();
    store.save(l.state);
    l.state_lock.reset();
    if (opts.on_started) opts.on_started();
    run_hooks_warn(opts.spec.hooks.poststart, hs, "poststart");
    code = wait_forwarding(l.pid, sigfd.get(), l.pty_master.get(), tty || opts.interactive);
  } catch (...) {
    ::kill(l.pid, SIGKILL);
    ::waitpid(l.pid, nullptr, 0);
    code = -1;
  }
  // No pid namespace means the init's children may outlive it: the cgroup holds them all.
  if (!opts.spec.has_namespace("pid")) {
    try {
      l.cgroup->kill_all(SIGKILL);
    } catch (const Error&) {
    }
  }
  try {
    l.cgroup->destroy();
  } catch (const Error& e) {
    log::warn(e.what());
  }
  if (l.state.shared_root_mount_id != 0) {
    try {
      detach_shared_root(l.state.rootfs, l.state.shared_root_mount_id);
    } catch (const Error& e) {
      log::warn(e.what());
    }
  }
  hs["status"] = "stopped";
  run_hooks_warn(opts.spec.hooks.poststop, hs, "poststop");
  if (opts.remove) {
    store.remove(opts.id);
  } else {
    l.state.cgroup = nullptr;
    store.save(l.state);
  }
  ::sigprocmask(SIG_SETMASK, &saved, nullptr);
  if (code < 0) throw Error("container " + opts.id + " failed to start");
  return code;
}

}  // namespace cidrun::runtime
