// `cidrun start ID`: releases a created container's init to exec the process (runc start).
#include "cli/command.h"
#include "runtime/container.h"

namespace cidrun::cli {
namespace {

const Registrar reg("start", [](Command& app, Globals& g) {
  add_container_command(app, g, "start", "Start a created container", runtime::start_container);
});

}  // namespace
}  // namespace cidrun::cli
