#include "runtime/sync.h"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "util/error.h"

namespace cidrun::runtime {

std::pair<SyncSocket, SyncSocket> SyncSocket::pair() {
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) throw_errno("socketpair");
  return {SyncSocket(UniqueFd(sv[0])), SyncSocket(UniqueFd(sv[1]))};
}

void SyncSocket::send(const std::string& msg, int fd) const {
  msghdr mh{};
  iovec iov{const_cast<char*>(msg.data()), msg.size()};
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  if (fd >= 0) {
    mh.msg_control = control;
    mh.msg_controllen = sizeof control;
    cmsghdr* c = CMSG_FIRSTHDR(&mh);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(c), &fd, sizeof fd);
  }
  while (::sendmsg(fd_.get(), &mh, MSG_NOSIGNAL) < 0) {
    if (errno != EINTR) throw_errno("sync send");
  }
}

bool SyncSocket::recv(std::string& msg, UniqueFd* fd) const {
  char buf[8192];
  msghdr mh{};
  iovec iov{buf, sizeof buf};
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  mh.msg_control = control;
  mh.msg_controllen = sizeof control;
  ssize_t n;
  while ((n = ::recvmsg(fd_.get(), &mh, MSG_CMSG_CLOEXEC)) < 0) {
    // A peer that closed with a message of ours unread leaves ECONNRESET pending, reported once
    // before what it sent last (an init that failed before reading "go"): read on to that.
    if (errno != EINTR && errno != ECONNRESET) throw_errno("sync receive");
  }
  for (cmsghdr* c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
      int got;
      std::memcpy(&got, CMSG_DATA(c), sizeof got);
      if (fd)
        fd->reset(got);
      else
        ::close(got);
    }
  }
  if (n == 0) return false;
  msg.assign(buf, static_cast<size_t>(n));
  return true;
}

void SyncSocket::expect(const std::string& want, const std::string& who, UniqueFd* fd) const {
  std::string msg;
  if (!recv(msg, fd)) throw Error(who + " exited during setup");
  if (msg.rfind("error:", 0) == 0) throw Error(msg.substr(6));
  if (msg != want) throw Error("unexpected message from " + who + ": " + msg);
}

bool SyncSocket::send_error(const std::string& text) const noexcept {
  if (!fd_.valid()) return false;
  try {
    send("error:" + text);
    return true;
  } catch (...) {
    return false;
  }
}

}  // namespace cidrun::runtime
