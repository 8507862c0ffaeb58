// Namespaced kernel parameters from the OCI spec (linux.sysctl).
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace cidrun::runtime {

// Which namespaces the container has of its own (not shared with the host). A sysctl is only
// allowed when it lives in a namespace the container owns, so it cannot change the host (runc's
// rule): kernel.msg*, kernel.sem*, kernel.shm*, fs.mqueue.* need the IPC namespace, net.* the
// network namespace, kernel.hostname and kernel.domainname the UTS namespace.
struct SysctlNamespaces {
  bool ipc = true;
  bool net = false;
  bool uts = true;
};

// Checks every key and value of linux.sysctl (an object of strings) without writing anything, so
// the caller can refuse a config before starting the container. Keys use dots or slashes
// ("net.ipv4.ip_forward", "net/ipv4/conf/eth0.100/forwarding"); "." and ".." components are
// refused.
void validate_sysctl(const nlohmann::json& linux_sysctl, const SysctlNamespaces& ns);

// Validates, then writes each value to <proc_sys>/<key as a path>. Runs inside the container's
// namespaces, before /proc/sys is made read-only.
void apply_sysctl(const nlohmann::json& linux_sysctl, const SysctlNamespaces& ns,
                  const std::string& proc_sys = "/proc/sys");

// Convenience form: private IPC and UTS namespaces assumed, network per `private_netns`.
inline void apply_sysctl(const nlohmann::json& linux_sysctl, bool private_netns) {
  apply_sysctl(linux_sysctl, SysctlNamespaces{true, private_netns, true});
}

// The path below /proc/sys for a key ("net.ipv4.ip_forward" -> "net/ipv4/ip_forward").
std::string sysctl_key_to_path(const std::string& key);

}  // namespace cidrun::runtime
