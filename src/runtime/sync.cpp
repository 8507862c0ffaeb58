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

namespace {

// On the wire: the step, then the value, then the text; one datagram per message.
constexpr size_t kHeaderSize = 1 + sizeof(int64_t);
constexpr uint8_t kLastStep = static_cast<uint8_t>(SyncStep::kFailed);

}  // namespace

void SyncSocket::send(SyncStep step, int64_t value, int fd) const {
  send_raw(step, value, "", fd);
}

void SyncSocket::send_raw(SyncStep step, int64_t value, const std::string& text, int fd) const {
  std::string wire(kHeaderSize, '\0');
  wire[0] = static_cast<char>(step);
  std::memcpy(wire.data() + 1, &value, sizeof value);
  wire += text;
  msghdr mh{};
  iovec iov{wire.data(), wire.size()};
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

std::optional<SyncMessage> SyncSocket::recv(UniqueFd* fd) const {
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
  if (n == 0) return std::nullopt;
  if (static_cast<size_t>(n) < kHeaderSize || static_cast<uint8_t>(buf[0]) > kLastStep)
    throw Error("sync: malformed message of " + std::to_string(n) + " bytes");
  SyncMessage m;
  m.step = static_cast<SyncStep>(buf[0]);
  std::memcpy(&m.value, buf + 1, sizeof m.value);
  m.text.assign(buf + kHeaderSize, static_cast<size_t>(n) - kHeaderSize);
  return m;
}

SyncMessage SyncSocket::expect(SyncStep want, const std::string& who, UniqueFd* fd) const {
  std::optional<SyncMessage> m = recv(fd);
  if (!m) throw Error(who + " exited during setup");
  if (m->step == SyncStep::kFailed) throw SetupFailed(m->text, static_cast<int>(m->value));
  if (m->step != want) {
    throw Error("unexpected message from " + who + ": step " +
                std::to_string(static_cast<int>(m->step)) + " instead of " +
                std::to_string(static_cast<int>(want)));
  }
  return *m;
}

SyncMessage SyncSocket::expect_from_runtime(SyncStep want) const {
  std::optional<SyncMessage> m = recv();
  if (!m) ::_exit(1);
  if (m->step != want) {
    throw Error("unexpected message from runtime: step " +
                std::to_string(static_cast<int>(m->step)) + " instead of " +
                std::to_string(static_cast<int>(want)));
  }
  return *m;
}

bool SyncSocket::send_failure(const std::string& why, int exit_status) const noexcept {
  if (!fd_.valid()) return false;
  try {
    send_raw(SyncStep::kFailed, exit_status, why, -1);
    return true;
  } catch (...) {
    return false;
  }
}

}  // namespace cidrun::runtime
