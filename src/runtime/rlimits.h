// Resource limits from the OCI spec (process.rlimits).
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace cidrun::runtime {

// Sets each {"type": "RLIMIT_NOFILE", "hard": N, "soft": N} on the calling process (the limits
// are inherited across execve). All entries are validated first: an unknown type, a missing or
// non-integer hard/soft, soft > hard or a type given twice is an error and nothing is changed.
// Raising a hard limit above the current one needs CAP_SYS_RESOURCE; without it the error says so.
void apply_rlimits(const nlohmann::json& process_rlimits);

// RLIMIT_* number for a name like "RLIMIT_NOFILE", or -1.
int rlimit_from_name(const std::string& name);

}  // namespace cidrun::runtime
