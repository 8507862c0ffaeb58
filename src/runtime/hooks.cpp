#include "runtime/hooks.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <cstring>

#include "util/error.h"
#include "util/fd.h"
#include "util/log.h"
#include "util/proc.h"

namespace cidrun::runtime {
namespace {

std::vector<char*> cstrings(std::vector<std::string>& v) {
  std::vector<char*> out;
  out.reserve(v.size() + 1);
  for (auto& s : v) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

// Writing to a pipe whose reader is gone raises SIGPIPE, which would kill us (`create` does not
// block it): a hook may exit without reading its stdin (/bin/false does). Blocked here, a write
// fails with EPIPE instead, and the signal it left pending is taken before the mask is restored.
class SigpipeBlocked {
 public:
  SigpipeBlocked() {
    sigemptyset(&pipe_);
    sigaddset(&pipe_, SIGPIPE);
    ::pthread_sigmask(SIG_BLOCK, &pipe_, &old_);
  }
  ~SigpipeBlocked() {
    if (raised_) {
      timespec zero{};
      ::sigtimedwait(&pipe_, nullptr, &zero);
    }
    ::pthread_sigmask(SIG_SETMASK, &old_, nullptr);
  }
  SigpipeBlocked(const SigpipeBlocked&) = delete;
  SigpipeBlocked& operator=(const SigpipeBlocked&) = delete;
  void raised() { raised_ = true; }

 private:
  sigset_t pipe_{};
  sigset_t old_{};
  bool raised_ = false;
};

// Gives the hook the whole state on its stdin, however long (annotations can exceed the pipe's
// buffer), until it exits or its timeout passes. A hook that stops reading or never reads is not
// an error here: its exit status decides.
void feed_and_wait(pid_t pid, const UniqueFd& pidfd, UniqueFd& wr, const std::string& text,
                   const HookSpec& hook, const std::string& phase) {
  SigpipeBlocked sigpipe;
  ::fcntl(wr.get(), F_SETFL, O_NONBLOCK);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(hook.timeout);
  size_t off = 0;
  for (;;) {
    std::array<pollfd, 2> p{};
    nfds_t n = 0;
    if (pidfd.valid()) p.at(n++) = pollfd{pidfd.get(), POLLIN, 0};
    if (wr.valid()) p.at(n++) = pollfd{wr.get(), POLLOUT, 0};
    if (n == 0) return;  // all written, and no pidfd to wait on: the caller's waitpid waits
    int wait_ms = -1;
    if (hook.timeout > 0) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      wait_ms = static_cast<int>(std::max<int64_t>(left.count(), 0));
    }
    int rc = ::poll(p.data(), n, wait_ms);
    if (rc < 0 && errno == EINTR) continue;
    if (rc < 0) throw_errno("wait for " + phase + " hook");
    if (rc == 0) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
      throw Error(phase + " hook " + hook.path + " timed out after " +
                  std::to_string(hook.timeout) + "s");
    }
    for (nfds_t i = 0; i < n; ++i) {
      if (p.at(i).revents == 0) continue;
      if (p.at(i).fd == pidfd.get()) return;  // exited: what it did not read, it did not want
      ssize_t w = ::write(wr.get(), text.data() + off, text.size() - off);
      if (w > 0) off += static_cast<size_t>(w);
      if (w < 0 && errno == EPIPE) sigpipe.raised();
      if (off == text.size() || (w < 0 && errno != EAGAIN && errno != EINTR)) wr.reset();
    }
  }
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
  UniqueFd pidfd = open_pidfd(pid);
  feed_and_wait(pid, pidfd, wr, state_text, hook, phase);
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
