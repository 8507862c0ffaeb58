// The container's filesystem view, built inside its new mount namespace: the rootfs (optionally an
// overlay of read-only lower dirs), the spec's mounts, device nodes, pivot_root, then masked and
// read-only paths. Every destination is resolved inside the rootfs (safe_path.h).
#pragma once

#include <string>
#include <vector>

#include "runtime/spec.h"

namespace cidrun::runtime {

struct Overlay {
  std::vector<std::string> lowers;  // top first, as overlayfs takes them
  std::string upper, work;
};

struct RootfsContext {
  bool in_user_namespace = false;  // mknod is refused: bind host devices instead
  bool new_cgroup_namespace = false;
  // This process's cgroup paths per v1 hierarchy (or "" for v2), read before the cgroup
  // namespace was unshared, for binding the container's own cgroups at a "cgroup" mount.
  std::vector<std::pair<std::string, std::string>> cgroup_paths;  // controllers, path
};

// Before pivot_root: propagation, overlay, the rootfs bind, the spec's mounts and devices.
void prepare_rootfs(const Spec& spec, const Overlay* overlay, const RootfsContext& ctx);
// pivot_root into spec.root_path with the old root unmounted (MNT_DETACH), cwd "/".
void pivot_into_root(const std::string& rootfs);
// After pivot_root (and sysctl): masked paths, read-only paths, read-only root.
void finish_rootfs(const Spec& spec);
// Binds the pty `slave_fd` onto /dev/console (after pivot_root).
void bind_console(int slave_fd);

// This process's cgroup membership from /proc/self/cgroup.
std::vector<std::pair<std::string, std::string>> read_self_cgroups();

}  // namespace cidrun::runtime
