#include "cli/process_flags.h"

#include "util/fd.h"

namespace cidrun::cli {
namespace {

std::vector<std::string> argv_tail(size_t n) {
  std::string raw = read_text_file("/proc/self/cmdline");
  std::vector<std::string> all;
  for (size_t i = 0; i < raw.size();) {
    size_t j = raw.find('\0', i);
    if (j == std::string::npos) j = raw.size();
    all.push_back(raw.substr(i, j - i));
    i = j + 1;
  }
  if (n > all.size()) return {};
  return std::vector<std::string>(all.end() - static_cast<std::ptrdiff_t>(n), all.end());
}

}  // namespace

void add_process_flags(Command& sub, runtime::ProcessOverrides& o, ProcessFlags& f) {
  sub.add_flag("-t,--tty", o.tty, "Allocate a terminal (raw mode, window size forwarded)");
  sub.add_option("-e,--env", o.env, "NAME=VALUE (or NAME from this environment)").one_value_each();
  sub.add_option("-w,--workdir,--cwd", o.workdir, "Working directory inside the container");
  sub.add_option("-u,--user", o.user,
                 "user[:group], names from the container's /etc/passwd and /etc/group or ids");
  sub.add_option("-g,--additional-gids,--group-add", o.additional_gids,
                 "Supplementary group id (repeatable)")
      .one_value_each();
  sub.add_option("--preserve-fds", f.preserve_fds, "Pass N extra fds (3..) to the process")
      .non_negative();
}

void add_command_positional(Command& sub, ProcessFlags& f) {
  sub.positionals_at_end();
  sub.add_option("command", f.command, "Command and arguments");
}

// CLI11 may still hand some words over as extras and reorder them; the command is always the
// tail of our own argv, so that many words are taken from there.
std::vector<std::string> command_of(const ProcessFlags& f, const Command& sub) {
  std::vector<std::string> cmd = f.command;
  auto rest = sub.remaining();
  cmd.insert(cmd.end(), rest.begin(), rest.end());
  if (!cmd.empty()) cmd = argv_tail(cmd.size());
  if (!cmd.empty() && cmd[0] == "--") cmd.erase(cmd.begin());
  return cmd;
}

}  // namespace cidrun::cli
