// `cidrun kill [--all] ID [SIGNAL]` (runc kill): SIGNAL as a name (TERM, SIGTERM) or a number.
#include "cli/command.h"
#include "runtime/container.h"

namespace cidrun::cli {
namespace {

struct KillFlags {
  std::string id;
  std::string signal = "SIGTERM";
  bool all = false;
};

const Registrar reg("kill", [](Command& app, Globals& g) {
  auto f = std::make_shared<KillFlags>();
  auto sub = app.add_subcommand("kill", "Send a signal to a container's init (default SIGTERM)");
  sub.add_flag("-a,--all", f->all, "Signal every process of the container (its cgroup)");
  sub.add_option("id", f->id, "Container id").required();
  sub.add_option("signal", f->signal, "Signal name or number");
  sub.callback([f, &g] {
    int sig = runtime::parse_signal(f->signal);
    runtime::kill_container(g.state_root, f->id, sig, f->all);
    g.exit_code = 0;
  });
});

}  // namespace
}  // namespace cidrun::cli
