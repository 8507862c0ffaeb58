// The container's filesystem view, built inside its new mount namespace: the rootfs (optionally an
// overlay of read-only lower dirs), the spec's mounts, device nodes, pivot_root, then masked and
// read-only paths. Every destination is resolved inside the rootfs (safe_path.h).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "runtime/spec.h"

namespace cidrun::runtime {

struct Overlay {
  std::vector<std::string> lowers;  // top first, as overlayfs takes them
  std::string upper, work;
};

struct RootfsContext {
  // False when the config has no mount namespace: the container shares the runtime's, so nothing
  // may change the propagation of its mounts, and the root is entered with chroot (pivot_root
  // would move the runtime's root). What the container mounts, all under its root's own bind
  // mount, stays in that namespace until detach_shared_root undoes it.
  bool own_mount_namespace = true;
  bool in_user_namespace = false;  // mknod is refused: bind host devices instead
  bool new_cgroup_namespace = false;
  // This process's cgroup paths per v1 hierarchy (or "" for v2), read before the cgroup
  // namespace was unshared, for binding the container's own cgroups at a "cgroup" mount.
  std::vector<std::pair<std::string, std::string>> cgroup_paths;  // controllers, path
};

// Before pivot_root: propagation, overlay, the rootfs bind, the spec's mounts and devices.
void prepare_rootfs(const Spec& spec, const Overlay* overlay, const RootfsContext& ctx);
// Makes rootfs the root, cwd "/": pivot_root with the old root unmounted (MNT_DETACH) in the
// container's own mount namespace, chroot in a shared one.
void enter_root(const std::string& rootfs, const RootfsContext& ctx);
// After entering the root (and sysctl): linux.rootfsPropagation on the root, the propagation
// the mounts asked for, masked paths, read-only paths, read-only root.
void finish_rootfs(const Spec& spec);
// The id of the mount that holds path (statx STATX_MNT_ID), 0 when it cannot be told.
uint64_t mount_id_of(const std::string& path);
// Undoes, in the runtime's mount namespace, what a container without a mount namespace of its
// own mounted there: the bind of its root with everything under it, and its overlay when it had
// one, until rootfs is on the mount it was on before the container (mount_id_before).
void detach_shared_root(const std::string& rootfs, uint64_t mount_id_before);
// Binds the pty `slave_fd` onto /dev/console (after pivot_root).
void bind_console(int slave_fd);

// This process's cgroup membership from /proc/self/cgroup.
std::vector<std::pair<std::string, std::string>> read_self_cgroups();

}  // namespace cidrun::runtime
