// Seccomp filters from the OCI spec (linux.seccomp), compiled with libseccomp.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace cidrun::runtime {

// Compiles linux.seccomp and loads it into the calling process. Null means no filter.
// Supports defaultAction/defaultErrnoRet, architectures, flags (SECCOMP_FILTER_FLAG_TSYNC, _LOG,
// _SPEC_ALLOW) and syscalls[] with names, action, errnoRet and args (index, value, valueTwo, op).
// Syscall names libseccomp does not know are skipped, as runc does; anything malformed (unknown
// action, op, flag or architecture, wrong types, index > 5) is an error naming the field.
// SCMP_ACT_NOTIFY needs a seccomp agent, which cidrun does not have yet: a clear error.
//
// The filter does not set no_new_privs itself (the config's process.noNewPrivileges decides), so
// without no_new_privs it must be loaded while the process still has CAP_SYS_ADMIN; with it, load
// it as late as possible, just before execve, so the runtime's own syscalls are not filtered.
void load_seccomp(const nlohmann::json& linux_seccomp);

// Compiles the profile without loading it, so a bad profile fails before the container starts.
void validate_seccomp(const nlohmann::json& linux_seccomp);

// The BPF program the profile compiles to (libseccomp's seccomp_export_bpf), for tests and
// debugging.
std::string export_seccomp_bpf(const nlohmann::json& linux_seccomp);

// A default profile in the spirit of podman's and Docker's: everything is allowed except the
// syscalls that reach outside the container's namespaces (kernel modules, kexec, keyrings, clock,
// open_by_handle_at, io_uring, ...) which fail with EPERM. Syscalls guarded by a capability
// (mount/unshare/setns and namespace flags of clone need CAP_SYS_ADMIN, reboot CAP_SYS_BOOT, ...)
// are allowed when process_capabilities' bounding set holds that capability. Covers the native
// architecture and its 32-bit compat ones, so those cannot be used to get around the filter.
nlohmann::json default_seccomp_profile(const nlohmann::json& process_capabilities = nullptr);

// For `features`: what this build accepts.
std::vector<std::string> seccomp_action_names();
std::vector<std::string> seccomp_operator_names();
std::vector<std::string> seccomp_arch_names();
std::vector<std::string> seccomp_flag_names();

}  // namespace cidrun::runtime
