#include "util/subprocess.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>

#include "util/error.h"
#include "util/fd.h"

extern char** environ;

namespace cidrun {
namespace {

std::vector<char*> cstrings(const std::vector<std::string>& v) {
  std::vector<char*> out;
  out.reserve(v.size() + 1);
  for (const auto& s : v) out.push_back(const_cast<char*>(s.c_str()));
  out.push_back(nullptr);
  return out;
}

// posix_spawn's attributes and file actions, released however the spawn ends.
struct SpawnSetup {
  posix_spawnattr_t attr{};
  posix_spawn_file_actions_t actions{};
  SpawnSetup() {
    ::posix_spawnattr_init(&attr);
    ::posix_spawn_file_actions_init(&actions);
  }
  ~SpawnSetup() {
    ::posix_spawn_file_actions_destroy(&actions);
    ::posix_spawnattr_destroy(&attr);
  }
  SpawnSetup(const SpawnSetup&) = delete;
  SpawnSetup& operator=(const SpawnSetup&) = delete;
};

int exit_code_of(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return 1;
}

}  // namespace

std::vector<std::string> environment_with(const std::vector<std::string>& replace) {
  std::vector<std::string> env;
  for (char** e = environ; e && *e; ++e) {
    std::string entry = *e;
    std::string name = entry.substr(0, entry.find('='));
    bool replaced = false;
    for (const auto& r : replace) replaced = replaced || r.substr(0, r.find('=')) == name;
    if (!replaced) env.push_back(std::move(entry));
  }
  env.insert(env.end(), replace.begin(), replace.end());
  return env;
}

ProgramResult run_program(const ProgramRun& run) {
  // stdin is a socket so that writing to a program that exits without reading fails with EPIPE
  // (MSG_NOSIGNAL) instead of raising SIGPIPE in this process.
  std::array<int, 2> in{}, out{}, err{};
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, in.data()) < 0)
    throw_errno("socketpair for " + run.path);
  UniqueFd in_child(in[0]), in_parent(in[1]);
  if (::pipe2(out.data(), O_CLOEXEC) < 0) throw_errno("pipe for " + run.path);
  UniqueFd out_parent(out[0]), out_child(out[1]);
  if (::pipe2(err.data(), O_CLOEXEC) < 0) throw_errno("pipe for " + run.path);
  UniqueFd err_parent(err[0]), err_child(err[1]);

  SpawnSetup s;
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  ::posix_spawnattr_setsigmask(&s.attr, &none);
  ::posix_spawnattr_setsigdefault(&s.attr, &all);
  ::posix_spawnattr_setflags(&s.attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  ::posix_spawn_file_actions_adddup2(&s.actions, in_child.get(), STDIN_FILENO);
  ::posix_spawn_file_actions_adddup2(&s.actions, out_child.get(), STDOUT_FILENO);
  ::posix_spawn_file_actions_adddup2(&s.actions, err_child.get(), STDERR_FILENO);
  auto argv = cstrings(run.args);
  auto envp = cstrings(run.env);
  pid_t pid = 0;
  int rc = ::posix_spawn(&pid, run.path.c_str(), &s.actions, &s.attr, argv.data(), envp.data());
  if (rc != 0) throw_errno("run " + run.path, rc);
  in_child.reset();
  out_child.reset();
  err_child.reset();

  ProgramResult result;
  const auto deadline = std::chrono::steady_clock::now() + run.timeout;
  size_t written = 0;
  if (run.input.empty()) ::shutdown(in_parent.get(), SHUT_WR);
  ::fcntl(in_parent.get(), F_SETFL, O_NONBLOCK);
  std::array<char, 16384> buf{};
  while (out_parent.valid() || err_parent.valid()) {
    std::array<pollfd, 3> p{};
    nfds_t n = 0;
    if (out_parent.valid()) p.at(n++) = {out_parent.get(), POLLIN, 0};
    if (err_parent.valid()) p.at(n++) = {err_parent.get(), POLLIN, 0};
    if (written < run.input.size()) p.at(n++) = {in_parent.get(), POLLOUT, 0};
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    int ready = ::poll(p.data(), n, static_cast<int>(std::max<int64_t>(left.count(), 0)));
    if (ready < 0 && errno == EINTR) continue;
    if (ready < 0) throw_errno("wait for " + run.path);
    if (ready == 0) {
      ::kill(pid, SIGKILL);
      while (::waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
      }
      throw Error(run.path + " did not finish within " + std::to_string(run.timeout.count()) +
                  " ms");
    }
    for (nfds_t i = 0; i < n; ++i) {
      const pollfd& q = p.at(i);
      if (q.revents == 0) continue;
      if (q.fd == in_parent.get()) {
        ssize_t w = ::send(in_parent.get(), run.input.data() + written, run.input.size() - written,
                           MSG_NOSIGNAL);
        if (w > 0) written += static_cast<size_t>(w);
        // A program that stops reading has taken what it wanted; its exit status tells the rest.
        if (w < 0 && errno != EAGAIN && errno != EINTR) written = run.input.size();
        if (written == run.input.size()) ::shutdown(in_parent.get(), SHUT_WR);
        continue;
      }
      UniqueFd& src = q.fd == out_parent.get() ? out_parent : err_parent;
      std::string& dst = q.fd == out_parent.get() ? result.out : result.err;
      ssize_t r = ::read(src.get(), buf.data(), buf.size());
      if (r > 0) dst.append(buf.data(), static_cast<size_t>(r));
      if (r == 0 || (r < 0 && errno != EINTR && errno != EAGAIN)) src.reset();
    }
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) throw_errno("wait for " + run.path);
  }
  result.exit_code = exit_code_of(status);
  return result;
}

}  // namespace cidrun
