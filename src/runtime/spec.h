// The OCI runtime spec (config.json) as the runtime uses it: parsed once, validated with one-line
// errors that name the offending field, and kept beside the raw JSON so that the modules that take
// JSON fragments (cgroups, seccomp, capabilities, rlimits, sysctl) get exactly what the user wrote.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace cidrun::runtime {

struct MountSpec {
  std::string destination;
  std::string type;
  std::string source;
  std::vector<std::string> options;
};

struct NamespaceSpec {
  std::string type;  // pid network mount ipc uts user cgroup time
  std::string path;  // empty: create a new one; else join this one
};

struct IdMapping {
  uint32_t container_id = 0;
  uint32_t host_id = 0;
  uint32_t size = 0;
};

struct DeviceSpec {
  std::string path;
  char type = 'c';  // c, b, u (= c), p
  int64_t major = 0;
  int64_t minor = 0;
  uint32_t file_mode = 0666;
  uint32_t uid = 0;
  uint32_t gid = 0;
};

struct HookSpec {
  std::string path;
  std::vector<std::string> args;
  std::vector<std::string> env;
  int timeout = 0;  // seconds; 0 = none
};

struct Hooks {
  std::vector<HookSpec> prestart, create_runtime, create_container, start_container, poststart,
      poststop;
};

struct ProcessSpec {
  bool terminal = false;
  unsigned console_rows = 0, console_cols = 0;
  uint32_t uid = 0, gid = 0;
  std::optional<uint32_t> umask;
  std::vector<uint32_t> additional_gids;
  std::vector<std::string> args;
  std::vector<std::string> env;
  std::string cwd = "/";
  bool no_new_privileges = false;
  std::optional<int> oom_score_adj;
  nlohmann::json capabilities;  // null when absent: no capabilities are changed... see process.cpp
  nlohmann::json rlimits;       // array or null
};

struct Spec {
  nlohmann::json raw;
  std::string oci_version;
  std::string root_path;  // absolute once loaded from a bundle
  bool root_readonly = false;
  std::string hostname, domainname;
  std::vector<MountSpec> mounts;
  ProcessSpec process;
  std::vector<NamespaceSpec> namespaces;
  std::vector<IdMapping> uid_mappings, gid_mappings;
  std::vector<DeviceSpec> devices;
  std::vector<std::string> masked_paths, readonly_paths;
  std::string rootfs_propagation;
  std::string cgroups_path;
  nlohmann::json resources;  // linux.resources or null
  nlohmann::json seccomp;    // linux.seccomp or null
  nlohmann::json sysctl;     // linux.sysctl or null
  nlohmann::json annotations = nlohmann::json::object();
  Hooks hooks;

  const NamespaceSpec* find_namespace(const std::string& type) const;
  bool has_namespace(const std::string& type) const { return find_namespace(type) != nullptr; }
};

// Reads text as JSON: bad JSON, or JSON nested deeper than kMaxJsonNesting (util/json_depth.h),
// is a one-line Error that starts with `where`.
nlohmann::json parse_json(const std::string& text, const std::string& where);

// Parses and validates. `where` prefixes every error ("config.json: process.args: required").
Spec parse_spec(const nlohmann::json& config, const std::string& where = "config.json");
// Reads text as JSON first (bad JSON is its own clear error), then parse_spec.
Spec parse_spec_text(const std::string& text, const std::string& where = "config.json");
// Loads BUNDLE/config.json and makes root.path absolute against the bundle directory.
Spec load_bundle_spec(const std::string& bundle_dir);

// The `process` object alone (runc exec --process FILE).
ProcessSpec parse_process(const nlohmann::json& process, const std::string& where,
                          bool args_required = true);

}  // namespace cidrun::runtime
