// `run IMAGE` runs the image's OCI config the way podman does: Entrypoint + Cmd (a command given
// on the command line replaces Cmd; --entrypoint replaces Entrypoint and drops Cmd), Env under
// the run's -e, WorkingDir and User unless -w / -u say otherwise.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "runtime/run_options.h"

namespace cidrun::cli {

// spec is the default config.json of the run (its process is changed); image_config the image's
// OCI config; o the run's overrides, whose args/workdir/user are filled from the image where the
// command line left them empty. Throws Error when neither the image nor the command line gives
// a program to run.
void apply_image_config(nlohmann::json& spec, const nlohmann::json& image_config,
                        runtime::RunOverrides& o,
                        const std::optional<std::vector<std::string>>& entrypoint);

}  // namespace cidrun::cli
