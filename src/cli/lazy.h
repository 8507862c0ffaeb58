// Lazy mounts from the command line's side: finding or starting the holder of a root's mount
// (fuse/holder.h) and registering as one of its users. `run --lazy` shares one mount per root
// among all its containers of one repository (<state>/fuse/<cidv1>-<repo hash>/mnt: the server
// stores what it fetches in that repository); `mount ROOT DIR` makes one of its own.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "cli/command.h"
#include "multiformats/cid.h"

namespace cidrun::cli {

struct LazyMountRequest {
  Cid root;
  std::vector<std::string> sources;  // --from, before the configured ones
  bool fill = true;                  // fetch the rest in the background
  std::string mountpoint;            // empty: the shared mount of this root
  std::string ref;                   // a user to register (empty: none)
  // A mount of its own whose server notes every block read in this file (cidrun trace).
  std::string record;
  pid_t ref_pid = 0;
};

struct LazyMount {
  std::string state_dir;
  std::string mountpoint;
};

// The running mount for the request, started when there is none. Throws Error with the
// holder's or server's reason when it cannot be started.
LazyMount ensure_lazy_mount(const Globals& g, const LazyMountRequest& req);

// The state directory of a mount at mountpoint made by `cidrun mount`.
std::string explicit_mount_state(const Globals& g, const std::string& mountpoint);
std::string shared_mount_state(const Globals& g, const Cid& root);

// This binary's path on disk (servers are started from it again after an upgrade).
std::string self_exe_path();

}  // namespace cidrun::cli
