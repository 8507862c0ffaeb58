#include "runtime/process.h"

#include <fcntl.h>
#include <grp.h>
#include <linux/close_range.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>

#include "runtime/capabilities.h"
#include "runtime/rlimits.h"
#include "runtime/seccomp.h"
#include "runtime/terminal.h"
#include "util/error.h"

namespace cidrun::runtime {
namespace {

constexpr const char* kDefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

class ExecFailed : public Error {
 public:
  ExecFailed(const std::string& what, int err) : Error(what), err_(err) {}
  int err() const { return err_; }

 private:
  int err_;
};

std::string env_value(const std::vector<std::string>& env, const std::string& name) {
  for (const auto& e : env)
    if (e.compare(0, name.size() + 1, name + "=") == 0) return e.substr(name.size() + 1);
  return "";
}

void switch_user(const ProcessSpec& p, bool setgroups_allowed) {
  // Keep the permitted set across setuid; the capability module then sets the config's sets.
  // Staying uid 0 clears nothing, so there is nothing to keep then.
  bool keep_caps = p.uid != 0;
  if (keep_caps && ::prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0) throw_errno("prctl(PR_SET_KEEPCAPS)");
  if (!p.additional_gids.empty()) {
    std::vector<gid_t> gids(p.additional_gids.begin(), p.additional_gids.end());
    if (::setgroups(gids.size(), gids.data()) < 0) throw_errno("setgroups");
  } else if (setgroups_allowed) {
    // Drop the runtime's supplementary groups: the container gets only what the config lists.
    if (::setgroups(0, nullptr) < 0 && errno != EPERM) throw_errno("setgroups");
  }
  if (::setresgid(p.gid, p.gid, p.gid) < 0) throw_errno("setgid " + std::to_string(p.gid));
  if (::setresuid(p.uid, p.uid, p.uid) < 0) throw_errno("setuid " + std::to_string(p.uid));
  if (keep_caps && ::prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) < 0) throw_errno("prctl(PR_SET_KEEPCAPS)");
}

void enter_cwd(const std::string& cwd) {
  if (::chdir(cwd.c_str()) < 0) throw_errno("chdir to cwd " + cwd + " in the container");
  // A cwd reached through a leaked fd or a magic link can lie outside the root; the kernel then
  // reports it as "(unreachable)/..." (getcwd fails with ENOENT in glibc). Refuse that.
  char buf[PATH_MAX];
  long n = ::syscall(SYS_getcwd, buf, sizeof buf);
  if (n < 0) throw_errno("getcwd");
  if (buf[0] != '/') throw Error("cwd " + cwd + " is outside the container's root");
}

void close_host_fds(int preserve_fds) {
  unsigned first = 3u + static_cast<unsigned>(preserve_fds);
  // Everything the runtime still holds (state dir, sync socket, exec fifo) is closed at execve.
  if (::syscall(SYS_close_range, first, ~0u, CLOSE_RANGE_CLOEXEC) < 0) {
    for (int fd = static_cast<int>(first); fd < 65536; ++fd) ::fcntl(fd, F_SETFD, FD_CLOEXEC);
  }
  for (int fd = 3; fd < static_cast<int>(first); ++fd) ::fcntl(fd, F_SETFD, 0);
}

}  // namespace

std::vector<std::string> effective_environment(const ProcessSpec& p) {
  std::vector<std::string> env = p.env;
  if (env_value(env, "PATH").empty()) env.push_back(std::string("PATH=") + kDefaultPath);
  if (env_value(env, "HOME").empty()) env.emplace_back(p.uid == 0 ? "HOME=/root" : "HOME=/");
  return env;
}

std::string find_executable(const std::string& file, const std::vector<std::string>& env) {
  if (file.find('/') != std::string::npos) return file;
  std::string path = env_value(env, "PATH");
  if (path.empty()) path = kDefaultPath;
  int first_err = ENOENT;
  size_t i = 0;
  while (i <= path.size()) {
    size_t j = path.find(':', i);
    if (j == std::string::npos) j = path.size();
    std::string dir = path.substr(i, j - i);
    std::string cand = (dir.empty() ? "." : dir) + "/" + file;
    struct stat st;
    if (::stat(cand.c_str(), &st) == 0 && S_ISREG(st.st_mode)) {
      if (::access(cand.c_str(), X_OK) == 0) return cand;
      first_err = EACCES;
    }
    i = j + 1;
  }
  // Go's wording (runc's): podman recognises it and reports a missing command as such.
  throw ExecFailed(
      "exec: \"" + file + "\": " +
          (first_err == EACCES ? "permission denied" : "executable file not found in $PATH"),
      first_err);
}

namespace {

// The program to execve for p.args[0], looked up as execvp would, failing as execve would (a
// PATH search that finds nothing, a path that does not exist, is a directory or may not be
// executed by this user).
std::string resolve_program(const ProcessSpec& p, const std::vector<std::string>& env) {
  const std::string& file = p.args[0];
  if (file.find('/') == std::string::npos) return find_executable(file, env);
  struct stat st {};
  if (::stat(file.c_str(), &st) != 0) {
    const int err = errno;
    const std::string shown = file[0] == '/' ? file : p.cwd + "/" + file;
    throw ExecFailed("exec: \"" + file + "\": stat " + shown + ": " + std::strerror(err), err);
  }
  if (S_ISDIR(st.st_mode)) throw ExecFailed("exec: \"" + file + "\": is a directory", EACCES);
  if (::access(file.c_str(), X_OK) != 0)
    throw ExecFailed("exec: \"" + file + "\": permission denied", EACCES);
  return file;
}

}  // namespace

int setup_exit_status(const std::exception& e) {
  if (const auto* f = dynamic_cast<const ExecFailed*>(&e)) return f->err() == ENOENT ? 127 : 126;
  return 1;
}

void exit_setup_failed(const std::exception& e, const SyncSocket& report) {
  const int status = setup_exit_status(e);
  if (!report.send_failure(e.what(), status)) std::fprintf(stderr, "cidrun: error: %s\n", e.what());
  std::fflush(stderr);
  ::_exit(status);
}

PreparedProgram prepare_process(const FinalizeOptions& o) {
  const ProcessSpec& p = *o.process;
  if (!p.rlimits.is_null()) apply_rlimits(p.rlimits);
  if (p.oom_score_adj) {
    std::string v = std::to_string(*p.oom_score_adj);
    UniqueFd fd(::open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC));
    if (!fd.valid() || ::write(fd.get(), v.data(), v.size()) < 0)
      throw_errno("set oomScoreAdj " + v);
  }
  if (o.terminal_slave >= 0) {
    become_terminal_session(o.terminal_slave);
    if (o.terminal_slave > 2) ::close(o.terminal_slave);
  }
  ::umask(p.umask.value_or(022));
  // Entered as root first (runc's order: the filter below may forbid getcwd, which checks it),
  // and as the user when root may not enter it (a user namespace's root, root_squash).
  const bool cwd_entered = ::chdir(p.cwd.c_str()) == 0;
  if (cwd_entered) enter_cwd(p.cwd);
  // Without no_new_privs the kernel takes a filter only from a process holding CAP_SYS_ADMIN:
  // load it before the capabilities go (runc's order); the remaining steps must pass it.
  const bool seccomp_early = !o.seccomp.is_null() && !p.no_new_privileges;
  if (seccomp_early) load_seccomp(o.seccomp);
  nlohmann::json caps = p.capabilities.is_null() ? nlohmann::json::object() : p.capabilities;
  apply_bounding_set(caps);  // needs CAP_SETPCAP: before leaving uid 0
  switch_user(p, o.setgroups_allowed);
  apply_process_capability_sets(caps);
  if (!cwd_entered) enter_cwd(p.cwd);
  PreparedProgram prog;
  prog.env = effective_environment(p);
  prog.path = resolve_program(p, prog.env);
  prog.exec_stub_fd = o.exec_stub_fd;
  if (o.exec_stub_fd >= 0) prog.argv = {"cidrun-exec", prog.path};
  prog.argv.insert(prog.argv.end(), p.args.begin(), p.args.end());
  close_host_fds(o.preserve_fds);
  if (p.no_new_privileges && ::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
    throw_errno("prctl(PR_SET_NO_NEW_PRIVS)");
  // With no_new_privs the filter comes last: it may forbid what the steps above needed. What
  // follows it (telling the runtime, waiting for the start, the execve) must pass it.
  if (!o.seccomp.is_null() && !seccomp_early) load_seccomp(o.seccomp);
  return prog;
}

void exec_program(PreparedProgram& prog, const SyncSocket& report) {
  std::vector<char*> argv, envp;
  for (auto& a : prog.argv) argv.push_back(a.data());
  argv.push_back(nullptr);
  for (auto& e : prog.env) envp.push_back(e.data());
  envp.push_back(nullptr);
  try {
    if (prog.exec_stub_fd >= 0) {
      ::syscall(SYS_execveat, prog.exec_stub_fd, "", argv.data(), envp.data(), AT_EMPTY_PATH);
      throw ExecFailed(std::string("exec the runtime's exec stub: ") + std::strerror(errno), errno);
    }
    ::execve(prog.path.c_str(), argv.data(), envp.data());
    throw ExecFailed("exec " + prog.path + ": " + std::strerror(errno), errno);
  } catch (const std::exception& e) {
    exit_setup_failed(e, report);
  }
}

void finalize_and_exec(const FinalizeOptions& o, const SyncSocket& report) {
  try {
    PreparedProgram prog = prepare_process(o);
    exec_program(prog, report);
  } catch (const std::exception& e) {
    exit_setup_failed(e, report);
  }
}

}  // namespace cidrun::runtime
