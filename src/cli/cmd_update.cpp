// `cidrun update [--resources FILE|-] [--memory N] ... ID` (runc update): changes the cgroup
// limits of a created or running container. containerd's shim calls `update --resources -` with
// linux.resources (the runtime spec's JSON) on stdin; the flags set single fields, in bytes,
// shares, microseconds or counts as runc's do, and win over the same field in --resources.
#include <unistd.h>

#include <cstdint>
#include <iostream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cli/command.h"
#include "runtime/container.h"
#include "util/error.h"
#include "util/fd.h"

namespace cidrun::cli {
namespace {

using nlohmann::json;

// One limit flag: its value, and whether it was given (CLI11 fills `value` only then).
struct Limit {
  const char* group;  // linux.resources member
  const char* field;
  int64_t value = 0;
  Option option;
};

struct UpdateFlags {
  std::string id;
  std::string resources_file;
  std::vector<Limit> limits;
  std::string cpuset_cpus, cpuset_mems;
  Option cpus_option, mems_option;
};

json read_resources(const std::string& file) {
  std::string text;
  if (file == "-") {
    text.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
  } else {
    Bytes b = read_file(file);
    text.assign(b.begin(), b.end());
  }
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) throw Error("update: --resources " + file + " is not valid JSON");
  if (!j.is_object()) throw Error("update: --resources " + file + " must hold a JSON object");
  return j;
}

json resources_of(const UpdateFlags& f) {
  json r = f.resources_file.empty() ? json::object() : read_resources(f.resources_file);
  for (const Limit& l : f.limits)
    if (l.option.count() > 0) r[l.group][l.field] = l.value;
  if (f.cpus_option.count() > 0) r["cpu"]["cpus"] = f.cpuset_cpus;
  if (f.mems_option.count() > 0) r["cpu"]["mems"] = f.cpuset_mems;
  if (r.empty()) throw Error("update: nothing to change (give --resources or a limit flag)");
  return r;
}

const Registrar reg("update", [](Command& app, Globals& g) {
  auto f = std::make_shared<UpdateFlags>();
  auto sub = app.add_subcommand("update", "Change the cgroup limits of a container (runc update)");
  sub.add_option("-r,--resources", f->resources_file,
                 "linux.resources as JSON from this file, or - for stdin");
  // runc's flags, each one field of linux.resources. The list is built whole before any option
  // keeps a reference into it.
  struct FlagSpec {
    const char* names;
    const char* group;
    const char* field;
    const char* help;
  };
  static constexpr FlagSpec kFlags[] = {
      {"--memory", "memory", "limit", "Memory limit in bytes (-1: none)"},
      {"--memory-reservation", "memory", "reservation", "Memory soft limit in bytes"},
      {"--memory-swap", "memory", "swap", "Memory plus swap limit in bytes (-1: none)"},
      {"--pids-limit", "pids", "limit", "Maximum number of processes (-1: none)"},
      {"--cpu-share", "cpu", "shares", "CPU shares (relative weight)"},
      {"--cpu-period", "cpu", "period", "CPU CFS period in microseconds"},
      {"--cpu-quota", "cpu", "quota", "CPU CFS quota in microseconds per period (-1: none)"},
      {"--blkio-weight", "blockIO", "weight", "Block IO weight (10-1000)"},
  };
  for (const FlagSpec& spec : kFlags) f->limits.push_back(Limit{spec.group, spec.field, 0, {}});
  for (size_t i = 0; i < std::size(kFlags); ++i)
    f->limits[i].option = sub.add_option(kFlags[i].names, f->limits[i].value, kFlags[i].help);
  f->cpus_option =
      sub.add_option("--cpuset-cpus", f->cpuset_cpus, "CPUs the container may use (0-3,5)");
  f->mems_option = sub.add_option("--cpuset-mems", f->cpuset_mems, "Memory nodes it may use");
  sub.add_option("id", f->id, "Container id").required();
  sub.callback([f, &g] {
    runtime::update_container(g.state_root, f->id, resources_of(*f));
    g.exit_code = 0;
  });
});

}  // namespace
}  // namespace cidrun::cli
