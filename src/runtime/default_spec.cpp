#include "runtime/default_spec.h"

#include "runtime/capabilities.h"

namespace cidrun::runtime {

using nlohmann::json;

json default_spec(const DefaultSpecOptions& opts) {
  json caps = default_capabilities();
  json process = {
      {"terminal", opts.terminal},
      {"user", {{"uid", 0}, {"gid", 0}}},
      {"args", opts.args.empty() ? std::vector<std::string>{"sh"} : opts.args},
      {"env", {"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"}},
      {"cwd", "/"},
      {"capabilities", caps},
      {"rlimits", {{{"type", "RLIMIT_NOFILE"}, {"hard", 1024}, {"soft", 1024}}}},
      {"noNewPrivileges", true},
  };
  json mounts = json::array({
      {{"destination", "/proc"}, {"type", "proc"}, {"source", "proc"}},
      {{"destination", "/dev"},
       {"type", "tmpfs"},
       {"source", "tmpfs"},
       {"options", {"nosuid", "strictatime", "mode=755", "size=65536k"}}},
      {{"destination", "/dev/pts"},
       {"type", "devpts"},
       {"source", "devpts"},
       {"options",
        opts.rootless
            ? json{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"}
            : json{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}}},
      {{"destination", "/dev/shm"},
       {"type", "tmpfs"},
       {"source", "shm"},
       {"options", {"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}}},
      {{"destination", "/dev/mqueue"},
       {"type", "mqueue"},
       {"source", "mqueue"},
       {"options", {"nosuid", "noexec", "nodev"}}},
  });
  if (opts.rootless) {
    // sysfs cannot be mounted without owning the network namespace's user namespace: bind it.
    mounts.push_back({{"destination", "/sys"},
                      {"type", "none"},
                      {"source", "/sys"},
                      {"options", {"rbind", "nosuid", "noexec", "nodev", "ro"}}});
  } else {
    mounts.push_back({{"destination", "/sys"},
                      {"type", "sysfs"},
                      {"source", "sysfs"},
                      {"options", {"nosuid", "noexec", "nodev", "ro"}}});
    mounts.push_back({{"destination", "/sys/fs/cgroup"},
                      {"type", "cgroup"},
                      {"source", "cgroup"},
                      {"options", {"nosuid", "noexec", "nodev", "relatime", "ro"}}});
  }
  json namespaces = json::array();
  for (const char* t : {"pid", "network", "ipc", "uts", "mount", "cgroup"})
    namespaces.push_back({{"type", t}});
  json linux_ = {
      {"namespaces", namespaces},
      {"maskedPaths",
       {"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
        "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware",
        "/proc/scsi"}},
      {"readonlyPaths", {"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"}},
  };
  if (opts.rootless) {
    linux_["namespaces"] = json::array();
    for (const char* t : {"pid", "ipc", "uts", "mount", "user"})
      linux_["namespaces"].push_back({{"type", t}});
    linux_["uidMappings"] = {{{"containerID", 0}, {"hostID", opts.host_uid}, {"size", 1}}};
    linux_["gidMappings"] = {{{"containerID", 0}, {"hostID", opts.host_gid}, {"size", 1}}};
  } else {
    linux_["resources"] = {{"devices", {{{"allow", false}, {"access", "rwm"}}}}};
  }
  return {
      {"ociVersion", "1.1.0"},
      {"process", process},
      {"root", {{"path", "rootfs"}, {"readonly", true}}},
      {"hostname", "cidrun"},
      {"mounts", mounts},
      {"linux", linux_},
  };
}

}  // namespace cidrun::runtime
