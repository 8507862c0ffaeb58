// A real TLS front for tests: stunnel (Debian package stunnel4) in the foreground on a free
// loopback port, terminating TLS with the given certificate and key and relaying the plain bytes
// to 127.0.0.1:target_port. In front of tinyproxy it makes an https:// proxy. Stopped (SIGTERM,
// reaped) when the object goes away.
#pragma once

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>

#include "net/tinyproxy.h"

namespace cidrun::testing {

class Stunnel {
 public:
  Stunnel(const std::string& cert_file, const std::string& key_file, int target_port) {
    char tmpl[] = "/tmp/cidrun-stunnel-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
    port_ = Tinyproxy::free_port();
    std::string conf = dir_ + "/stunnel.conf";
    std::ofstream out(conf);
    // No pid file and no fork: the test owns the process. The service section is what stunnel
    // calls a server: accept TLS, connect plain.
    out << "foreground = yes\npid =\noutput = " << dir_ << "/stunnel.log\ndebug = info\n"
        << "[proxy]\naccept = 127.0.0.1:" << port_ << "\nconnect = 127.0.0.1:" << target_port
        << "\ncert = " << cert_file << "\nkey = " << key_file << "\n";
    out.close();
    pid_ = ::fork();
    if (pid_ == 0) {
      std::string log = dir_ + "/stdout";
      if (!std::freopen(log.c_str(), "w", stdout) || !std::freopen(log.c_str(), "a", stderr)) {
        ::_exit(126);
      }
      ::execlp("stunnel4", "stunnel4", conf.c_str(), static_cast<char*>(nullptr));
      ::execlp("stunnel", "stunnel", conf.c_str(), static_cast<char*>(nullptr));
      ::_exit(127);
    }
    Tinyproxy::wait_listening(pid_, port_, "stunnel");
  }
  ~Stunnel() {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      ::waitpid(pid_, nullptr, 0);
    }
    std::filesystem::remove_all(dir_);
  }
  Stunnel(const Stunnel&) = delete;
  Stunnel& operator=(const Stunnel&) = delete;

  int port() const { return port_; }
  // What stunnel logged (each accepted TLS connection, for counting them).
  std::string log() const {
    std::ifstream in(dir_ + "/stunnel.log");
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  }

 private:
  std::string dir_;
  int port_ = 0;
  pid_t pid_ = -1;
};

}  // namespace cidrun::testing
