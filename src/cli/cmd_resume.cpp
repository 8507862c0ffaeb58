// `cidrun resume ID`: thaws a paused container.
#include <iostream>

#include "cli/command.h"
#include "runtime/container.h"

namespace cidrun::cli {
namespace {

const Registrar reg("resume", [](CLI::App& app, Globals& g) {
  auto id = std::make_shared<std::string>();
  auto* sub = app.add_subcommand("resume", "Resume a paused container");
  sub->add_option("id", *id, "Container id")->required();
  sub->callback([id, &g] {
    runtime::resume_container(g.state_root, *id);
    g.exit_code = 0;
  });
});

}  // namespace
}  // namespace cidrun::cli
