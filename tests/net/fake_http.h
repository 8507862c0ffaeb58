// A tiny HTTP/1.1 server on 127.0.0.1 (ephemeral port) for tests: the handler gets the request
// head and the raw socket, so a test can answer correctly or misbehave in ways no real server
// library allows (truncate, pad, hang, lie). One thread per connection; Connection: close.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <functional>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace cidrun::testing {

struct HttpHead {
  std::string method;
  std::string target;  // path and query as sent
  std::string head;    // the whole request head
  std::string rest;    // bytes that followed the head in the same reads (the body's start)
  std::string path() const { return target.substr(0, target.find('?')); }
  bool has(const std::string& s) const { return head.find(s) != std::string::npos; }
};

inline bool send_all(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n <= 0) return false;
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

inline void send_response(int fd, int status, const std::string& type, std::string_view body,
                          const std::string& extra_headers = "") {
  std::string head = "HTTP/1.1 " + std::to_string(status) + " X\r\nContent-Type: " + type +
                     "\r\nContent-Length: " + std::to_string(body.size()) +
                     "\r\nConnection: close\r\n" + extra_headers + "\r\n";
  send_all(fd, head);
  send_all(fd, body);
}

class FakeHttp {
 public:
  using Handler = std::function<void(const HttpHead&, int fd)>;

  // raw: the handler gets each connection at once, with an empty head, to speak another
  // protocol on it (a SOCKS proxy, say).
  explicit FakeHttp(Handler h, bool raw = false) : handler_(std::move(h)), raw_(raw) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
        ::listen(listen_fd_, 128) != 0) {
      throw std::runtime_error("fake http: bind");
    }
    socklen_t len = sizeof a;
    ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    accept_thread_ = std::thread([this] { accept_loop(); });
  }

  ~FakeHttp() {
    stopping_ = true;
    ::shutdown(listen_fd_, SHUT_RDWR);
    accept_thread_.join();
    {
      std::lock_guard l(mu_);
      for (int fd : open_fds_) ::shutdown(fd, SHUT_RDWR);
    }
    for (auto& t : conns_) t.join();
    ::close(listen_fd_);
  }

  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  int port() const { return port_; }
  int requests() const { return requests_; }
  bool stopping() const { return stopping_; }

  // Blocks a handler until the server shuts down: a peer that never answers.
  void hang() const {
    while (!stopping_) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }

 private:
  void accept_loop() {
    for (;;) {
      int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) return;
      std::lock_guard l(mu_);
      open_fds_.push_back(fd);
      conns_.emplace_back([this, fd] { serve(fd); });
    }
  }

  void serve(int fd) {
    if (raw_) {
      ++requests_;
      handler_(HttpHead{}, fd);
      finish(fd);
      return;
    }
    std::string buf;
    char tmp[4096];
    while (buf.find("\r\n\r\n") == std::string::npos) {
      ssize_t n = ::recv(fd, tmp, sizeof tmp, 0);
      if (n <= 0) break;
      buf.append(tmp, static_cast<size_t>(n));
    }
    if (buf.find("\r\n\r\n") != std::string::npos) {
      ++requests_;
      HttpHead h;
      h.head = buf.substr(0, buf.find("\r\n\r\n"));
      h.rest = buf.substr(h.head.size() + 4);
      size_t sp1 = h.head.find(' ');
      size_t sp2 = h.head.find(' ', sp1 + 1);
      h.method = h.head.substr(0, sp1);
      h.target = h.head.substr(sp1 + 1, sp2 - sp1 - 1);
      handler_(h, fd);
    }
    finish(fd);
  }

  void finish(int fd) {
    ::shutdown(fd, SHUT_RDWR);
    std::lock_guard l(mu_);
    std::erase(open_fds_, fd);
    ::close(fd);
  }

  Handler handler_;
  bool raw_ = false;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  std::atomic<int> requests_{0};
  std::thread accept_thread_;
  std::mutex mu_;
  std::vector<int> open_fds_;
  std::vector<std::thread> conns_;
};

}  // namespace cidrun::testing
