// `cidrun features`: what this runtime implements, in runc's `features` JSON.
#include <iostream>

#include "cli/command.h"
#include "runtime/capabilities.h"
#include "runtime/seccomp.h"

namespace cidrun::cli {
namespace {

const Registrar reg("features", [](Command& app, Globals& g) {
  auto sub = app.add_subcommand("features", "Show the enabled features (runc features)");
  sub.callback([&g] {
    nlohmann::json f = {
        {"ociVersionMin", "1.0.0"},
        {"ociVersionMax", "1.1.0"},
        {"hooks",
         {"prestart", "createRuntime", "createContainer", "startContainer", "poststart",
          "poststop"}},
        {"mountOptions", {"async",         "atime",      "bind",      "defaults", "dev",
                          "diratime",      "dirsync",    "exec",      "mand",     "noatime",
                          "nodev",         "nodiratime", "noexec",    "nomand",   "norelatime",
                          "nostrictatime", "nosuid",     "private",   "rbind",    "relatime",
                          "remount",       "ro",         "rprivate",  "rshared",  "rslave",
                          "runbindable",   "rw",         "shared",    "slave",    "strictatime",
                          "suid",          "sync",       "unbindable"}},
        {"linux",
         {{"namespaces", {"cgroup", "ipc", "mount", "network", "pid", "user", "uts"}},
          {"capabilities", runtime::all_capability_names()},
          {"cgroup", {{"v1", true}, {"v2", true}, {"systemd", false}, {"systemdUser", false}}},
          {"seccomp",
           {{"enabled", true},
            {"actions", runtime::seccomp_action_names()},
            {"operators", runtime::seccomp_operator_names()},
            {"archs", runtime::seccomp_arch_names()},
            {"knownFlags", runtime::seccomp_flag_names()},
            {"supportedFlags", runtime::seccomp_flag_names()}}},
          {"apparmor", {{"enabled", false}}},
          {"selinux", {{"enabled", false}}},
          {"intelRdt", {{"enabled", false}}},
          {"mountExtensions", {{"idmap", {{"enabled", false}}}}}}},
        {"annotations", {{"io.github.cidrun.version", CIDRUN_VERSION}}},
    };
    std::cout << f.dump(4) << "\n";
    g.exit_code = 0;
  });
});

}  // namespace
}  // namespace cidrun::cli
