// `cidrun exec [--process F] [--detach] [--tty] [--console-socket S] [--pid-file F] [--env]
// [--cwd] [--user] ID [CMD...]` (runc exec): a new process in every namespace and the cgroup of a
// running container.
#include <filesystem>

#include "cli/command.h"
#include "cli/process_flags.h"
#include "runtime/container.h"
#include "runtime/run_options.h"
#include "runtime/self_protect.h"
#include "runtime/spec.h"
#include "util/error.h"
#include "util/fd.h"

namespace cidrun::cli {
namespace {

struct ExecFlags {
  std::string id, process_file, console_socket, pid_file;
  runtime::ProcessOverrides o;
  ProcessFlags p;
  bool detach = false, no_new_privs = false;
  std::string process_label, apparmor;
};

void exec(ExecFlags& f, const Command& sub, Globals& g) {
  runtime::ensure_running_from_sealed_copy();
  runtime::ExecOptions eo;
  if (!f.process_file.empty()) {
    eo.process = runtime::parse_process(
        runtime::parse_json(read_text_file(f.process_file), f.process_file), f.process_file);
  } else {
    nlohmann::json process = runtime::exec_process_defaults(g.state_root, f.id);
    f.o.args = command_of(f.p, sub);
    if (f.o.args.empty()) throw Error("exec: no command given (ID CMD...)");
    if (f.no_new_privs) process["noNewPrivileges"] = true;
    // Names are looked up in the running container's own root, as it sees it now.
    std::string root = f.o.user.empty() ? "" : runtime::container_root_path(g.state_root, f.id);
    runtime::apply_process_overrides(process, f.o, root);
    eo.process = runtime::parse_process(process, "exec flags");
  }
  eo.detach = f.detach;
  eo.console_socket = f.console_socket;
  eo.pid_file = f.pid_file.empty() ? "" : std::filesystem::absolute(f.pid_file).string();
  eo.preserve_fds = f.p.preserve_fds;
  g.exit_code = runtime::exec_in_container(g.state_root, f.id, eo);
}

const Registrar reg("exec", [](Command& app, Globals& g) {
  auto f = std::make_shared<ExecFlags>();
  auto sub = app.add_subcommand("exec", "Run a new process inside a running container");
  add_process_flags(sub, f->o, f->p);
  sub.add_option("-p,--process", f->process_file, "process.json (OCI process object)");
  sub.add_flag("-d,--detach", f->detach, "Do not wait for the process");
  sub.add_option("--console-socket", f->console_socket, "Unix socket for the pty master");
  sub.add_option("--pid-file", f->pid_file, "Write the process's pid here");
  sub.add_flag("--no-new-privs", f->no_new_privs, "Set no_new_privs");
  sub.add_option("--process-label", f->process_label, "Accepted (no SELinux here)");
  sub.add_option("--apparmor", f->apparmor, "Accepted (no AppArmor here)");
  sub.add_option("id", f->id, "Container id; then [--] CMD...").required();
  add_command_positional(sub, f->p);
  sub.callback([f, sub, &g] { exec(*f, sub, g); });
});

}  // namespace
}  // namespace cidrun::cli
