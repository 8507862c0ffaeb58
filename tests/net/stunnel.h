// A real TLS front for tests: stunnel (Debian package stunnel4) in the foreground on a free
// loopback port, terminating TLS with the given certificate and key and relaying the plain bytes
// to 127.0.0.1:target_port. In front of tinyproxy it makes an https:// proxy. Stopped (SIGTERM,
// reaped) when the object goes away.
#pragma once

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include "net/server_process.h"

namespace cidrun::testing {

class Stunnel {
 public:
  Stunnel(const std::string& cert_file, const std::string& key_file, int target_port) {
    char tmpl[] = "/tmp/cidrun-stunnel-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
    port_ = ServerProcess::free_port();
    std::string conf = dir_ + "/stunnel.conf";
    std::ofstream out(conf);
    // No pid file and no fork: the test owns the process. The service section is what stunnel
    // calls a server: accept TLS, connect plain.
    out << "foreground = yes\npid =\noutput = " << dir_ << "/stunnel.log\ndebug = info\n"
        << "[proxy]\naccept = 127.0.0.1:" << port_ << "\nconnect = 127.0.0.1:" << target_port
        << "\ncert = " << cert_file << "\nkey = " << key_file << "\n";
    out.close();
    process_.emplace(std::vector<std::string>{"stunnel4", "stunnel"},
                     std::vector<std::string>{conf}, dir_ + "/stdout", port_);
  }
  ~Stunnel() {
    process_.reset();
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
  std::optional<ServerProcess> process_;
};

}  // namespace cidrun::testing
