// `cidrun serve` as a child process for integration tests; its first stdout line is
// {"gateway": URL}.
#pragma once

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <vector>

namespace cidrun::testing {

class ServeProcess {
 public:
  // extra: more serve flags ("--from", URL, "--tls-cert", FILE, ...).
  ServeProcess(const std::string& repo, const std::string& listen,
               const std::vector<std::string>& extra = {}) {
    std::vector<std::string> args = {CIDRUN_BINARY, "--repo-dir", repo, "serve",
                                     "--listen",    listen,       "-q"};
    args.insert(args.end(), extra.begin(), extra.end());
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    int p[2];
    if (::pipe(p) != 0) throw std::runtime_error("pipe");
    pid_ = ::fork();
    if (pid_ == 0) {
      ::dup2(p[1], 1);
      ::close(p[0]);
      ::close(p[1]);
      ::execv(CIDRUN_BINARY, argv.data());
      ::_exit(127);
    }
    ::close(p[1]);
    std::string line;
    char c;
    while (::read(p[0], &c, 1) == 1 && c != '\n') line += c;
    ::close(p[0]);
    if (line.empty()) {
      stop();
      throw std::runtime_error("cidrun serve did not start");
    }
    url_ = nlohmann::json::parse(line).at("gateway").get<std::string>();
  }
  ~ServeProcess() {
    if (pid_ > 0) stop();
  }
  ServeProcess(const ServeProcess&) = delete;
  ServeProcess& operator=(const ServeProcess&) = delete;
  // SIGTERM; returns the exit status.
  int stop() {
    ::kill(pid_, SIGTERM);
    int st = 0;
    ::waitpid(pid_, &st, 0);
    pid_ = -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  }
  const std::string& url() const { return url_; }
  // The port of url().
  std::string port() const { return url_.substr(url_.rfind(':') + 1); }

 private:
  pid_t pid_ = -1;
  std::string url_;
};

}  // namespace cidrun::testing
