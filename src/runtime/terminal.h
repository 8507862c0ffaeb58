// Terminals for containers: a pty opened inside the container's devpts, the controlling terminal
// of the container's process, the caller's terminal in raw mode while attached, and runc's
// --console-socket protocol (the master fd sent over SCM_RIGHTS).
#pragma once

#include <sys/types.h>
#include <termios.h>

#include <string>

#include "util/fd.h"

namespace cidrun::runtime {

struct Pty {
  UniqueFd master;
  UniqueFd slave;
};

// Opens a new pty through `ptmx` (inside the container: its own devpts instance).
Pty open_pty(const std::string& ptmx = "/dev/ptmx");
void set_window_size(int fd, unsigned rows, unsigned cols);
// Copies the window size of `from` (the user's terminal) to `to` (the container's pty).
void copy_window_size(int from, int to);
// setsid, make `slave` the controlling terminal, and put it on stdin/stdout/stderr.
void become_terminal_session(int slave);
// Connects to the unix socket at `path` and sends `fd` as runc does (payload: the pty's name).
void send_to_console_socket(const std::string& path, int fd);

// Puts a terminal in raw mode and restores it on destruction (also call restore() on any exit).
class RawMode {
 public:
  explicit RawMode(int fd);
  ~RawMode() { restore(); }
  RawMode(const RawMode&) = delete;
  RawMode& operator=(const RawMode&) = delete;
  void restore();

 private:
  int fd_ = -1;
  termios saved_{};
  bool active_ = false;
};

// Relays the terminal (pty_master, or -1 for none; stdin too when forward_stdin) and forwards the
// signals read from sigfd to pid until pid exits; returns its exit status (128+N when killed by
// signal N). `run` and a foreground `exec` both wait this way.
int wait_forwarding(pid_t pid, int sigfd, int pty_master, bool forward_stdin);

}  // namespace cidrun::runtime
