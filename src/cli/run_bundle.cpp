#include "cli/run_bundle.h"

#include <filesystem>

#include "runtime/cgroups.h"
#include "runtime/container.h"
#include "runtime/self_protect.h"
#include "runtime/spec.h"

namespace cidrun::cli {

void add_bundle_run_flags(Command& sub, BundleRunFlags& f) {
  sub.add_option("-b,--bundle", f.bundle, "runc's form: run this bundle as container ROOT (an id)");
  sub.add_option("--pid-file", f.pid_file, "runc's form: write the init's pid here");
  sub.add_option("--console-socket", f.console_socket,
                 "runc's form: Unix socket that receives the pty master (process.terminal)");
  sub.add_flag("--keep", f.keep, "runc's form: keep the stopped container until `delete`");
  sub.add_flag("--no-subreaper", f.no_subreaper, "Accepted for runc compatibility");
  sub.add_flag("--no-pivot", f.no_pivot, "Accepted for runc compatibility (pivot_root is used)");
  sub.add_flag("--no-new-keyring", f.no_new_keyring, "Accepted for runc compatibility");
}

int run_bundle(const BundleRunFlags& f, const std::string& id, bool detach, int preserve_fds,
               const Globals& g) {
  runtime::LaunchOptions lo;
  lo.id = id;
  lo.bundle = std::filesystem::absolute(f.bundle).lexically_normal().string();
  if (lo.bundle.size() > 1 && lo.bundle.back() == '/') lo.bundle.pop_back();
  lo.spec = runtime::load_bundle_spec(lo.bundle);
  if (g.systemd_cgroup) {
    lo.spec.cgroups_path = runtime::systemd_cgroup_path(lo.spec.cgroups_path, lo.id);
  }
  lo.state_root = g.state_root;
  lo.pid_file = f.pid_file.empty() ? "" : std::filesystem::absolute(f.pid_file).string();
  lo.console_socket = f.console_socket;
  lo.preserve_fds = preserve_fds;
  if (detach) {
    // runc run -d: create and start, the init left to run on its own.
    runtime::ensure_running_from_sealed_copy();
    runtime::create_container(lo);
    runtime::start_container(g.state_root, id);
    return 0;
  }
  // As runc: the container's stdin is the caller's, and its state goes with it unless --keep.
  lo.interactive = true;
  lo.remove = !f.keep;
  lo.exec_through_stub = runtime::exec_stub_protects(lo.spec);
  if (!lo.exec_through_stub) runtime::ensure_running_from_sealed_copy();
  return runtime::run_container(lo);
}

}  // namespace cidrun::cli
