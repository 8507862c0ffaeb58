// The runc lifecycle over the state store: create (init waits), start, run (create + start + wait),
// state, kill, delete, exec, ps, pause, resume. One function per verb; the CLI only parses options.
#pragma once

#include <sys/types.h>

#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "runtime/spec.h"

namespace cidrun::runtime {

struct LaunchOptions {
  std::string id;
  std::string bundle;  // for the state and hooks (runc: the bundle directory)
  Spec spec;           // root_path absolute
  std::string state_root;
  std::string pid_file;
  std::string console_socket;
  // When non-empty the rootfs is an overlay of these read-only dirs (top first) with a writable
  // upper dir under the container's state dir; spec.root_path is then ignored and replaced.
  std::vector<std::string> lower_dirs;
  bool no_cgroup = false;
  int preserve_fds = 0;
  // run only:
  bool interactive = false;  // forward stdin (always with a terminal)
  bool remove = false;       // --rm: no state left after exit
  // The program is exec'd through the sealed exec stub (self_protect.h) and the state is saved
  // only once the init has become it.
  bool exec_through_stub = false;
  // run only: called once the container's program runs (its init has exec'd), on this thread;
  // it must return at once (start a thread for anything slow): signals and the terminal are
  // relayed only after it.
  std::function<void()> on_started;
};

// `create`: the container's init is left waiting for `start`. Returns its pid.
pid_t create_container(const LaunchOptions& opts);
// `run`: create, start, forward signals (and the terminal), wait; returns the exit status
// (128+N when killed by signal N).
int run_container(const LaunchOptions& opts);

void start_container(const std::string& state_root, const std::string& id);
nlohmann::json container_state_json(const std::string& state_root, const std::string& id);
void kill_container(const std::string& state_root, const std::string& id, int sig, bool all);
void delete_container(const std::string& state_root, const std::string& id, bool force);
void pause_container(const std::string& state_root, const std::string& id);
void resume_container(const std::string& state_root, const std::string& id);
// runc update: writes linux.resources (the fields given) to the container's cgroup and records
// them in its saved config. A container without a cgroup, or stopped, is an error.
void update_container(const std::string& state_root, const std::string& id,
                      const nlohmann::json& resources);
std::vector<pid_t> container_pids(const std::string& state_root, const std::string& id);
std::vector<nlohmann::json> list_containers(const std::string& state_root);

struct ExecOptions {
  ProcessSpec process;
  bool detach = false;
  std::string console_socket;
  std::string pid_file;
  int preserve_fds = 0;
};
// The process object `exec ID CMD...` starts from when no --process file is given: the
// container's own, without args, terminal or console size (the exec's flags fill them in).
nlohmann::json exec_process_defaults(const std::string& state_root, const std::string& id);
// The container's root as the host reaches it (/proc/<init pid>/root), for reading its files
// (e.g. /etc/passwd for exec --user NAME). Throws when the container is not running.
std::string container_root_path(const std::string& state_root, const std::string& id);
// Returns the exit status (or 0 right away with detach).
int exec_in_container(const std::string& state_root, const std::string& id,
                      const ExecOptions& opts);

// Signal number for "TERM", "SIGTERM", "15" (runc kill's forms); throws on an unknown name.
int parse_signal(const std::string& s);

}  // namespace cidrun::runtime
