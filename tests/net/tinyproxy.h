// A real HTTP proxy for tests: tinyproxy (Debian package) in the foreground on a free loopback
// port, with its own config file, stopped when the object goes away.
#pragma once

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include "net/server_process.h"

namespace cidrun::testing {

class Tinyproxy {
 public:
  // connect_ports: the ports CONNECT may reach (tinyproxy refuses the others with 403).
  // user/password: when set, the proxy demands them (BasicAuth).
  explicit Tinyproxy(const std::vector<int>& connect_ports, const std::string& user = "",
                     const std::string& password = "") {
    char tmpl[] = "/tmp/cidrun-tinyproxy-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
    port_ = ServerProcess::free_port();
    std::ofstream conf(dir_ + "/tinyproxy.conf");
    conf << "Port " << port_ << "\nListen 127.0.0.1\nTimeout 30\nMaxClients 100\n"
         << "LogFile \"" << dir_ << "/tinyproxy.log\"\nLogLevel Info\nAllow 127.0.0.1\n"
         << "DisableViaHeader Yes\n";
    for (int p : connect_ports) conf << "ConnectPort " << p << "\n";
    if (!user.empty()) conf << "BasicAuth " << user << " " << password << "\n";
    conf.close();
    process_.emplace(std::vector<std::string>{"tinyproxy"},
                     std::vector<std::string>{"-d", "-c", dir_ + "/tinyproxy.conf"},
                     dir_ + "/stdout", port_);
  }
  ~Tinyproxy() {
    process_.reset();
    std::filesystem::remove_all(dir_);
  }
  Tinyproxy(const Tinyproxy&) = delete;
  Tinyproxy& operator=(const Tinyproxy&) = delete;

  int port() const { return port_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  // What tinyproxy logged (each request it relayed, with its method and target).
  std::string log() const {
    std::ifstream in(dir_ + "/tinyproxy.log");
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  }

 private:
  std::string dir_;
  int port_ = 0;
  std::optional<ServerProcess> process_;
};

}  // namespace cidrun::testing
