// `cidrun config` prints the default config.json (as `nsinit config` did); `cidrun spec` writes it
// to config.json in the bundle directory (as `runc spec` does).
#include <fcntl.h>
#include <unistd.h>

#include <iostream>

#include "cli/command.h"
#include "runtime/default_spec.h"
#include "util/error.h"
#include "util/fd.h"

namespace cidrun::cli {
namespace {

struct ConfigFlags {
  bool rootless = false;
  bool tty = false;
  std::string bundle;
  std::vector<std::string> args;
};

nlohmann::json make_spec(const ConfigFlags& f) {
  runtime::DefaultSpecOptions o;
  o.rootless = f.rootless;
  o.terminal = f.tty;
  o.args = f.args;
  o.host_uid = ::getuid();
  o.host_gid = ::getgid();
  return runtime::default_spec(o);
}

void add_common(Command& sub, ConfigFlags& f) {
  sub.add_flag("--rootless", f.rootless, "A config for an unprivileged user (user namespace)");
  sub.add_flag("-t,--tty", f.tty, "process.terminal = true");
  sub.add_option("args", f.args, "process.args (after --); default: sh");
}

const Registrar config_cmd("config", [](Command& app, Globals& g) {
  auto flags = std::make_shared<ConfigFlags>();
  auto sub = app.add_subcommand("config", "Print a default OCI config.json");
  add_common(sub, *flags);
  sub.callback([flags, &g] {
    std::cout << make_spec(*flags).dump(2) << "\n";
    g.exit_code = 0;
  });
});

const Registrar spec_cmd("spec", [](Command& app, Globals& g) {
  auto flags = std::make_shared<ConfigFlags>();
  auto sub = app.add_subcommand("spec", "Write a default config.json into the bundle (runc spec)");
  add_common(sub, *flags);
  sub.add_option("-b,--bundle", flags->bundle, "Bundle directory (default: current directory)");
  sub.callback([flags, &g] {
    std::string path = (flags->bundle.empty() ? std::string(".") : flags->bundle) + "/config.json";
    if (::access(path.c_str(), F_OK) == 0) throw Error("File " + path + " exists. Remove it first");
    std::string text = make_spec(*flags).dump(2) + "\n";
    write_file_atomic(path, ByteView(reinterpret_cast<const uint8_t*>(text.data()), text.size()),
                      false, 0644);
    g.exit_code = 0;
  });
});

}  // namespace
}  // namespace cidrun::cli
