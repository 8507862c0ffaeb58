// The socket between the runtime and a process it starts (container init, exec'd process): typed
// messages, each optionally carrying one fd, so the two sides can take turns during setup. A
// failing side sends why and the exit status it uses, so the other side can report both.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>

#include "util/error.h"
#include "util/fd.h"

namespace cidrun::runtime {

// The turns of a start, in the order they happen (launcher.cpp and exec.cpp say who takes which).
enum class SyncStep : uint8_t {
  kChildPid,   // namespace helper -> runtime: the process it cloned (value: its pid)
  kGo,         // runtime -> child: the runtime's part is done (value: the child's pid on the host)
  kMounted,    // init -> runtime: the root is mounted, prestart/createRuntime hooks may run
  kHooksDone,  // runtime -> init
  kPty,        // child -> runtime, with the pty master as its fd
  kReady,      // child -> runtime: set up; what is left is waiting for the start and execve
  kStart,      // runtime -> child: go on to execve
  kFailed,     // child -> runtime: text says why; value is the exit status the child uses
};

struct SyncMessage {
  SyncStep step = SyncStep::kFailed;
  int64_t value = 0;
  std::string text;
};

// The peer reported a failure (SyncStep::kFailed): its reason, and the exit status it uses (127
// for a program not found, 126 for one that cannot be executed, 1 otherwise).
class SetupFailed : public Error {
 public:
  SetupFailed(const std::string& why, int exit_status) : Error(why), exit_status_(exit_status) {}
  int exit_status() const { return exit_status_; }

 private:
  int exit_status_;
};

class SyncSocket {
 public:
  SyncSocket() = default;
  explicit SyncSocket(UniqueFd fd) : fd_(std::move(fd)) {}
  // A connected SOCK_SEQPACKET pair, both ends close-on-exec.
  static std::pair<SyncSocket, SyncSocket> pair();

  void send(SyncStep step, int64_t value = 0, int fd = -1) const;
  // Nothing when the peer sent nothing and the socket closed (the peer exited or exec'd).
  std::optional<SyncMessage> recv(UniqueFd* fd = nullptr) const;
  // Receives one message and checks it is `want`: kFailed becomes SetupFailed, EOF becomes
  // Error("<who> exited during setup"), any other step is a protocol error.
  SyncMessage expect(SyncStep want, const std::string& who, UniqueFd* fd = nullptr) const;
  // In a child, for a turn the runtime gives: receives `want` like expect, but when the runtime
  // closed its end instead it failed and reports why itself, so the child exits 1 without a
  // second message on the same stderr.
  SyncMessage expect_from_runtime(SyncStep want) const;
  // Sends kFailed; never throws (used on the way out of a failing child). False when nobody was
  // listening, so the caller can print the error itself.
  bool send_failure(const std::string& why, int exit_status = 1) const noexcept;

  int get() const { return fd_.get(); }
  void close() { fd_.reset(); }

 private:
  void send_raw(SyncStep step, int64_t value, const std::string& text, int fd) const;

  UniqueFd fd_;
};

}  // namespace cidrun::runtime
