// runc's spelling of `run`: `cidrun run -b BUNDLE [-d] [--pid-file F] [--console-socket S]
// [--keep] ID`, told apart from `cidrun run ROOT [-- CMD...]` by -b/--bundle. Containerd-era
// tools and scripts written for runc call it this way.
#pragma once

#include <string>

#include "cli/command.h"

namespace cidrun::cli {

struct BundleRunFlags {
  std::string bundle;  // non-empty: the runc form
  std::string pid_file, console_socket;
  bool keep = false;  // leave the stopped container's state for `delete`
  bool no_subreaper = false, no_pivot = false, no_new_keyring = false;  // accepted, as runc's
};

// The runc form's own options (-d/--detach is shared with the other form).
void add_bundle_run_flags(Command& sub, BundleRunFlags& f);

// Runs the bundle as container `id`: detached, it is created and started and left running (the
// exit status is 0); else run waits for it and returns its exit status, and removes it unless
// `keep`.
int run_bundle(const BundleRunFlags& f, const std::string& id, bool detach, int preserve_fds,
               const Globals& g);

}  // namespace cidrun::cli
