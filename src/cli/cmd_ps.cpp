// `cidrun ps [--format table|json] ID`: the container's processes (json: an array of pids, as
// runc).
#include <iostream>

#include "cli/command.h"
#include "runtime/container.h"
#include "util/fd.h"

namespace cidrun::cli {
namespace {

struct PsFlags {
  std::string id;
  std::string format = "table";
};

std::string command_line(pid_t pid) {
  std::string cmd;
  try {
    cmd = read_text_file("/proc/" + std::to_string(pid) + "/cmdline");
  } catch (...) {
    return "";
  }
  for (auto& c : cmd)
    if (c == '\0') c = ' ';
  while (!cmd.empty() && cmd.back() == ' ') cmd.pop_back();
  return cmd;
}

const Registrar reg("ps", [](Command& app, Globals& g) {
  auto f = std::make_shared<PsFlags>();
  auto sub = app.add_subcommand("ps", "List the processes of a container");
  sub.add_option("-f,--format", f->format, "table or json").one_of({"table", "json"});
  sub.add_option("id", f->id, "Container id").required();
  sub.callback([f, &g] {
    auto pids = runtime::container_pids(g.state_root, f->id);
    if (f->format == "json") {
      std::cout << nlohmann::json(pids).dump() << "\n";
    } else {
      std::cout << "PID\tCMD\n";
      for (pid_t p : pids) std::cout << p << "\t" << command_line(p) << "\n";
    }
    g.exit_code = 0;
  });
});

}  // namespace
}  // namespace cidrun::cli
