// OCI hooks: each one a program run with the container's state JSON on its stdin, with an
// optional timeout. A failing prestart/createRuntime/createContainer/startContainer hook aborts
// the start; poststart and poststop failures are only logged (the spec's rule).
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "runtime/spec.h"

namespace cidrun::runtime {

// Runs every hook in order; throws Error naming the hook and phase on the first failure.
void run_hooks(const std::vector<HookSpec>& hooks, const nlohmann::json& state,
               const std::string& phase);
// Same, but logs failures as warnings and carries on.
void run_hooks_warn(const std::vector<HookSpec>& hooks, const nlohmann::json& state,
                    const std::string& phase);

}  // namespace cidrun::runtime
