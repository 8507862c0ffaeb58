#include "runtime/hooks.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>

#include "util/error.h"
#include "util/fd.h"
#include "util/log.h"

namespace cidrun::runtime {
namespace {

std::vector<char*> cstrings(std::vector<std::string>& v) {
  std::vector<char*> out;
  out.reserve(v.size() + 1);
  for (auto& s : v) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

void run_one(const HookSpec& hook, const std::string& state_text, const std::string& phase) {
  int in[2];
  if (::pipe2(in, O_CLOEXEC) < 0) throw_errno("pipe");
  UniqueFd rd(in[0]), wr(in[1]);
  std::vector<std::string> args =
      hook.args.empty() ? std::vector<std::string>{hook.path} : hook.args;
  std::vector<std::string> env = hook.env;
  auto argv = cstrings(args);
  auto envp = cstrings(env);
  pid_t pid = ::fork();
  if (pid < 0) throw_errno("fork " + phase + " hook");
  if (pid == 0) {
    // `run` blocks the signals it forwards; a hook starts with none blocked, like any program.
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::dup2(rd.get(), STDIN_FILENO);
    // A hook's stdout would mix into the container's output stream: send it to stderr as runc does.
    ::dup2(STDERR_FILENO, STDOUT_FILENO);
    ::execve(hook.path.c_str(), argv.data(), envp.data());
    std::fprintf(stderr, "cidrun: %s hook %s: %s\n", phase.c_str(), hook.path.c_str(),
                 std::strerror(errno));
    ::_exit(127);
  }
  rd.reset();
  UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
  // A hook that does not read its stdin must not block us: the state fits the pipe buffer.
  ::fcntl(wr.get(), F_SETFL, O_NONBLOCK);
  (void)::write(wr.get(), state_text.data(), state_text.size());
  wr.reset();
  if (hook.timeout > 0 && pidfd.valid()) {
    pollfd p{pidfd.get(), POLLIN, 0};
    int rc;
    do {
      rc = ::poll(&p, 1, hook.timeout * 1000);
    } while (rc < 0 && errno == EINTR);
    if (rc == 0) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
      throw Error(phase + " hook " + hook.path + " timed out after " +
                  std::to_string(hook.timeout) + "s");
    }
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) throw_errno("wait for " + phase + " hook");
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return;
  if (WIFSIGNALED(status))
    throw Error(phase + " hook " + hook.path + " killed by signal " +
                std::to_string(WTERMSIG(status)));
  throw Error(phase + " hook " + hook.path + " exited with status " +
              std::to_string(WEXITSTATUS(status)));
}

}  // namespace

void run_hooks(const std::vector<HookSpec>& hooks, const nlohmann::json& state,
               const std::string& phase) {
  if (hooks.empty()) return;
  std::string text = state.dump();
  for (const auto& h : hooks) run_one(h, text, phase);
}

void run_hooks_warn(const std::vector<HookSpec>& hooks, const nlohmann::json& state,
                    const std::string& phase) {
  if (hooks.empty()) return;
  std::string text = state.dump();
  for (const auto& h : hooks) {
    try {
      run_one(h, text, phase);
    } catch (const Error& e) {
      log::warn(e.what());
    }
  }
}

}  // namespace cidrun::runtime
