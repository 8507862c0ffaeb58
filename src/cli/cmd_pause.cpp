// `cidrun pause ID`: freezes every process of the container (cgroup freezer).
#include <iostream>

#include "cli/command.h"
#include "runtime/container.h"

namespace cidrun::cli {
namespace {

const Registrar reg("pause", [](CLI::App& app, Globals& g) {
  auto id = std::make_shared<std::string>();
  auto* sub = app.add_subcommand("pause", "Pause all processes of a container");
  sub->add_option("id", *id, "Container id")->required();
  sub->callback([id, &g] {
    runtime::pause_container(g.state_root, *id);
    g.exit_code = 0;
  });
});

}  // namespace
}  // namespace cidrun::cli
