// `cidrun state ID`: prints the OCI state JSON (runc state).
#include <iostream>

#include "cli/command.h"
#include "runtime/container.h"

namespace cidrun::cli {
namespace {

const Registrar reg("state", [](Command& app, Globals& g) {
  add_container_command(app, g, "state", "Print the state of a container (OCI state JSON)",
                        [](const std::string& root, const std::string& id) {
                          std::cout << runtime::container_state_json(root, id).dump(2) << "\n";
                        });
});

}  // namespace
}  // namespace cidrun::cli
