#include "runtime/terminal.h"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>

#include "util/error.h"

namespace cidrun::runtime {

Pty open_pty(const std::string& ptmx) {
  Pty p;
  p.master = UniqueFd(::open(ptmx.c_str(), O_RDWR | O_NOCTTY | O_CLOEXEC));
  if (!p.master.valid()) throw_errno("open " + ptmx);
  int unlock = 0;
  if (::ioctl(p.master.get(), TIOCSPTLCK, &unlock) < 0) throw_errno("unlock pty");
  // TIOCGPTPEER opens the peer through the master itself: no path lookup of /dev/pts/N that a
  // process in the container could have replaced.
  int slave = ::ioctl(p.master.get(), TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (slave < 0) throw_errno("open pty peer");
  p.slave.reset(slave);
  return p;
}

void set_window_size(int fd, unsigned rows, unsigned cols) {
  if (rows == 0 && cols == 0) return;
  winsize ws{};
  ws.ws_row = static_cast<unsigned short>(rows);
  ws.ws_col = static_cast<unsigned short>(cols);
  ::ioctl(fd, TIOCSWINSZ, &ws);
}

void copy_window_size(int from, int to) {
  winsize ws{};
  if (::ioctl(from, TIOCGWINSZ, &ws) == 0) ::ioctl(to, TIOCSWINSZ, &ws);
}

void become_terminal_session(int slave) {
  if (::setsid() < 0) throw_errno("setsid");
  if (::ioctl(slave, TIOCSCTTY, 0) < 0) throw_errno("set controlling terminal");
  for (int i = 0; i < 3; ++i)
    if (::dup2(slave, i) < 0) throw_errno("dup2 terminal");
}

void send_to_console_socket(const std::string& path, int fd) {
  UniqueFd s(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!s.valid()) throw_errno("socket");
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path) throw Error("console socket path too long: " + path);
  std::memcpy(addr.sun_path, path.c_str(), path.size());
  if (::connect(s.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) < 0)
    throw_errno("connect to console socket " + path);
  // runc sends the name of the master's file as the message body.
  static const char kName[] = "/dev/ptmx";
  msghdr mh{};
  iovec iov{const_cast<char*>(kName), sizeof kName - 1};
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  mh.msg_control = control;
  mh.msg_controllen = sizeof control;
  cmsghdr* c = CMSG_FIRSTHDR(&mh);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  std::memcpy(CMSG_DATA(c), &fd, sizeof fd);
  if (::sendmsg(s.get(), &mh, MSG_NOSIGNAL) < 0) throw_errno("send pty to console socket");
}

RawMode::RawMode(int fd) {
  if (!::isatty(fd) || ::tcgetattr(fd, &saved_) < 0) return;
  termios raw = saved_;
  ::cfmakeraw(&raw);
  if (::tcsetattr(fd, TCSADRAIN, &raw) < 0) return;
  fd_ = fd;
  active_ = true;
}

void RawMode::restore() {
  if (!active_) return;
  ::tcsetattr(fd_, TCSADRAIN, &saved_);
  active_ = false;
}

}  // namespace cidrun::runtime
