// `run -d` (podman's spelling): the container is created and started, then left running under
// its name while `run` returns, and `kill NAME` / `delete NAME` work as for any container. A small
// monitor process (forked from `run`, in a session of its own) waits for the container's end to
// tear its network down at once and, with --rm, to delete it, as conmon does for podman.
#pragma once

#include <memory>

#include "cli/network.h"
#include "runtime/container.h"

namespace cidrun::cli {

// Starts the container of `lo` with its standard streams on /dev/null and returns once its
// program runs. `net` (may be null) then belongs to the monitor. Throws cidrun::Error when the
// container cannot start; nothing is left then.
void run_detached(const runtime::LaunchOptions& lo, std::unique_ptr<ContainerNetwork>& net,
                  bool remove);

}  // namespace cidrun::cli
