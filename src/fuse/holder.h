// The process that owns a lazy mount: the "holder". It opens /dev/fuse, mounts the connection,
// starts the server (fuse/server.h) as its child with the descriptor, and keeps its own copy of
// that descriptor for as long as the mount lives. Because of that copy, the server may crash, be
// killed or be replaced by a newer binary (SIGHUP to the holder) without the mount or any
// container on it noticing: the holder starts a successor on the same connection, which takes
// over every inode and every request the old one left.
//
// The holder is small and does no network or DAG work itself, so it has little reason to die.
// A mount made for containers (`run --lazy`) is shared by every container of one root and ends
// when none refers to it any more: each user leaves a ref (a pid and its start time, like a
// lease) in the state directory, and the holder unmounts (lazily: containers' overlays keep the
// filesystem until they go) once no ref's process is alive. The server then sees the
// connection end and exits, and so does the holder. An explicit mount (`cidrun mount`) stays
// until `cidrun umount`.
//
// State directory: <state>/fuse/<id>/ with lock, holder.pid, server.pid, ready, mountpoint,
// refs/, inodes (the journal), fuse-init, holder.log and server.log.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

namespace cidrun::fuse {

struct HolderSpec {
  std::string state_dir;
  std::string mountpoint;
  std::string server_exe;                // started again from this path on restart (upgrades)
  std::vector<std::string> server_args;  // after "fuse-server" and before the holder's own
  bool keep = false;                     // stay mounted until asked (cidrun mount)
};

// Runs the holder in this process (which should be a fresh, detached child). Writes "ok" or
// "error: MSG" to ready_fd once the server answers requests (or failed to), then supervises
// until the mount is gone. Never returns.
[[noreturn]] void run_holder(const HolderSpec& spec, int ready_fd);

// Starts a holder as a detached process (its own session, stdio to holder.log) and waits until
// it reports; throws Error with the holder's message when it could not mount or serve.
void start_holder(const HolderSpec& spec, const std::vector<std::string>& holder_argv);

// Refs: a user of the mount, named (e.g. by container id), alive while its process is.
void add_ref(const std::string& state_dir, const std::string& name, pid_t pid);
void drop_ref(const std::string& state_dir, const std::string& name);
bool has_live_refs(const std::string& state_dir);

// Whether the holder of a state directory is alive and its mount ready.
bool holder_ready(const std::string& state_dir);
// Asks the holder to unmount now (cidrun umount) and waits (up to timeout_ms) for it to exit.
void stop_holder(const std::string& state_dir, int timeout_ms);

// True when path is the root of a FUSE mount.
bool is_fuse_mount(const std::string& path);

}  // namespace cidrun::fuse
