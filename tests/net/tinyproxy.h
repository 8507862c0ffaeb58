// A real HTTP proxy for tests: tinyproxy (Debian package) in the foreground on a free loopback
// port, with its own config file, stopped (SIGTERM, reaped) when the object goes away.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace cidrun::testing {

class Tinyproxy {
 public:
  // connect_ports: the ports CONNECT may reach (tinyproxy refuses the others with 403).
  // user/password: when set, the proxy demands them (BasicAuth).
  explicit Tinyproxy(const std::vector<int>& connect_ports, const std::string& user = "",
                     const std::string& password = "") {
    char tmpl[] = "/tmp/cidrun-tinyproxy-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
    port_ = free_port();
    std::ofstream conf(dir_ + "/tinyproxy.conf");
    conf << "Port " << port_ << "\nListen 127.0.0.1\nTimeout 30\nMaxClients 100\n"
         << "LogFile \"" << dir_ << "/tinyproxy.log\"\nLogLevel Info\nAllow 127.0.0.1\n"
         << "DisableViaHeader Yes\n";
    for (int p : connect_ports) conf << "ConnectPort " << p << "\n";
    if (!user.empty()) conf << "BasicAuth " << user << " " << password << "\n";
    conf.close();
    pid_ = ::fork();
    if (pid_ == 0) {
      std::string out = dir_ + "/stdout";
      if (!std::freopen(out.c_str(), "w", stdout) || !std::freopen(out.c_str(), "a", stderr)) {
        ::_exit(126);
      }
      std::string c = dir_ + "/tinyproxy.conf";
      ::execlp("tinyproxy", "tinyproxy", "-d", "-c", c.c_str(), static_cast<char*>(nullptr));
      ::_exit(127);
    }
    wait_listening(pid_, port_, "tinyproxy");
  }
  ~Tinyproxy() {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      ::waitpid(pid_, nullptr, 0);
    }
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

  // Waits until the server just started as pid accepts connections on port; throws (pid set to
  // -1) when it exits first or is not listening within 5 s.
  static void wait_listening(pid_t& pid, int port, const std::string& name) {
    for (int i = 0; i < 200; ++i) {
      if (accepts(port)) return;
      int st = 0;
      if (::waitpid(pid, &st, WNOHANG) == pid) {
        pid = -1;
        throw std::runtime_error(name + " exited at start (is it installed?)");
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(25));
    }
    throw std::runtime_error(name + " did not start listening");
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
  std::string dir_;
  int port_ = 0;
  pid_t pid_ = -1;
};

}  // namespace cidrun::testing
