#include "runtime/capabilities.h"

#include <sys/capability.h>
#include <sys/prctl.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <set>

#include "util/error.h"
#include "util/log.h"

namespace cidrun::runtime {
namespace {

// Indexed by capability number (linux/capability.h). Kept here rather than taken from libcap's
// cap_to_name so that `features` lists the same names whatever libcap version is installed.
constexpr std::array<const char*, 41> kCapabilityNames = {
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
};

// The highest capability the running kernel knows; a newer name in a config must be skipped,
// not passed to prctl (which would fail with EINVAL).
int kernel_last_cap() {
  static const int last = [] {
    int n = static_cast<int>(kCapabilityNames.size()) - 1;
    while (n > 0 && prctl(PR_CAPBSET_READ, n, 0, 0, 0) < 0) --n;
    return n;
  }();
  return last;
}

// Reads one set ("bounding", ...) of process.capabilities into capability numbers.
std::set<int> parse_set(const nlohmann::json& caps, const char* set_name) {
  std::set<int> out;
  if (caps.is_null()) return out;
  if (!caps.is_object()) throw Error("capabilities: process.capabilities must be an object");
  auto it = caps.find(set_name);
  if (it == caps.end() || it->is_null()) return out;
  if (!it->is_array()) {
    throw Error(std::string("capabilities: ") + set_name + " must be an array of strings");
  }
  for (const auto& item : *it) {
    if (!item.is_string()) {
      throw Error(std::string("capabilities: ") + set_name + " holds a non-string entry " +
                  item.dump());
    }
    const std::string name = item.get<std::string>();
    int cap = capability_from_name(name);
    if (cap < 0 || cap > kernel_last_cap()) {
      log::debug("capabilities: skipping unknown capability " + name + " in " + set_name);
      continue;
    }
    out.insert(cap);
  }
  return out;
}

}  // namespace

int capability_from_name(const std::string& name) {
  std::string upper = name;
  std::transform(upper.begin(), upper.end(), upper.begin(),
                 [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  for (size_t i = 0; i < kCapabilityNames.size(); ++i) {
    if (upper == kCapabilityNames[i]) return static_cast<int>(i);
  }
  return -1;
}

std::vector<std::string> all_capability_names() {
  return {kCapabilityNames.begin(), kCapabilityNames.end()};
}

nlohmann::json default_capabilities() {
  const nlohmann::json set = {"CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"};
  return {{"bounding", set}, {"effective", set}, {"permitted", set}};
}

void apply_bounding_set(const nlohmann::json& process_capabilities) {
  const std::set<int> keep = parse_set(process_capabilities, "bounding");
  for (int cap = 0; cap <= kernel_last_cap(); ++cap) {
    if (keep.count(cap)) continue;
    // One call per capability when we hold CAP_SETPCAP (the usual case); without it, dropping
    // fails even for one already dropped, which is then no error.
    if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) == 0) continue;
    int err = errno;
    if (err == EPERM && prctl(PR_CAPBSET_READ, cap, 0, 0, 0) == 0) continue;
    throw_errno(std::string("capabilities: drop ") + kCapabilityNames[cap] + " from bounding set",
                err);
  }
}

void apply_process_capability_sets(const nlohmann::json& process_capabilities) {
  std::set<int> effective = parse_set(process_capabilities, "effective");
  std::set<int> permitted = parse_set(process_capabilities, "permitted");
  std::set<int> inheritable = parse_set(process_capabilities, "inheritable");
  const std::set<int> ambient = parse_set(process_capabilities, "ambient");

  cap_t current = cap_get_proc();
  if (!current) throw_errno("capabilities: cap_get_proc");
  // A capability this process lacks in its permitted set can never be granted by capset; asking
  // for it would fail the whole container, so it is left out with a warning instead.
  std::vector<std::string> unavailable;
  auto has = [&](int cap, cap_flag_t flag) {
    cap_flag_value_t v = CAP_CLEAR;
    cap_get_flag(current, static_cast<cap_value_t>(cap), flag, &v);
    return v == CAP_SET;
  };
  auto held = [&](int cap) { return has(cap, CAP_PERMITTED); };
  // capset's rule for the inheritable set: each capability must be inheritable already, or in
  // the bounding set and, unless we hold CAP_SETPCAP, in our permitted set.
  const bool setpcap = has(CAP_SETPCAP, CAP_EFFECTIVE);
  auto inheritable_ok = [&](int cap) {
    return has(cap, CAP_INHERITABLE) ||
           (prctl(PR_CAPBSET_READ, cap, 0, 0, 0) == 1 && (setpcap || has(cap, CAP_PERMITTED)));
  };
  auto drop_unavailable = [&](std::set<int>& set, const auto& available) {
    for (auto it = set.begin(); it != set.end();) {
      if (available(*it)) {
        ++it;
        continue;
      }
      unavailable.emplace_back(kCapabilityNames[*it]);
      it = set.erase(it);
    }
  };
  drop_unavailable(effective, held);
  drop_unavailable(permitted, held);
  drop_unavailable(inheritable, inheritable_ok);
  cap_free(current);
  if (!unavailable.empty()) {
    std::sort(unavailable.begin(), unavailable.end());
    unavailable.erase(std::unique(unavailable.begin(), unavailable.end()), unavailable.end());
    std::string list;
    for (const auto& n : unavailable) list += (list.empty() ? "" : ", ") + n;
    log::warn("capabilities: not held by the runtime, left out: " + list);
  }

  cap_t wanted = cap_init();
  if (!wanted) throw_errno("capabilities: cap_init");
  auto set_flags = [&](const std::set<int>& set, cap_flag_t flag) {
    std::vector<cap_value_t> values(set.begin(), set.end());
    if (!values.empty() &&
        cap_set_flag(wanted, flag, static_cast<int>(values.size()), values.data(), CAP_SET) < 0) {
      cap_free(wanted);
      throw_errno("capabilities: cap_set_flag");
    }
  };
  set_flags(effective, CAP_EFFECTIVE);
  set_flags(permitted, CAP_PERMITTED);
  set_flags(inheritable, CAP_INHERITABLE);
  if (cap_set_proc(wanted) < 0) {
    int err = errno;
    cap_free(wanted);
    throw_errno("capabilities: capset (effective must be a subset of permitted)", err);
  }
  cap_free(wanted);

  if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0) {
    // Kernels before 4.3 have no ambient set; only an error if the config asks for one.
    if (errno != EINVAL || !ambient.empty()) throw_errno("capabilities: clear ambient set");
  }
  for (int cap : ambient) {
    // The kernel raises only what is both permitted and inheritable. `crun spec` writes ambient
    // capabilities with an empty inheritable set; runc runs such a config with a warning, and so
    // does a runc-compatible runtime.
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0) < 0) {
      log::warn(std::string("capabilities: cannot raise ambient ") + kCapabilityNames[cap] + ": " +
                std::strerror(errno) + " (it must be in both permitted and inheritable)");
    }
  }
}

void apply_capabilities(const nlohmann::json& process_capabilities) {
  // Validate every set before changing anything, so a malformed config leaves the process as is.
  for (const char* set : {"bounding", "effective", "permitted", "inheritable", "ambient"}) {
    parse_set(process_capabilities, set);
  }
  apply_bounding_set(process_capabilities);
  apply_process_capability_sets(process_capabilities);
}

}  // namespace cidrun::runtime
