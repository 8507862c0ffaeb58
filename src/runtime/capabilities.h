// Process capabilities from the OCI spec (process.capabilities): the bounding set, the effective,
// permitted and inheritable sets, and ambient capabilities.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace cidrun::runtime {

// Applies all five sets to the calling process: drops from the bounding set every capability not
// listed in "bounding", sets effective/permitted/inheritable with capset, then clears the ambient
// set and raises the listed ambient capabilities. A missing set means an empty set (as in runc).
// Names this kernel does not know (a capability newer than it) are skipped with a debug log, as
// runc does (parse_spec has refused names no kernel knows, such as "CAP_FOO"); a capability this
// process does not hold itself (root here lacks CAP_SYS_RESOURCE) is left out with a warning since
// it cannot be granted, and so is an ambient capability the kernel refuses to raise (missing from
// permitted or inheritable), as runc does. A field that is not an array of strings is an error.
//
// Needs CAP_SETPCAP in the effective set (bounding drop). To run as a non-root user, call
// prctl(PR_SET_KEEPCAPS, 1) before setuid and this after it (capset needs no privilege then).
void apply_capabilities(const nlohmann::json& process_capabilities);

// The two steps of apply_capabilities, for a caller that must switch user in between.
void apply_bounding_set(const nlohmann::json& process_capabilities);
void apply_process_capability_sets(const nlohmann::json& process_capabilities);

// What `runc spec` writes: CAP_AUDIT_WRITE, CAP_KILL, CAP_NET_BIND_SERVICE in the bounding,
// effective and permitted sets (no inheritable/ambient, since runc 1.1.2's CVE-2022-29162 fix).
nlohmann::json default_capabilities();

// Every capability name known to this build, "CAP_CHOWN".."CAP_CHECKPOINT_RESTORE" (for
// `features`).
std::vector<std::string> all_capability_names();

// Capability number for "CAP_SYS_ADMIN" (case-insensitive, "CAP_" prefix required), or -1.
int capability_from_name(const std::string& name);

}  // namespace cidrun::runtime
