// The default config.json, as `runc spec` (and nsinit config before it) prints it.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace cidrun::runtime {

struct DefaultSpecOptions {
  bool rootless = false;  // user namespace mapping the caller's uid/gid to root
  bool terminal = false;
  std::vector<std::string> args;  // empty: ["sh"]
  uid_t host_uid = 0;             // for rootless mappings (the caller's ids)
  gid_t host_gid = 0;
};

nlohmann::json default_spec(const DefaultSpecOptions& opts);

}  // namespace cidrun::runtime
