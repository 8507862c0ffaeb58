// `cidrun resume ID`: thaws a paused container.
#include "cli/command.h"
#include "runtime/container.h"

namespace cidrun::cli {
namespace {

const Registrar reg("resume", [](Command& app, Globals& g) {
  add_container_command(app, g, "resume", "Resume a paused container", runtime::resume_container);
});

}  // namespace
}  // namespace cidrun::cli
