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

void check_executable(const ProcessSpec& p) {
  if (p.args.empty()) return;
  const std::string& file = p.args[0];
  if (file.find('/') == std::string::npos) {
    (void)find_executable(file, effective_environment(p));
    return;
  }
  const std::string path = file[0] == '/' ? file : p.cwd + "/" + file;
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    const int err = errno;
    throw ExecFailed("exec: \"" + file + "\": stat " + path + ": " + std::strerror(err), err);
  }
  if (S_ISDIR(st.st_mode)) throw ExecFailed("exec: \"" + file + "\": is a directory", EACCES);
}

void finalize_and_exec(const FinalizeOptions& o, const SyncSocket& report) {
  const ProcessSpec& p = *o.process;
  int exit_code = 1;
  try {
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
    // Without no_new_privs the kernel takes a filter only from a process holding CAP_SYS_ADMIN:
    // load it before the capabilities go (runc's order); the remaining steps must pass it.
    bool seccomp_early = !o.seccomp.is_null() && !p.no_new_privileges;
    if (seccomp_early) load_seccomp(o.seccomp);
    nlohmann::json caps = p.capabilities.is_null() ? nlohmann::json::object() : p.capabilities;
    apply_bounding_set(caps);  // needs CAP_SETPCAP: before leaving uid 0
    switch_user(p, o.setgroups_allowed);
    apply_process_capability_sets(caps);
    enter_cwd(p.cwd);
    std::vector<std::string> env = effective_environment(p);
    std::string exe = find_executable(p.args[0], env);
    close_host_fds(o.preserve_fds);
    if (p.no_new_privileges && ::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
      throw_errno("prctl(PR_SET_NO_NEW_PRIVS)");
    std::vector<std::string> args = p.args;
    std::vector<char*> argv, envp;
    char stub_name[] = "cidrun-exec";
    if (o.exec_stub_fd >= 0) {
      argv.push_back(stub_name);
      argv.push_back(exe.data());
    }
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    for (auto& e : env) envp.push_back(e.data());
    envp.push_back(nullptr);
    // Seccomp last: the filter may forbid what the steps above needed.
    if (!o.seccomp.is_null() && !seccomp_early) load_seccomp(o.seccomp);
    if (o.exec_stub_fd >= 0) {
      ::syscall(SYS_execveat, o.exec_stub_fd, "", argv.data(), envp.data(), AT_EMPTY_PATH);
      throw ExecFailed(std::string("exec the runtime's exec stub: ") + std::strerror(errno), errno);
    }
    ::execve(exe.c_str(), argv.data(), envp.data());
    throw ExecFailed("exec " + exe + ": " + std::strerror(errno), errno);
  } catch (const ExecFailed& e) {
    exit_code = e.err() == ENOENT ? 127 : 126;
    if (!report.send_error(e.what())) std::fprintf(stderr, "cidrun: error: %s\n", e.what());
  } catch (const std::exception& e) {
    if (!report.send_error(e.what())) std::fprintf(stderr, "cidrun: error: %s\n", e.what());
  }
  std::fflush(stderr);
  ::_exit(exit_code);
}

}  // namespace cidrun::runtime
