// `cidrun pause ID`: freezes every process of the container (cgroup freezer).
#include "cli/command.h"
#include "runtime/container.h"

namespace cidrun::cli {
namespace {

const Registrar reg("pause", [](Command& app, Globals& g) {
  add_container_command(app, g, "pause", "Pause all processes of a container",
                        runtime::pause_container);
});

}  // namespace
}  // namespace cidrun::cli
