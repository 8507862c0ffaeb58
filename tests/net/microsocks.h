// A real SOCKS5 proxy for tests: microsocks (Debian package) on a free loopback port, optionally
// demanding a user name and password, stopped (SIGTERM, reaped) when the object goes away.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "net/server_process.h"

namespace cidrun::testing {

class Microsocks {
 public:
  explicit Microsocks(const std::string& user = "", const std::string& password = "")
      : port_(ServerProcess::free_port()) {
    std::vector<std::string> args{"-i", "127.0.0.1", "-p", std::to_string(port_)};
    if (!user.empty()) args.insert(args.end(), {"-u", user, "-P", password});
    process_.emplace(std::vector<std::string>{"microsocks"}, args, "/dev/null", port_);
  }

  int port() const { return port_; }

 private:
  int port_ = 0;
  std::optional<ServerProcess> process_;
};

}  // namespace cidrun::testing
