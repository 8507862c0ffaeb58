// start, state, kill, delete, pause, resume, ps, list: the verbs that work on an existing
// container through its state directory.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <map>
#include <thread>

#include "runtime/cgroups.h"
#include "runtime/container.h"
#include "runtime/hooks.h"
#include "runtime/rootfs.h"
#include "runtime/state.h"
#include "util/error.h"
#include "util/fd.h"
#include "util/log.h"
#include "util/proc.h"

namespace cidrun::runtime {
namespace {

using nlohmann::json;

Hooks saved_hooks(const StateStore& store, const std::string& id) {
  try {
    return parse_spec(store.load_config(id), "saved config").hooks;
  } catch (const std::exception& e) {
    log::warn("container " + id + ": cannot read its saved config: " + e.what());
    return {};
  }
}

// Null also for a container that runs without a cgroup (rootless, --no-cgroup): a disabled
// manager reaches none of its processes, so they are signalled through the init instead.
std::unique_ptr<CgroupManager> open_cgroup(const ContainerState& st) {
  if (st.cgroup.is_null()) return nullptr;
  auto cg = CgroupManager::open(st.cgroup);
  return cg->enabled() ? std::move(cg) : nullptr;
}

// Signals the init through a pidfd checked against the recorded start time, so a pid reused by
// an unrelated process is never signalled.
void signal_init(const ContainerState& st, int sig) {
  UniqueFd pidfd = open_pidfd(st.pid);
  if (!pidfd.valid()) throw Error("container " + st.id + " is not running");
  if (st.pid_start_time != 0 && process_start_time(st.pid) != st.pid_start_time)
    throw Error("container " + st.id + " is not running");
  if (::syscall(SYS_pidfd_send_signal, pidfd.get(), sig, nullptr, 0) < 0)
    throw_errno("signal container " + st.id);
}

// Writes one byte to a fifo; false when it has no reader left. SIGPIPE is held back meanwhile
// (a fifo has no MSG_NOSIGNAL) and discarded if the write raised it, so that it neither kills
// this process nor reaches the hooks it runs next.
bool write_without_sigpipe(int fd, char byte) {
  sigset_t pipe_only, saved;
  sigemptyset(&pipe_only);
  sigaddset(&pipe_only, SIGPIPE);
  ::sigprocmask(SIG_BLOCK, &pipe_only, &saved);
  ssize_t n;
  while ((n = ::write(fd, &byte, 1)) < 0 && errno == EINTR) {
  }
  const int err = errno;
  if (n < 0 && err == EPIPE) {
    const timespec now{};
    ::sigtimedwait(&pipe_only, nullptr, &now);
  }
  ::sigprocmask(SIG_SETMASK, &saved, nullptr);
  if (n == 1) return true;
  if (err == EPIPE) return false;
  throw_errno("write exec fifo", err);
}

bool wait_until_stopped(const StateStore& store, const ContainerState& st, int ms) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
  while (container_status(store, st) != "stopped") {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

}  // namespace

int parse_signal(const std::string& s_in) {
  static const std::map<std::string, int> names{
      {"HUP", SIGHUP},       {"INT", SIGINT},   {"QUIT", SIGQUIT},     {"ILL", SIGILL},
      {"TRAP", SIGTRAP},     {"ABRT", SIGABRT}, {"IOT", SIGIOT},       {"BUS", SIGBUS},
      {"FPE", SIGFPE},       {"KILL", SIGKILL}, {"USR1", SIGUSR1},     {"SEGV", SIGSEGV},
      {"USR2", SIGUSR2},     {"PIPE", SIGPIPE}, {"ALRM", SIGALRM},     {"TERM", SIGTERM},
      {"STKFLT", SIGSTKFLT}, {"CHLD", SIGCHLD}, {"CONT", SIGCONT},     {"STOP", SIGSTOP},
      {"TSTP", SIGTSTP},     {"TTIN", SIGTTIN}, {"TTOU", SIGTTOU},     {"URG", SIGURG},
      {"XCPU", SIGXCPU},     {"XFSZ", SIGXFSZ}, {"VTALRM", SIGVTALRM}, {"PROF", SIGPROF},
      {"WINCH", SIGWINCH},   {"IO", SIGIO},     {"POLL", SIGPOLL},     {"PWR", SIGPWR},
      {"SYS", SIGSYS},
  };
  std::string s = s_in;
  if (!s.empty() && std::all_of(s.begin(), s.end(), ::isdigit)) {
    int n = std::stoi(s);
    if (n <= 0 || n > SIGRTMAX) throw Error("invalid signal number " + s);
    return n;
  }
  for (auto& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  if (s.rfind("SIG", 0) == 0) s = s.substr(3);
  if (auto it = names.find(s); it != names.end()) return it->second;
  if (s.rfind("RTMIN", 0) == 0 || s.rfind("RTMAX", 0) == 0) {
    int base = s[2] == 'M' && s[3] == 'I' ? SIGRTMIN : SIGRTMAX;
    int off = s.size() > 5 ? std::stoi(s.substr(5)) : 0;
    int n = base + off;
    if (n >= SIGRTMIN && n <= SIGRTMAX) return n;
  }
  throw Error("unknown signal \"" + s_in + "\"");
}

void start_container(const std::string& state_root, const std::string& id) {
  StateStore store(state_root);
  ContainerState st = store.load(id);
  std::string status = container_status(store, st);
  if (status != "created")
    throw Error("cannot start container " + id + ": it is " + status + ", not created");
  std::string fifo = store.fifo_path(id);
  // The init holds the fifo's only other end (launcher.cpp): no reader means it is gone.
  UniqueFd fd(::open(fifo.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC));
  if (!fd.valid() && errno == ENXIO) throw Error("container " + id + " init exited before start");
  if (!fd.valid()) throw_errno("open exec fifo " + fifo);
  if (!write_without_sigpipe(fd.get(), '0'))
    throw Error("container " + id + " init exited before start");
  // The init's end closes at its execve (close-on-exec), or when it dies: once it has, the
  // program runs (or failed to), so poststart hooks run after it started and a signal sent
  // once `start` returned goes to the program, not to the runtime's code before it.
  for (;;) {
    pollfd p{fd.get(), 0, 0};
    int rc = ::poll(&p, 1, -1);
    if (rc < 0 && errno == EINTR) continue;
    if (rc < 0) throw_errno("poll exec fifo");
    if (p.revents & (POLLERR | POLLHUP)) break;
  }
  ::unlink(fifo.c_str());
  json hs = oci_state(st, "running");
  run_hooks_warn(saved_hooks(store, id).poststart, hs, "poststart");
}

json container_state_json(const std::string& state_root, const std::string& id) {
  StateStore store(state_root);
  ContainerState st = store.load(id);
  return oci_state(st, container_status(store, st));
}

void kill_container(const std::string& state_root, const std::string& id, int sig, bool all) {
  StateStore store(state_root);
  ContainerState st = store.load(id);
  std::string status = container_status(store, st);
  if (status == "stopped") throw Error("container " + id + " is not running");
  if (all) {
    if (auto cg = open_cgroup(st)) {
      cg->kill_all(sig);
      return;
    }
  }
  signal_init(st, sig);
}

void delete_container(const std::string& state_root, const std::string& id, bool force) {
  StateStore store(state_root);
  ContainerState st = store.load(id);
  std::string status = container_status(store, st);
  if (status == "running" || status == "paused") {
    if (!force)
      throw Error("cannot delete container " + id + " that is " + status + " (use --force)");
  }
  if (status != "stopped") {
    auto cg = open_cgroup(st);
    if (cg && status == "paused") cg->thaw();
    if (cg) {
      cg->kill_all(SIGKILL);
    } else {
      try {
        signal_init(st, SIGKILL);
      } catch (const Error&) {
      }
    }
    if (!wait_until_stopped(store, st, 10000))
      throw Error("container " + id + " did not stop after SIGKILL");
  }
  if (auto cg = open_cgroup(st)) {
    // Processes of a container without a pid namespace can outlive its init.
    try {
      cg->kill_all(SIGKILL);
    } catch (const Error&) {
    }
    for (int i = 0; i < 200; ++i) {
      try {
        cg->destroy();
        break;
      } catch (const Error& e) {
        if (i == 199) log::warn(e.what());
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
    }
  }
  // A container without a mount namespace mounted its root's tree in ours.
  if (st.shared_root_mount_id != 0) detach_shared_root(st.rootfs, st.shared_root_mount_id);
  json hs = oci_state(st, "stopped");
  run_hooks_warn(saved_hooks(store, id).poststop, hs, "poststop");
  store.remove(id);
}

void pause_container(const std::string& state_root, const std::string& id) {
  StateStore store(state_root);
  ContainerState st = store.load(id);
  std::string status = container_status(store, st);
  if (status != "running") throw Error("cannot pause container " + id + ": it is " + status);
  auto cg = open_cgroup(st);
  if (!cg) throw Error("cannot pause container " + id + ": it has no cgroup");
  cg->freeze();
  st.paused = true;
  store.save(st);
}

void resume_container(const std::string& state_root, const std::string& id) {
  StateStore store(state_root);
  ContainerState st = store.load(id);
  std::string status = container_status(store, st);
  if (status != "paused") throw Error("cannot resume container " + id + ": it is " + status);
  auto cg = open_cgroup(st);
  if (!cg) throw Error("cannot resume container " + id + ": it has no cgroup");
  cg->thaw();
  st.paused = false;
  store.save(st);
}

void update_container(const std::string& state_root, const std::string& id, const json& resources) {
  if (!resources.is_object()) throw Error("update: the resources must be a JSON object");
  StateStore store(state_root);
  ContainerState st = store.load(id);
  std::string status = container_status(store, st);
  if (status == "stopped") throw Error("cannot update container " + id + ": it is stopped");
  auto cg = open_cgroup(st);
  if (!cg) throw Error("cannot update container " + id + ": it has no cgroup");
  // The device rules stay those of create, as with runc: containerd sends the whole
  // linux.resources of the container, its device rules included, to change a cpu or memory limit.
  json changes = resources;
  if (changes.erase("devices") != 0) log::debug("update: device rules are kept as created");
  cg->set_resources(changes);
  // As runc: the saved config carries the limits now in force, field by field.
  json config = store.load_config(id);
  json& saved = config["linux"]["resources"];
  if (!saved.is_object()) saved = json::object();
  saved.merge_patch(changes);
  store.save_config(id, config);
}

std::vector<pid_t> container_pids(const std::string& state_root, const std::string& id) {
  StateStore store(state_root);
  ContainerState st = store.load(id);
  if (container_status(store, st) == "stopped") return {};
  if (auto cg = open_cgroup(st)) return cg->pids();
  return {st.pid};
}

std::vector<json> list_containers(const std::string& state_root) {
  StateStore store(state_root);
  std::vector<json> out;
  for (const auto& id : store.list()) {
    try {
      ContainerState st = store.load(id);
      out.push_back(oci_state(st, container_status(store, st)));
    } catch (const Error& e) {
      log::warn(e.what());
    }
  }
  return out;
}

}  // namespace cidrun::runtime
