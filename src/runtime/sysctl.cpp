#include "runtime/sysctl.h"

#include <fcntl.h>
#include <unistd.h>

#include <vector>

#include "util/error.h"
#include "util/fd.h"

namespace cidrun::runtime {
namespace {

bool starts_with(const std::string& s, const std::string& prefix) {
  return s.compare(0, prefix.size(), prefix) == 0;
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> parts;
  size_t start = 0;
  for (;;) {
    size_t pos = s.find(sep, start);
    parts.push_back(s.substr(start, pos - start));
    if (pos == std::string::npos) return parts;
    start = pos + 1;
  }
}

// The key in dotted form, which the namespace rules are written in.
std::string dotted(const std::string& key) {
  std::string out = sysctl_key_to_path(key);
  for (char& c : out) {
    if (c == '/') c = '.';
  }
  return out;
}

void check_allowed(const std::string& key, const SysctlNamespaces& ns) {
  const std::string k = dotted(key);
  if (starts_with(k, "kernel.msg") || starts_with(k, "kernel.sem") ||
      starts_with(k, "kernel.shm") || starts_with(k, "fs.mqueue.")) {
    if (!ns.ipc) throw Error("sysctl: " + key + " needs a private IPC namespace");
    return;
  }
  if (starts_with(k, "net.")) {
    if (!ns.net) throw Error("sysctl: " + key + " needs a private network namespace");
    return;
  }
  if (k == "kernel.hostname" || k == "kernel.domainname") {
    if (!ns.uts) throw Error("sysctl: " + key + " needs a private UTS namespace");
    return;
  }
  throw Error("sysctl: " + key + " is not namespaced and would change the host; refused");
}

}  // namespace

std::string sysctl_key_to_path(const std::string& key) {
  // sysctl(8)'s rule: a key holding a slash is already a path, so dots inside it (a VLAN
  // interface "eth0.100") are part of a name.
  const char sep = key.find('/') != std::string::npos ? '/' : '.';
  std::string path;
  for (const auto& part : split(key, sep)) {
    if (part.empty() || part == "." || part == "..") {
      throw Error("sysctl: invalid key \"" + key + "\"");
    }
    path += (path.empty() ? "" : "/") + part;
  }
  return path;
}

void validate_sysctl(const nlohmann::json& linux_sysctl, const SysctlNamespaces& ns) {
  if (linux_sysctl.is_null()) return;
  if (!linux_sysctl.is_object()) throw Error("sysctl: linux.sysctl must be an object");
  for (const auto& [key, value] : linux_sysctl.items()) {
    if (!value.is_string()) throw Error("sysctl: value of " + key + " must be a string");
    check_allowed(key, ns);
  }
}

void apply_sysctl(const nlohmann::json& linux_sysctl, const SysctlNamespaces& ns,
                  const std::string& proc_sys) {
  validate_sysctl(linux_sysctl, ns);
  if (linux_sysctl.is_null()) return;
  for (const auto& [key, value] : linux_sysctl.items()) {
    const std::string path = proc_sys + "/" + sysctl_key_to_path(key);
    // O_NOFOLLOW: /proc/sys has no symlinks, so one there is not ours to follow.
    UniqueFd fd(open(path.c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC | O_NOFOLLOW));
    if (!fd.valid()) throw_errno("sysctl: open " + path);
    const std::string v = value.get<std::string>();
    // One write(2): /proc/sys parses the whole value from a single write.
    ssize_t n = write(fd.get(), v.data(), v.size());
    if (n < 0) {
      std::string what = "sysctl: write ";
      what.append(key).append("=").append(v);
      throw_errno(what);
    }
    if (static_cast<size_t>(n) != v.size()) throw Error("sysctl: short write to " + path);
  }
}

}  // namespace cidrun::runtime
