// What `cidrun run`'s options change in a config.json (docker/podman-style flags onto the OCI
// spec), kept out of the CLI so it can be unit-tested.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace cidrun::runtime {

// The process flags `run` and `exec` share, applied to an OCI process object.
struct ProcessOverrides {
  std::vector<std::string> args;  // empty: keep the config's
  bool tty = false;
  std::vector<std::string> env;  // NAME=VALUE (replaces) or NAME (taken from our environment)
  std::string workdir;
  std::string user;                       // name|uid[:group|gid] (user_lookup.h)
  std::vector<uint32_t> additional_gids;  // added to the user's
};

// user_root is the container's root directory, where names in o.user are looked up; "" allows
// numeric ids only.
void apply_process_overrides(nlohmann::json& process, const ProcessOverrides& o,
                             const std::string& user_root);

struct RunOverrides : ProcessOverrides {
  std::string hostname;
  bool read_only = false;
  std::string network;              // "", "none" (own namespace) or "host"
  std::vector<std::string> mounts;  // type=bind,src=...,dst=...[,ro]
  std::string memory;               // 64m, 1g, bytes
  int64_t pids_limit = 0;
  std::string cpus;     // "0.5"
  std::string seccomp;  // "" (config's or the default), "unconfined", or a file
  // podman's --cap-add / --cap-drop: names with or without CAP_, any case, or ALL; applied to
  // the bounding, effective and permitted sets (drops first, then adds).
  std::vector<std::string> cap_add;
  std::vector<std::string> cap_drop;
};

// The capabilities podman gives a container by default (containers.conf), which `run` of an
// image uses: images expect to run as root with these (apt-get needs CHOWN, SETUID, SETGID...).
nlohmann::json podman_default_capabilities();

// Names in o.user are looked up under the config's root.path.
void apply_run_overrides(nlohmann::json& config, const RunOverrides& o);

// "64m" -> 67108864 (k, m, g, t with 1024 steps; optional trailing b). Throws on bad input.
int64_t parse_size(const std::string& s);
// "type=bind,src=/a,dst=/b,ro" -> an OCI mount object.
nlohmann::json parse_mount_flag(const std::string& s);

}  // namespace cidrun::runtime
