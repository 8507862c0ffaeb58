// Control groups for a container: resource limits (linux.resources), freezing, listing and
// killing its processes, with a cgroup v1 and a cgroup v2 backend chosen from what the host
// mounts. A manager is saved into the container's state so that later cidrun processes (state,
// pause, kill, delete) reopen the same cgroup.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "util/fd.h"

namespace cidrun::runtime {

// Where to look for cgroup filesystems. Tests point it at a fake tree; the defaults are the
// host's.
struct CgroupHost {
  std::string root = "/sys/fs/cgroup";
  // Contents of /proc/self/mountinfo and /proc/self/cgroup; empty means read them.
  std::string mountinfo;
  std::string self_cgroup;
};

enum class CgroupVersion { kNone, kV1, kV2 };

// v2 when `root` itself is a cgroup2 mount; v1 when cgroup (v1) hierarchies are mounted below it.
// On a hybrid host (v1 controllers plus a cgroup2 mount at root/unified) this is v1 and the
// unified mount is ignored, like runc does.
CgroupVersion detect_cgroup_version(const CgroupHost& host = {});

// runc's --systemd-cgroup: cgroupsPath is "slice:prefix:name" and the container goes where
// systemd puts that unit: the slice expanded into its parents ("a-b.slice" is
// /a.slice/a-b.slice; an empty slice is system.slice), then "prefix-name.scope" (or the slice
// `name` itself when it ends in .slice). An empty cgroupsPath is system.slice:cidrun:<id>.
// Returns the absolute cgroupfs path; throws Error for any other shape. cidrun writes the
// cgroup itself: it does not ask systemd (over D-Bus) to make a transient unit of it.
std::string systemd_cgroup_path(const std::string& cgroups_path, const std::string& container_id);

class CgroupManager {
 public:
  virtual ~CgroupManager() = default;

  // cgroups_path is linux.cgroupsPath: absolute (below the hierarchy root), relative (below the
  // cgroup cidrun itself runs in), or empty for "/cidrun/<container_id>". `disabled` gives a
  // manager that does nothing (no cgroups at all). Throws if no cgroup filesystem is mounted.
  // For tests only: CIDRUN_TEST_CGROUP2_ROOT=DIR (a cgroup2 mount, e.g. a hybrid host's
  // /sys/fs/cgroup/unified) makes it the v2 backend at DIR whatever the host's version.
  static std::unique_ptr<CgroupManager> create(const std::string& cgroups_path,
                                               const std::string& container_id,
                                               bool disabled = false);
  static std::unique_ptr<CgroupManager> create(const std::string& cgroups_path,
                                               const std::string& container_id,
                                               const CgroupHost& host);
  // Reopens a manager from save()'s JSON, in another process.
  static std::unique_ptr<CgroupManager> open(const nlohmann::json& saved);

  // Creates the cgroup (every hierarchy on v1; controllers enabled in the parents on v2) and
  // moves pid into it. Calling it again for another pid (exec) just adds that pid.
  virtual void apply(pid_t pid) = 0;
  // Creates the cgroup like apply and opens, in each hierarchy, the file through which a
  // single-threaded process moves itself in (v1's "tasks"): a process started afterwards that
  // inherits them calls attach_self before anything else, instead of apply(its pid). Moving pid
  // from another process takes the kernel's cgroup_threadgroup_rwsem for writing, and its first
  // taker after a quiet moment waits for an RCU grace period (5-20 ms measured here); a thread
  // moving itself alone does not take it. Empty when the backend has no such file (v2: moving a
  // single thread there needs a threaded cgroup) or no cgroup is used: apply(pid) then.
  virtual std::vector<UniqueFd> open_self_attach() { return {}; }
  // Creates the cgroup like apply and opens its directory, for clone3(CLONE_INTO_CGROUP): the
  // process is then born inside it and nothing is moved, so no lock waits (v2's cgroup.procs
  // write takes the same cgroup_threadgroup_rwsem; crun clones into the cgroup as well). Not
  // valid where the backend cannot (v1: one process lives in several hierarchies).
  virtual UniqueFd open_clone_target() { return {}; }
  // False for the manager of a container run without cgroups.
  virtual bool enabled() const { return true; }
  // Writes linux.resources: memory, pids, cpu (incl. cpuset cpus/mems), devices, blockIO,
  // hugepageLimits, network (v1) and unified (v2). Null means nothing to set. Fields this backend
  // cannot honour are an error, not silently dropped.
  virtual void set_resources(const nlohmann::json& linux_resources) = 0;
  // Freezes/thaws every process of the cgroup; returns once the kernel reports the new state.
  virtual void freeze() = 0;
  virtual void thaw() = 0;
  // Processes in the cgroup and its sub-cgroups.
  virtual std::vector<pid_t> pids() = 0;
  // Sends sig to every process of the cgroup (frozen meanwhile, so none can fork away).
  virtual void kill_all(int sig) = 0;
  // Removes the cgroup (and sub-cgroups the container made), killing processes still in it.
  // A cgroup already gone is fine.
  virtual void destroy() = 0;
  // The cgroup path, e.g. "/cidrun/abc" (the same under every v1 hierarchy).
  virtual std::string path() const = 0;
  // Usage figures, shaped like runc's `events --stats`: {"memory": {"usage": {"usage", "max",
  // "limit"}}, "pids": {"current", "limit"}, "cpu": {"usage": {"total", "user", "kernel"}}}
  // (ns for cpu). Only what the host provides is present.
  virtual nlohmann::json stats() = 0;
  virtual nlohmann::json save() const = 0;
};

// Moves the calling process, which must have a single thread, into the cgroup whose files
// open_self_attach opened (it writes "0", meaning itself, to each).
void attach_self(const std::vector<int>& fds);

// The backends, exposed for tests and for callers that already know the version.
std::unique_ptr<CgroupManager> make_cgroup_v1(const std::string& cgroups_path,
                                              const CgroupHost& host = {});
std::unique_ptr<CgroupManager> make_cgroup_v2(const std::string& cgroups_path,
                                              const CgroupHost& host = {});

// runc's and crun's mapping of v1 cpu.shares [2, 262144] onto v2 cpu.weight [1, 10000]; 0 = unset.
uint64_t cpu_shares_to_weight(uint64_t shares);

// Helpers shared by the backends.
namespace cgroupfs {
// Resolves linux.cgroupsPath to an absolute cgroup path; own_cgroup is the cgroup cidrun runs
// in (for relative paths). Refuses ".." components so the path cannot leave the hierarchy.
std::string resolve_path(const std::string& cgroups_path, const std::string& container_id,
                         const std::string& own_cgroup);
// Our own cgroup for a v1 controller ("memory") or, with "", the v2 one, from /proc/self/cgroup.
std::string own_cgroup(const std::string& self_cgroup, const std::string& controller);
void write(const std::string& dir, const std::string& file, const std::string& value);
std::string read(const std::string& dir, const std::string& file);
bool exists(const std::string& dir, const std::string& file);
// pids listed in dir/cgroup.procs and in every sub-cgroup's.
std::vector<pid_t> procs_recursive(const std::string& dir);
// rmdir dir and its sub-cgroups, retrying while processes exit; kill_leftovers is called
// between attempts when the cgroup is still busy.
void remove_tree(const std::string& dir, const std::function<void()>& kill_leftovers);
// linux.resources numbers: absent and null are std::nullopt.
std::optional<int64_t> get_i64(const nlohmann::json& obj, const char* key);
std::optional<uint64_t> get_u64(const nlohmann::json& obj, const char* key);
std::string get_str(const nlohmann::json& obj, const char* key);
// A hugepageLimits entry's pageSize ("2MB", "1GB", "64KB"), checked before it names a file.
std::string hugepage_size(const nlohmann::json& entry);
std::string read_host_file(const std::string& path);
// The backends' halves of CgroupManager::open.
std::unique_ptr<CgroupManager> open_v1(const nlohmann::json& saved);
std::unique_ptr<CgroupManager> open_v2(const nlohmann::json& saved);
}  // namespace cgroupfs

}  // namespace cidrun::runtime
