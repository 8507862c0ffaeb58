// A real helper server for tests (tinyproxy, microsocks, stunnel): started on a loopback port,
// stopped (SIGTERM, reaped) when the object goes away, also when its owner's constructor throws
// after starting it.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace cidrun::testing {

class ServerProcess {
 public:
  // Runs the first of `programs` found on PATH with `args`, stdout and stderr into `output`, and
  // returns once something accepts connections on 127.0.0.1:port. Throws when the program exits
  // first (not installed, bad config) or is not listening within 5 s.
  ServerProcess(const std::vector<std::string>& programs, const std::vector<std::string>& args,
                const std::string& output, int port) {
    const std::string& name = programs.front();
    // Everything the child needs is made before fork: a test process may have threads, and
    // allocating after fork could wait forever on a lock another thread held.
    std::vector<std::vector<char*>> argvs;
    std::vector<std::string> storage(programs.begin(), programs.end());
    storage.insert(storage.end(), args.begin(), args.end());
    for (size_t p = 0; p < programs.size(); ++p) {
      std::vector<char*> argv{storage[p].data()};
      for (size_t a = 0; a < args.size(); ++a) argv.push_back(storage[programs.size() + a].data());
      argv.push_back(nullptr);
      argvs.push_back(std::move(argv));
    }
    int out = ::open(output.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (out < 0) throw std::runtime_error("cannot create " + output);
    pid_ = ::fork();
    if (pid_ == 0) {
      if (::dup2(out, 1) < 0 || ::dup2(out, 2) < 0) ::_exit(126);
      for (auto& argv : argvs) ::execvp(argv[0], argv.data());
      ::_exit(127);
    }
    ::close(out);
    if (pid_ < 0) throw std::runtime_error("fork for " + name + " failed");
    for (int i = 0; i < 200; ++i) {
      if (accepts(port)) return;
      int st = 0;
      if (::waitpid(pid_, &st, WNOHANG) == pid_) {
        pid_ = -1;
        throw std::runtime_error(name + " exited at start (is it installed?)");
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(25));
    }
    stop();
    throw std::runtime_error(name + " did not start listening");
  }
  ~ServerProcess() { stop(); }
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;

  static int free_port() {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
      ::close(fd);
      throw std::runtime_error("no free port");
    }
    ::close(fd);
    return ntohs(a.sin_port);
  }

  // Whether something accepts connections on 127.0.0.1:port.
  static bool accepts(int port) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(static_cast<uint16_t>(port));
    bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    ::close(fd);
    return ok;
  }

 private:
  void stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

  pid_t pid_ = -1;
};

}  // namespace cidrun::testing
