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

// The program once prepare_process is done: nothing is left to do but the execve.
struct PreparedProgram {
  std::string path;  // the program as found in the container (PATH searched)
  std::vector<std::string> argv, env;
  int exec_stub_fd = -1;  // >= 0: execve through this sealed stub, which runs `path`
};

// Every step but the execve, in order: rlimits, oomScoreAdj, terminal, umask, seccomp (here when
// it needs privileges: without noNewPrivileges), bounding set, user, capability sets, cwd, the
// program's lookup as that user, fds, no_new_privs and seccomp (here with noNewPrivileges). So
// everything that can fail fails here, before the runtime is told the process is ready (runc's
// order). Throws; setup_exit_status says which exit status the failure means.
PreparedProgram prepare_process(const FinalizeOptions& opts);
// Does not return: execve, or the failure reported through `report` (when connected, else on
// stderr) and the matching exit status.
[[noreturn]] void exec_program(PreparedProgram& program, const SyncSocket& report);
// prepare_process then exec_program, with a failure reported and exited on the same way.
[[noreturn]] void finalize_and_exec(const FinalizeOptions& opts, const SyncSocket& report);
// Reports a setup failure through `report` (else on stderr) and exits with setup_exit_status.
[[noreturn]] void exit_setup_failed(const std::exception& e, const SyncSocket& report);
// The exit status a failed setup uses: 127 for a program not found, 126 for one that cannot be
// executed, 1 for anything else (what a shell reports).
int setup_exit_status(const std::exception& e);

// Finds `file` in the PATH of `env` (or the default PATH) as execvp would, inside the current root.
std::string find_executable(const std::string& file, const std::vector<std::string>& env);

// The process's environment with defaults filled in: PATH when missing, HOME for the user.
std::vector<std::string> effective_environment(const ProcessSpec& p);

}  // namespace cidrun::runtime
