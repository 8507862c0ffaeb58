// `cidrun exec [--process F] [--detach] [--tty] [--console-socket S] [--pid-file F] [--env]
// [--cwd] [--user] ID [CMD...]` (runc exec): a new process in every namespace and the cgroup of a
// running container.
#include <filesystem>

#include "cli/command.h"
#include "runtime/container.h"
#include "runtime/run_options.h"
#include "runtime/self_protect.h"
#include "runtime/spec.h"
#include "util/error.h"
#include "util/fd.h"

namespace cidrun::cli {
namespace {

// CLI11 moves option-looking words of a command ("sh -c X") behind the others; the command is
// always the tail of our own argv, so take that many words from there in their real order.
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

struct ExecFlags {
  std::string id, process_file, console_socket, pid_file, cwd, user;
  std::vector<std::string> env, command;
  std::vector<uint32_t> additional_gids;
  bool detach = false, tty = false, no_new_privs = false;
  int preserve_fds = 0;
  std::string process_label, apparmor;
};

void exec(ExecFlags& f, CLI::App* sub, Globals& g) {
  runtime::ensure_running_from_sealed_copy();
  runtime::ExecOptions eo;
  if (!f.process_file.empty()) {
    eo.process = runtime::parse_process(nlohmann::json::parse(read_text_file(f.process_file)),
                                        f.process_file);
  } else {
    eo.process = runtime::exec_process_defaults(g.state_root, f.id);
    eo.process.args = f.command;
    // CLI11 hands "--" over as an extra when the positional already took the command.
    auto rest = sub->remaining();
    if (!rest.empty() && rest[0] == "--") rest.erase(rest.begin());
    eo.process.args.insert(eo.process.args.end(), rest.begin(), rest.end());
    if (!eo.process.args.empty()) eo.process.args = argv_tail(eo.process.args.size());
    if (!eo.process.args.empty() && eo.process.args[0] == "--")
      eo.process.args.erase(eo.process.args.begin());
    if (eo.process.args.empty()) throw Error("exec: no command given (ID CMD...)");
    for (const auto& e : f.env) {
      if (e.find('=') == std::string::npos) throw Error("--env " + e + ": want NAME=VALUE");
      std::string name = e.substr(0, e.find('=') + 1);
      std::erase_if(eo.process.env, [&](const std::string& x) { return x.rfind(name, 0) == 0; });
      eo.process.env.push_back(e);
    }
    if (!f.cwd.empty()) eo.process.cwd = f.cwd;
    if (!f.user.empty()) {
      auto [uid, gid] = runtime::parse_user(f.user);
      eo.process.uid = uid;
      eo.process.gid = gid;
    }
    for (auto gid : f.additional_gids) eo.process.additional_gids.push_back(gid);
    eo.process.terminal = f.tty;
    if (f.no_new_privs) eo.process.no_new_privileges = true;
  }
  eo.detach = f.detach;
  eo.console_socket = f.console_socket;
  eo.pid_file = f.pid_file.empty() ? "" : std::filesystem::absolute(f.pid_file).string();
  eo.preserve_fds = f.preserve_fds;
  g.exit_code = runtime::exec_in_container(g.state_root, f.id, eo);
}

const Registrar reg("exec", [](CLI::App& app, Globals& g) {
  auto f = std::make_shared<ExecFlags>();
  auto* sub = app.add_subcommand("exec", "Run a new process inside a running container");
  sub->prefix_command();
  sub->add_option("-p,--process", f->process_file, "process.json (OCI process object)");
  sub->add_flag("-d,--detach", f->detach, "Do not wait for the process");
  sub->add_flag("-t,--tty", f->tty, "Allocate a terminal");
  sub->add_option("--console-socket", f->console_socket, "Unix socket for the pty master");
  sub->add_option("--pid-file", f->pid_file, "Write the process's pid here");
  sub->add_option("-e,--env", f->env, "NAME=VALUE")->allow_extra_args(false);
  sub->add_option("--cwd", f->cwd, "Working directory");
  sub->add_option("-u,--user", f->user, "uid[:gid]");
  sub->add_option("-g,--additional-gids", f->additional_gids, "Supplementary group")
      ->allow_extra_args(false);
  sub->add_flag("--no-new-privs", f->no_new_privs, "Set no_new_privs");
  sub->add_option("--preserve-fds", f->preserve_fds, "Pass N extra fds (3..)");
  sub->add_option("--process-label", f->process_label, "Accepted (no SELinux here)");
  sub->add_option("--apparmor", f->apparmor, "Accepted (no AppArmor here)");
  sub->add_option("id", f->id, "Container id")->required();
  sub->add_option("command", f->command, "Command and arguments");
  sub->callback([f, sub, &g] { exec(*f, sub, g); });
});

}  // namespace
}  // namespace cidrun::cli
