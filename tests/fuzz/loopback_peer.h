// A peer on 127.0.0.1 for the fuzz targets of cidrun's HTTP client: whoever connects gets the
// current input as the peer's bytes (a response, or a proxy's replies followed by one), then the
// end of the stream; what the client sends is read and dropped. The client under test thus runs
// its production path, sockets included, against any bytes the fuzzer makes.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <mutex>
#include <string>
#include <thread>

#include "fuzz.h"
#include "util/fd.h"

namespace cidrun::fuzz {

class LoopbackPeer {
 public:
  LoopbackPeer() {
    listener_.reset(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    FUZZ_CHECK(::bind(listener_.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    FUZZ_CHECK(::listen(listener_.get(), 16) == 0);
    FUZZ_CHECK(::getsockname(listener_.get(), reinterpret_cast<sockaddr*>(&a), &len) == 0);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { serve(); });
    thread_.detach();  // lives as long as the fuzzing process
  }

  int port() const { return port_; }
  // What every connection gets from now on.
  void answer_with(std::string_view bytes) {
    std::lock_guard l(mu_);
    answer_.assign(bytes);
  }

 private:
  void serve() {
    for (;;) {
      UniqueFd c(::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC));
      if (!c.valid()) continue;
      std::string answer;
      {
        std::lock_guard l(mu_);
        answer = answer_;
      }
      // Write all while reading what the client sends (so neither side blocks on a full
      // buffer), then end the stream and drain until the client closes.
      size_t sent = 0;
      bool half_closed = false;
      char buf[64 * 1024];
      for (;;) {
        if (sent == answer.size() && !half_closed) {
          ::shutdown(c.get(), SHUT_WR);
          half_closed = true;
        }
        pollfd p{c.get(), static_cast<short>(POLLIN | (half_closed ? 0 : POLLOUT)), 0};
        if (::poll(&p, 1, 5000) <= 0) break;
        if (p.revents & POLLIN) {
          ssize_t n = ::recv(c.get(), buf, sizeof buf, 0);
          if (n <= 0) break;
        }
        if (!half_closed && (p.revents & POLLOUT)) {
          ssize_t n = ::send(c.get(), answer.data() + sent, answer.size() - sent,
                             MSG_NOSIGNAL | MSG_DONTWAIT);
          if (n < 0 && errno != EAGAIN) break;
          if (n > 0) sent += static_cast<size_t>(n);
        }
        if (p.revents & (POLLHUP | POLLERR)) break;
      }
    }
  }

  UniqueFd listener_;
  int port_ = 0;
  std::mutex mu_;
  std::string answer_;
  std::thread thread_;
};

}  // namespace cidrun::fuzz
