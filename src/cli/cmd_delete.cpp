// `cidrun delete [--force] ID` (runc delete): removes a stopped (or, forced, a running) container:
// its processes, cgroup, writable layer and state; poststop hooks run. What is left of a network
// that `run` set up (cli/network.h) goes too.
#include "cli/command.h"
#include "cli/network.h"
#include "runtime/container.h"
#include "runtime/state.h"
#include "util/error.h"

namespace cidrun::cli {
namespace {

struct DeleteFlags {
  std::string id;
  bool force = false;
};

const Registrar reg("delete", [](Command& app, Globals& g) {
  auto f = std::make_shared<DeleteFlags>();
  auto sub = app.add_subcommand("delete", "Delete a container");
  sub.add_flag("-f,--force", f->force, "Kill it first if it is running");
  sub.add_option("id", f->id, "Container id").required();
  sub.callback([f, &g] {
    runtime::StateStore store(g.state_root);
    // runc: deleting a container that does not exist is fine with --force (podman relies on it).
    // A directory a killed create left without a state is removed.
    if (f->force && !store.exists(f->id)) {
      store.remove_if_abandoned(f->id);  // validates the id too
      release_network(g.state_root, f->id);
      g.exit_code = 0;
      return;
    }
    runtime::delete_container(g.state_root, f->id, f->force);
    release_network(g.state_root, f->id);
    g.exit_code = 0;
  });
});

}  // namespace
}  // namespace cidrun::cli
