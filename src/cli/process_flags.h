// The process flags `run` and `exec` share, registered and read in one place so both commands
// spell and treat them alike: -t/--tty, -e/--env, -u/--user, -w/--workdir (exec: also --cwd),
// -g/--additional-gids (run: also --group-add), --preserve-fds and the trailing command.
#pragma once

#include <string>
#include <vector>

#include "cli/command.h"
#include "runtime/run_options.h"

namespace cidrun::cli {

struct ProcessFlags {
  std::vector<std::string> command;  // read it with command_of()
  int preserve_fds = 0;
};

// Adds the options; `o` receives tty, env, workdir, user and additional gids.
void add_process_flags(Command& sub, runtime::ProcessOverrides& o, ProcessFlags& f);
// Adds the trailing CMD... positional, after the command's own (ROOT, ID). Every word after the
// first positional is positional (podman's rule: options go before ROOT/ID), so the command's
// own options (`id -u`, `sh -c`) are never taken for ours.
void add_command_positional(Command& sub, ProcessFlags& f);

// The command in its real order, "ID -- CMD..." and "ID CMD..." alike (a leading "--" dropped).
std::vector<std::string> command_of(const ProcessFlags& f, const Command& sub);

}  // namespace cidrun::cli
