// `cidrun run [OPTIONS] ROOT [--] [CMD...]`: ROOT is a bundle directory (config.json + rootfs/),
// a root filesystem directory, or (through image_root.h) a CID, which runs on a fresh overlay.
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <random>

#include "cli/command.h"
#include "cli/image_root.h"
#include "runtime/container.h"
#include "runtime/default_spec.h"
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

struct RunFlags {
  runtime::RunOverrides o;
  bool interactive = false;
  bool rm = false;
  bool no_cgroup = false;
  std::string name;
  std::string config_file;
  std::string root;
  std::vector<std::string> command;
  int preserve_fds = 0;
};

bool is_dir(const std::string& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

std::string random_id() {
  std::random_device rd;
  static const char* hex = "0123456789abcdef";
  std::string id;
  for (int i = 0; i < 12; ++i) id += hex[rd() % 16];
  return id;
}

void run(RunFlags& f, CLI::App* sub, Globals& g) {
  // "ROOT -- CMD..." fills the command positional; "ROOT CMD..." stops option parsing at CMD.
  std::vector<std::string> cmd = f.command;
  // CLI11 hands "--" over as an extra when the positional already took the command.
  auto rest = sub->remaining();
  if (!rest.empty() && rest[0] == "--") rest.erase(rest.begin());
  if (!cmd.empty() && !rest.empty())
    cmd.insert(cmd.end(), rest.begin(), rest.end());
  else if (cmd.empty())
    cmd = rest;
  if (!cmd.empty()) cmd = argv_tail(cmd.size());
  if (!cmd.empty() && cmd[0] == "--") cmd.erase(cmd.begin());
  f.o.args = cmd;

  runtime::LaunchOptions lo;
  std::string dir = f.root;
  bool bundle = false;
  if (is_dir(f.root)) {
    dir = std::filesystem::absolute(f.root).lexically_normal().string();
    bundle = ::access((dir + "/config.json").c_str(), F_OK) == 0;
  } else {
    dir = resolve_image_root(g, f.root, bundle);
    lo.lower_dirs = {bundle ? dir + "/rootfs" : dir};
  }
  std::string rootfs = bundle ? dir + "/rootfs" : dir;

  nlohmann::json config;
  std::string where;
  if (!f.config_file.empty()) {
    where = f.config_file;
    std::string text = read_text_file(f.config_file);
    config = runtime::parse_spec_text(text, where).raw;
    config["root"]["path"] = rootfs;
  } else if (bundle) {
    where = dir + "/config.json";
    runtime::Spec bs = runtime::load_bundle_spec(dir);
    config = bs.raw;
    config["root"]["path"] = lo.lower_dirs.empty() ? bs.root_path : rootfs;
  } else {
    where = "default config";
    runtime::DefaultSpecOptions dso;
    config = runtime::default_spec(dso);
    config["root"]["path"] = rootfs;
    // A directory given to run is the container's own, as with nsinit/runc: writable unless asked.
    config["root"]["readonly"] = false;
  }
  if (f.o.network.empty() && f.config_file.empty() && !bundle) f.o.network = "none";
  runtime::apply_run_overrides(config, f.o);
  lo.spec = runtime::parse_spec(config, where);
  // The /proc/self/exe defence (runtime/self_protect.h): the sealed exec stub where it is enough,
  // else a second start of this process from a read-only view of its binary.
  lo.exec_through_stub = runtime::exec_stub_protects(lo.spec);
  if (!lo.exec_through_stub && !runtime::running_from_sealed_copy()) {
    release_image_root();
    runtime::ensure_running_from_sealed_copy();
  }
  lo.id = f.name.empty() ? random_id() : f.name;
  lo.bundle = dir;
  lo.state_root = g.state_root;
  lo.no_cgroup = f.no_cgroup;
  lo.preserve_fds = f.preserve_fds;
  lo.interactive = f.interactive;
  lo.remove = f.rm;
  g.exit_code = runtime::run_container(lo);
}

const Registrar reg("run", [](CLI::App& app, Globals& g) {
  auto f = std::make_shared<RunFlags>();
  auto* sub = app.add_subcommand("run", "Run a command in a new container from ROOT");
  sub->prefix_command();
  sub->add_flag("-t,--tty", f->o.tty, "Allocate a terminal (raw mode, window size forwarded)");
  sub->add_flag("-i,--interactive", f->interactive, "Keep stdin attached");
  sub->add_flag("--rm", f->rm, "Remove the container's state and writable layer on exit");
  sub->add_option("--name", f->name, "Container id (default: random)");
  sub->add_option("-e,--env", f->o.env, "NAME=VALUE (or NAME from this environment)")
      ->allow_extra_args(false);
  sub->add_option("--hostname", f->o.hostname, "Container hostname");
  sub->add_option("-w,--workdir", f->o.workdir, "Working directory inside the container");
  sub->add_option("-u,--user", f->o.user, "uid[:gid]");
  sub->add_flag("--read-only", f->o.read_only, "Mount the root read-only");
  sub->add_option("--network", f->o.network, "none (own namespace with lo) or host")
      ->check(CLI::IsMember({"none", "host"}));
  sub->add_option("--mount", f->o.mounts, "type=bind,src=PATH,dst=PATH[,ro]")
      ->allow_extra_args(false);
  sub->add_option("--memory", f->o.memory, "Memory limit (e.g. 64m)");
  sub->add_option("--pids-limit", f->o.pids_limit, "Maximum number of processes");
  sub->add_option("--cpus", f->o.cpus, "CPU quota in CPUs (e.g. 0.5)");
  sub->add_option("--config", f->config_file, "Use this config.json instead of the default");
  sub->add_option("--seccomp", f->o.seccomp, "unconfined, or a seccomp profile JSON file");
  sub->add_flag("--no-cgroup", f->no_cgroup, "Do not create a cgroup");
  sub->add_option("--preserve-fds", f->preserve_fds, "Pass N extra fds (3..) to the container");
  sub->add_option("root", f->root, "Bundle dir, rootfs dir or CID")->required();
  sub->add_option("command", f->command, "Command and arguments (default: the config's)");
  sub->callback([f, sub, &g] { run(*f, sub, g); });
});

}  // namespace
}  // namespace cidrun::cli
