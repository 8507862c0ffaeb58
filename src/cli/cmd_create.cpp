// `cidrun create --bundle B [--pid-file F] [--console-socket S] ID` (runc create): the container's
// init is set up and waits until `cidrun start ID`.
#include <filesystem>

#include "cli/command.h"
#include "runtime/cgroups.h"
#include "runtime/container.h"
#include "runtime/self_protect.h"
#include "runtime/spec.h"

namespace cidrun::cli {
namespace {

struct CreateFlags {
  std::string bundle = ".";
  std::string pid_file, console_socket, id;
  int preserve_fds = 0;
  bool no_pivot = false, no_new_keyring = false;
};

const Registrar reg("create", [](Command& app, Globals& g) {
  auto f = std::make_shared<CreateFlags>();
  auto sub = app.add_subcommand("create", "Create a container from an OCI bundle (runc create)");
  sub.add_option("-b,--bundle", f->bundle, "Bundle directory (default: current directory)");
  sub.add_option("--pid-file", f->pid_file, "Write the init's pid here");
  sub.add_option("--console-socket", f->console_socket,
                 "Unix socket that receives the pty master (process.terminal)");
  sub.add_option("--preserve-fds", f->preserve_fds, "Pass N extra fds (3..) to the container");
  sub.add_flag("--no-pivot", f->no_pivot,
               "Accepted for runc compatibility (pivot_root is always used)");
  sub.add_flag("--no-new-keyring", f->no_new_keyring, "Accepted for runc compatibility");
  sub.add_option("id", f->id, "Container id").required();
  sub.callback([f, &g] {
    runtime::ensure_running_from_sealed_copy();
    runtime::LaunchOptions lo;
    lo.id = f->id;
    lo.bundle = std::filesystem::absolute(f->bundle).lexically_normal().string();
    if (lo.bundle.size() > 1 && lo.bundle.back() == '/') lo.bundle.pop_back();
    lo.spec = runtime::load_bundle_spec(lo.bundle);
    if (g.systemd_cgroup) {
      lo.spec.cgroups_path = runtime::systemd_cgroup_path(lo.spec.cgroups_path, lo.id);
    }
    lo.state_root = g.state_root;
    lo.pid_file = f->pid_file.empty() ? "" : std::filesystem::absolute(f->pid_file).string();
    lo.console_socket = f->console_socket;
    lo.preserve_fds = f->preserve_fds;
    runtime::create_container(lo);
    g.exit_code = 0;
  });
});

}  // namespace
}  // namespace cidrun::cli
