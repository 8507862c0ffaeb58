// The /proc/self/exe overwrite class of escapes (CVE-2019-5736): a process in the container that
// gets hold of the runtime's executable (through /proc/PID/exe of a runtime process that joined
// the container, or by making the container's entry point "#!/proc/self/exe") could write to it
// and replace the host's binary. The defence (runc 1.2's): every command that enters a container
// first re-executes itself from a read-only view of its binary — a detached, lower-only overlayfs
// mount of the binary's directory (fsopen/fsmount; no mount is attached anywhere), so any open for
// writing through /proc/PID/exe fails with EROFS. Where overlayfs is unavailable it falls back to a
// write-sealed memfd copy (runc 1.1's; slower, the binary is copied).
#pragma once

namespace cidrun::runtime {

// If this process's binary can still be written through /proc/self/exe, re-executes it from a
// read-only view with the same argv and environment (does not return then).
void ensure_running_from_sealed_copy();

// True when /proc/self/exe cannot be opened for writing: it lies on a read-only mount, or it is a
// memfd sealed against writes.
bool running_from_sealed_copy();

}  // namespace cidrun::runtime
