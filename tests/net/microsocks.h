// A real SOCKS5 proxy for tests: microsocks (Debian package) on a free loopback port, optionally
// demanding a user name and password, stopped (SIGTERM, reaped) when the object goes away.
#pragma once

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <stdexcept>
#include <string>
#include <thread>

#include "net/tinyproxy.h"

namespace cidrun::testing {

class Microsocks {
 public:
  explicit Microsocks(const std::string& user = "", const std::string& password = "") {
    port_ = Tinyproxy::free_port();
    std::string port = std::to_string(port_);
    pid_ = ::fork();
    if (pid_ == 0) {
      if (!std::freopen("/dev/null", "w", stdout)) ::_exit(126);
      if (user.empty()) {
        ::execlp("microsocks", "microsocks", "-i", "127.0.0.1", "-p", port.c_str(),
                 static_cast<char*>(nullptr));
      } else {
        ::execlp("microsocks", "microsocks", "-i", "127.0.0.1", "-p", port.c_str(), "-u",
                 user.c_str(), "-P", password.c_str(), static_cast<char*>(nullptr));
      }
      ::_exit(127);
    }
    Tinyproxy::wait_listening(pid_, port_, "microsocks");
  }
  ~Microsocks() {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  Microsocks(const Microsocks&) = delete;
  Microsocks& operator=(const Microsocks&) = delete;

  int port() const { return port_; }

 private:
  int port_ = 0;
  pid_t pid_ = -1;
};

}  // namespace cidrun::testing
