// Raw-socket HTTP for tests: connect, send bytes, read responses exactly as they arrive on the
// wire (status, headers, body by Content-Length, chunked or close), so that framing is checked
// rather than trusted to a client library.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <gtest/gtest.h>

#include <cstdlib>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "util/error.h"
#include "util/fd.h"

namespace cidrun::testing {

inline UniqueFd connect_to(int port) {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    throw_errno("connect");
  }
  timeval tv{10, 0};
  ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  return fd;
}

inline void send_text(int fd, std::string_view s) {
  while (!s.empty()) {
    ssize_t n = ::send(fd, s.data(), s.size(), MSG_NOSIGNAL);
    if (n <= 0) throw_errno("send");
    s.remove_prefix(static_cast<size_t>(n));
  }
}

// A minimal client-side reader: status, headers, body by Content-Length, chunked or close.
struct Reply {
  int status = 0;
  std::map<std::string, std::string> headers;  // lower-cased names
  std::string body;
  bool closed = false;  // the server closed the connection (EOF seen)
};

class Reader {
 public:
  explicit Reader(int fd) : fd_(fd) {}

  // nullopt when the connection ended before a full head.
  std::optional<Reply> next(bool head_request = false) {
    Reply r;
    size_t end;
    while ((end = buf_.find("\r\n\r\n")) == std::string::npos) {
      if (!fill()) return std::nullopt;
    }
    std::string head = buf_.substr(0, end + 2);
    buf_.erase(0, end + 4);
    r.status = std::atoi(head.substr(9, 3).c_str());
    size_t pos = head.find("\r\n") + 2;
    while (pos < head.size()) {
      size_t nl = head.find("\r\n", pos);
      std::string line = head.substr(pos, nl - pos);
      size_t colon = line.find(':');
      std::string name = line.substr(0, colon);
      for (auto& c : name) c = static_cast<char>(std::tolower(c));
      r.headers[name] = line.substr(colon + 2);
      pos = nl + 2;
    }
    if (head_request || r.status == 304 || r.status == 204) return r;
    if (r.headers.count("content-length")) {
      size_t n = std::stoul(r.headers["content-length"]);
      while (buf_.size() < n) {
        if (!fill()) return std::nullopt;
      }
      r.body = buf_.substr(0, n);
      buf_.erase(0, n);
    } else if (r.headers["transfer-encoding"] == "chunked") {
      for (;;) {
        size_t nl;
        while ((nl = buf_.find("\r\n")) == std::string::npos) {
          if (!fill()) return std::nullopt;
        }
        size_t n = std::stoul(buf_.substr(0, nl), nullptr, 16);
        while (buf_.size() < nl + 2 + n + 2) {
          if (!fill()) return std::nullopt;
        }
        EXPECT_EQ(buf_.substr(nl + 2 + n, 2), "\r\n");
        r.body += buf_.substr(nl + 2, n);
        buf_.erase(0, nl + 2 + n + 2);
        if (n == 0) break;
      }
    } else {
      while (fill()) {
      }
      r.body = buf_;
      buf_.clear();
      r.closed = true;
    }
    return r;
  }

  // True when the server closed the connection with nothing more to read.
  bool at_eof() {
    if (!buf_.empty()) return false;
    return !fill();
  }

  const std::string& leftover() const { return buf_; }

 private:
  bool fill() {
    char tmp[65536];
    ssize_t n = ::recv(fd_, tmp, sizeof tmp, 0);
    if (n <= 0) return false;
    buf_.append(tmp, static_cast<size_t>(n));
    return true;
  }
  int fd_;
  std::string buf_;
};

}  // namespace cidrun::testing
