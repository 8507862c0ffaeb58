// The /proc/self/exe overwrite class of escapes (CVE-2019-5736): a process in the container that
// gets hold of the runtime's executable (through /proc/PID/exe of a runtime process that joined
// the container, or by making the container's entry point "#!/proc/self/exe") could write to it
// and replace the host's binary. The defence (runc 1.2's): every command that enters a container
// first re-executes itself from a read-only view of its binary — a detached, lower-only overlayfs
// mount of the binary's directory (fsopen/fsmount; no mount is attached anywhere), so any open for
// writing through /proc/PID/exe fails with EROFS. Where overlayfs is unavailable it falls back to a
// write-sealed memfd copy (runc 1.1's; slower, the binary is copied).
//
// `run` avoids that second process start when it can (the runtime's start time is issue 4's
// goal): the container's program is then exec'd through a tiny static stub held in a sealed
// memfd (runtime/exec_stub/), and nothing in the container can reach a process that runs cidrun's
// binary. Why that holds, and when it does not (then `run` re-executes as above):
//   - Only the container's init and its children enter the container; the parent stays in the
//     host's namespaces. With a new pid namespace, no process of the container exists while the
//     init sets up, and `exec` cannot join before the state is saved, which `run` does only after
//     the init has become the stub (its sync socket closes at that execve). No new pid namespace
//     (or one joined by path) means other processes could watch the init: re-exec.
//   - The init's last execve is the stub's; the stub's is the program's. A "#!/proc/self/exe"
//     program thus gets the sealed stub as its interpreter, which refuses to run as one.
//   - startContainer hooks run container binaries from the init before that execve: re-exec.
//   - Exec'ing twice may change capabilities for a non-root user (file capabilities, runc's
//     runc-dmz issue #4125); for uid 0 both execs compute the same sets: other users re-exec.
//   - The stub's execveat and execve must pass the seccomp filter: only a profile that allows
//     by default and names neither call takes the stub path. memfd exec must be allowed
//     (vm.memfd_noexec < 2).
// `create` and `exec` always re-execute: their init or process waits inside the container.
#pragma once

#include "runtime/spec.h"
#include "util/fd.h"

namespace cidrun::runtime {

// If this process's binary can still be written through /proc/self/exe, re-executes it from a
// read-only view with the same argv and environment (does not return then).
void ensure_running_from_sealed_copy();

// True when /proc/self/exe cannot be opened for writing: it lies on a read-only mount, or it is a
// memfd sealed against writes.
bool running_from_sealed_copy();

// True when `run` may start `spec` without re-executing: its program is then exec'd through the
// stub from sealed_exec_stub() (the conditions are above).
bool exec_stub_protects(const Spec& spec);

// A memfd holding the exec stub, sealed against every change, close-on-exec, numbered min_fd or
// above (so it never lands among the fds a container is given).
UniqueFd sealed_exec_stub(int min_fd);

}  // namespace cidrun::runtime
