// `cidrun serve` as a child process for integration tests; its first stdout line is
// {"gateway": URL}.
#pragma once

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <vector>

#include "integration/content_helpers.h"

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

// A repo holding `tree/` (one file of big_size patterned bytes, one small file in a subdirectory)
// added as `root`, with no source configured: the tests that pull it from a server.
class ServedTreeTest : public ::testing::Test {
 protected:
  explicit ServedTreeTest(size_t big_size) : big_size_(big_size) {}
  void SetUp() override {
    ::setenv("CIDRUN_KUBO_AUTO", "0", 1);
    ::unsetenv("CIDRUN_SOURCES");
    fs::create_directories(sb.path("tree/sub"));
    std::string big(big_size_, '\0');
    for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 7919 % 251);
    std::ofstream(sb.path("tree/big.bin"), std::ios::binary) << big;
    std::ofstream(sb.path("tree/sub/a.txt")) << "hello\n";
    root = sb.ok("add -r -Q " + shell_quote(sb.path("tree")));
  }
  // `get` of root from repo into out gives back tree/ exactly.
  bool same_tree(const std::string& repo, const std::string& out) {
    sb.ok("get " + root + " -o " + shell_quote(out), repo);
    return std::system(
               ("diff -r " + shell_quote(sb.path("tree")) + " " + shell_quote(out)).c_str()) == 0;
  }
  Sandbox sb;
  std::string root;

 private:
  size_t big_size_;
};

}  // namespace cidrun::testing
