// The last steps of starting a container's process, shared by the container's init and by exec:
// limits, terminal, user switch, capabilities, working directory, fds, no_new_privs, seccomp,
// execve — in that order, each one a call.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "runtime/spec.h"
#include "runtime/sync.h"

namespace cidrun::runtime {

struct FinalizeOptions {
  const ProcessSpec* process = nullptr;
  nlohmann::json seccomp;         // linux.seccomp; null = no filter
  int terminal_slave = -1;        // becomes the controlling terminal and stdio
  int preserve_fds = 0;           // fds 3 .. 3+N-1 stay open (runc --preserve-fds)
  bool setgroups_allowed = true;  // false in a user namespace with setgroups "deny"
  int exec_stub_fd = -1;          // >= 0: execve through this sealed stub (self_protect.h)
};

// Does not return. Errors before execve are reported through `report` (when connected) and on
// stderr; the process then exits 127 (program not found), 126 (not executable) or 1.
[[noreturn]] void finalize_and_exec(const FinalizeOptions& opts, const SyncSocket& report);

// Finds `file` in the PATH of `env` (or the default PATH) as execvp would, inside the current root.
std::string find_executable(const std::string& file, const std::vector<std::string>& env);

// Fails the way execve would when the program is missing (a PATH search that finds nothing, a
// path that does not exist or is a directory), checked as root in the container's root before
// `create` returns, so the error is create's (as with runc) rather than the started container's.
void check_executable(const ProcessSpec& p);

// The process's environment with defaults filled in: PATH when missing, HOME for the user.
std::vector<std::string> effective_environment(const ProcessSpec& p);

}  // namespace cidrun::runtime
