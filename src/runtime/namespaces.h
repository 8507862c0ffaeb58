// Starting a process inside namespaces: the ones to join (by fd, in order) and the ones to create
// with clone. The started process is always a child of the caller, so the caller can wait for it.
#pragma once

#include <sys/types.h>

#include <functional>
#include <string>
#include <vector>

#include "runtime/sync.h"
#include "util/fd.h"

namespace cidrun::runtime {

// CLONE_NEW* for an OCI namespace type ("network" -> CLONE_NEWNET); 0 if unknown.
unsigned long namespace_clone_flag(const std::string& type);
// The /proc/PID/ns/<name> file name for an OCI namespace type ("network" -> "net").
std::string namespace_proc_name(const std::string& type);

struct NamespaceToJoin {
  std::string type;
  UniqueFd fd;
};

// Joins `joins` in order (through a short-lived intermediate process, since a pid namespace only
// applies to children), then clones a process with `clone_flags` that runs `child` (which must not
// return). `child_end` is the child's side of the sync socket (the intermediate reports the
// final pid or its error there); `parent_end` is closed in the children.
// With cgroup_fd >= 0 (a cgroup v2 directory, CgroupManager::open_clone_target) and nothing to
// join, the process is cloned straight into that cgroup (clone3 CLONE_INTO_CGROUP, Linux 5.7);
// *into_cgroup says whether that happened (else the caller moves it in).
pid_t spawn_in_namespaces(std::vector<NamespaceToJoin>& joins, unsigned long clone_flags,
                          SyncSocket& parent_end, SyncSocket& child_end,
                          const std::function<void()>& child, int cgroup_fd = -1,
                          bool* into_cgroup = nullptr);

// Brings the loopback interface up in the current network namespace.
void bring_up_loopback();

}  // namespace cidrun::runtime
