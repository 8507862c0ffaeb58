// The socket between the runtime and a process it starts (container init, exec'd process): short
// text messages, each optionally carrying one fd, so the two sides can take turns during setup.
#pragma once

#include <string>
#include <utility>

#include "util/fd.h"

namespace cidrun::runtime {

class SyncSocket {
 public:
  SyncSocket() = default;
  explicit SyncSocket(UniqueFd fd) : fd_(std::move(fd)) {}
  // A connected SOCK_SEQPACKET pair, both ends close-on-exec.
  static std::pair<SyncSocket, SyncSocket> pair();

  void send(const std::string& msg, int fd = -1) const;
  // False when the peer sent nothing and the socket closed (the peer exited or exec'd).
  bool recv(std::string& msg, UniqueFd* fd = nullptr) const;
  // Receives one message and checks it: "error:<text>" from the peer becomes Error(text), EOF
  // becomes Error("<who> exited during setup"), anything other than `want` is a protocol error.
  void expect(const std::string& want, const std::string& who, UniqueFd* fd = nullptr) const;
  // Sends "error:<text>"; never throws (used on the way out of a failing child). False when
  // nobody was listening, so the caller can print the error itself.
  bool send_error(const std::string& text) const noexcept;

  int get() const { return fd_.get(); }
  void close() { fd_.reset(); }

 private:
  UniqueFd fd_;
};

}  // namespace cidrun::runtime
