// What `cidrun run`'s options change in a config.json (docker/podman-style flags onto the OCI
// spec), kept out of the CLI so it can be unit-tested.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace cidrun::runtime {

struct RunOverrides {
  std::vector<std::string> args;  // empty: keep the config's
  bool tty = false;
  std::vector<std::string> env;  // NAME=VALUE (replaces) or NAME (taken from our environment)
  std::string hostname;
  std::string workdir;
  std::string user;  // uid[:gid]
  bool read_only = false;
  std::string network;              // "", "none" (own namespace) or "host"
  std::vector<std::string> mounts;  // type=bind,src=...,dst=...[,ro]
  std::string memory;               // 64m, 1g, bytes
  int64_t pids_limit = 0;
  std::string cpus;     // "0.5"
  std::string seccomp;  // "" (config's or the default), "unconfined", or a file
};

void apply_run_overrides(nlohmann::json& config, const RunOverrides& o);

// "64m" -> 67108864 (k, m, g, t with 1024 steps; optional trailing b). Throws on bad input.
int64_t parse_size(const std::string& s);
// "type=bind,src=/a,dst=/b,ro" -> an OCI mount object.
nlohmann::json parse_mount_flag(const std::string& s);
// "1000" or "1000:1000" -> uid, gid (gid defaults to uid).
std::pair<uint32_t, uint32_t> parse_user(const std::string& s);

}  // namespace cidrun::runtime
