// `cidrun start ID`: releases a created container's init to exec the process (runc start).
#include <iostream>

#include "cli/command.h"
#include "runtime/container.h"

namespace cidrun::cli {
namespace {

const Registrar reg("start", [](CLI::App& app, Globals& g) {
  auto id = std::make_shared<std::string>();
  auto* sub = app.add_subcommand("start", "Start a created container");
  sub->add_option("id", *id, "Container id")->required();
  sub->callback([id, &g] {
    runtime::start_container(g.state_root, *id);
    g.exit_code = 0;
  });
});

}  // namespace
}  // namespace cidrun::cli
