// What /proc says about a process.
#pragma once

#include <sys/types.h>

#include <cstdint>

#include "util/fd.h"

namespace cidrun {

// A pidfd for the process (pidfd_open, Linux 5.3+): it becomes readable when the process exits
// and signals sent through it cannot reach a reused pid. Invalid when the kernel has none or the
// process is gone.
UniqueFd open_pidfd(pid_t pid);

// When a process started, in clock ticks since boot (field 22 of /proc/PID/stat); 0 when it does
// not exist, is a zombie or /proc cannot tell. A pid and its start time name a process even after
// the pid is reused.
uint64_t process_start_time(pid_t pid);

}  // namespace cidrun
