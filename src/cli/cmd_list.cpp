// `cidrun list [--format table|json] [--quiet]` (runc list).
#include <cstdio>
#include <iostream>

#include "cli/command.h"
#include "runtime/container.h"

namespace cidrun::cli {
namespace {

struct ListFlags {
  std::string format = "table";
  bool quiet = false;
};

const Registrar reg("list", [](Command& app, Globals& g) {
  auto f = std::make_shared<ListFlags>();
  auto sub = app.add_subcommand("list", "List containers");
  sub.add_option("-f,--format", f->format, "table or json").one_of({"table", "json"});
  sub.add_flag("-q,--quiet", f->quiet, "Only ids");
  sub.callback([f, &g] {
    auto all = runtime::list_containers(g.state_root);
    if (f->quiet) {
      for (const auto& c : all) std::cout << c["id"].get<std::string>() << "\n";
    } else if (f->format == "json") {
      std::cout << nlohmann::json(all).dump() << "\n";
    } else {
      std::printf("%-20s %-8s %-10s %-40s %-32s %s\n", "ID", "PID", "STATUS", "BUNDLE", "CREATED",
                  "OWNER");
      for (const auto& c : all)
        std::printf("%-20s %-8d %-10s %-40s %-32s %s\n", c["id"].get<std::string>().c_str(),
                    c["pid"].get<int>(), c["status"].get<std::string>().c_str(),
                    c["bundle"].get<std::string>().c_str(), c["created"].get<std::string>().c_str(),
                    c["owner"].get<std::string>().c_str());
    }
    g.exit_code = 0;
  });
});

}  // namespace
}  // namespace cidrun::cli
