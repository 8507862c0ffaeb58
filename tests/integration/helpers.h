// What every integration test needs to drive the binary: files read whole, shell quoting, shell
// command lines run with their output and exit status captured, and background processes.
#pragma once

#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

namespace itest {

inline std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// s without its trailing newlines (a command's one-line output as a value).
inline std::string chomp(std::string s) {
  while (!s.empty() && s.back() == '\n') s.pop_back();
  return s;
}

// s as one single-quoted shell word.
inline std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

// A wait status as a shell reports it: the exit status, or 128 + the signal that killed it.
inline int exit_code(int wait_status) {
  return WIFEXITED(wait_status) ? WEXITSTATUS(wait_status) : 128 + WTERMSIG(wait_status);
}

struct Result {
  int code = -1;
  std::string out;
  std::string err;
};

// Runs cmd with /bin/sh, stdin /dev/null unless cmd redirects it; stdout and stderr pass through
// files in capture_dir.
inline Result run_shell(const std::string& cmd, const std::string& capture_dir) {
  std::string out = capture_dir + "/.stdout";
  std::string err = capture_dir + "/.stderr";
  int st = std::system(
      ("(" + cmd + ") </dev/null >" + shell_quote(out) + " 2>" + shell_quote(err)).c_str());
  return {exit_code(st), slurp(out), slurp(err)};
}

// Starts `exec CMD` with /bin/sh in the background, stdout and stderr to out_file, stdin
// /dev/null; returns its pid.
inline pid_t spawn_sh(const std::string& cmd, const std::string& out_file) {
  pid_t pid = ::fork();
  if (pid == 0) {
    ::execl("/bin/sh", "sh", "-c",
            ("exec " + cmd + " >" + shell_quote(out_file) + " 2>&1 </dev/null").c_str(), nullptr);
    ::_exit(99);
  }
  return pid;
}

// Waits for a child; its exit_code.
inline int wait_exit(pid_t pid) {
  int st = 0;
  ::waitpid(pid, &st, 0);
  return exit_code(st);
}

// Polls cond every 10 ms until it holds or `limit` passes; returns its last value. The limit is
// generous on purpose: CI machines run many tests at once, and a slow step must not read as a
// failure (a wrong outcome still fails, only later).
template <typename F>
bool eventually(F&& cond, std::chrono::milliseconds limit = std::chrono::seconds(30)) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    if (cond()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return cond();
}

// Polls file until it holds text (true) or eventually's limit passed (false).
inline bool wait_for_text(const std::string& file, const std::string& text) {
  return eventually([&] { return slurp(file).find(text) != std::string::npos; });
}

}  // namespace itest
