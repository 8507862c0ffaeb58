// Container state under the state root (runc's --root, default /run/cidrun): one directory per
// container holding state.json (what the runtime needs to find the container again), config.json
// (the spec it was created with) and, until `start`, the exec fifo the init waits on.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "util/fd.h"
#include "util/proc.h"  // process_start_time, which tells our pid from a reused one

namespace cidrun::runtime {

struct ContainerState {
  std::string id;
  pid_t pid = 0;
  uint64_t pid_start_time = 0;  // /proc/PID/stat field 22: tells a reused pid from ours
  std::string bundle;
  std::string rootfs;
  std::string created;  // RFC 3339
  std::string owner;
  nlohmann::json annotations = nlohmann::json::object();
  nlohmann::json cgroup;  // CgroupManager::save(), or null without cgroups
  bool paused = false;
  std::vector<std::string> remove_on_delete;  // dirs the runtime made for this container
  bool has_own_netns = false;
  // Without a mount namespace of its own: the id of the mount its root was on before the
  // container mounted anything there (rootfs.h detach_shared_root); 0 otherwise.
  uint64_t shared_root_mount_id = 0;

  nlohmann::json to_json() const;
  static ContainerState from_json(const nlohmann::json& j);
};

// Rejects ids that could name a path outside the state root (runc's rule: [\w+-\.]+).
void validate_container_id(const std::string& id);

class StateStore {
 public:
  explicit StateStore(std::string root) : root_(std::move(root)) {}
  const std::string& root() const { return root_; }
  std::string dir(const std::string& id) const { return root_ + "/" + id; }
  std::string fifo_path(const std::string& id) const { return dir(id) + "/exec.fifo"; }
  bool exists(const std::string& id) const;
  // Creates the container's directory; fails if the id is taken. Returns the directory open and
  // locked (flock) for as long as the creation runs: the kernel drops the lock when the process
  // dies, so a directory without state.json whose lock is free was abandoned by a create that
  // was killed before it saved anything. create_dir reuses such a name.
  UniqueFd create_dir(const std::string& id) const;
  // Removes the directory of id if it was abandoned that way (delete --force uses it); false when
  // there is none or a create still holds it.
  bool remove_if_abandoned(const std::string& id) const;
  ContainerState load(const std::string& id) const;  // Error "container X does not exist"
  void save(const ContainerState& st) const;
  void save_config(const std::string& id, const nlohmann::json& config) const;
  nlohmann::json load_config(const std::string& id) const;
  std::vector<std::string> list() const;
  void remove(const std::string& id) const;

 private:
  UniqueFd lock_root() const;  // not valid when the root does not exist
  bool remove_if_abandoned_locked(const std::string& id) const;

  std::string root_;
};

// "created", "running", "paused" or "stopped", from the process and the exec fifo.
std::string container_status(const StateStore& store, const ContainerState& st);

// The OCI state JSON (ociVersion, id, status, pid, bundle, annotations; runc adds rootfs,
// created, owner).
nlohmann::json oci_state(const ContainerState& st, const std::string& status);

std::string rfc3339_now();

}  // namespace cidrun::runtime
