// `cidrun state ID`: prints the OCI state JSON (runc state).
#include <iostream>

#include "cli/command.h"
#include "runtime/container.h"

namespace cidrun::cli {
namespace {

const Registrar reg("state", [](CLI::App& app, Globals& g) {
  auto id = std::make_shared<std::string>();
  auto* sub = app.add_subcommand("state", "Print the state of a container (OCI state JSON)");
  sub->add_option("id", *id, "Container id")->required();
  sub->callback([id, &g] {
    std::cout << runtime::container_state_json(g.state_root, *id).dump(2) << "\n";
    g.exit_code = 0;
  });
});

}  // namespace
}  // namespace cidrun::cli
