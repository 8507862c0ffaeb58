// How commands plug into the CLI. Each command lives in its own file cli/cmd_<name>.cpp and adds
// itself with a static Registrar; main.cpp knows no command by name.
#pragma once

#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdlib>
#include <functional>
#include <memory>
#include <string>

namespace cidrun::cli {

// runc's rule for --root's default: /run/cidrun for root; a rootless caller's own runtime
// directory ($XDG_RUNTIME_DIR/cidrun, else /tmp/cidrun-<uid>).
inline std::string default_state_root() {
  if (::geteuid() == 0) return "/run/cidrun";
  if (const char* x = std::getenv("XDG_RUNTIME_DIR"); x && *x == '/')
    return std::string(x) + "/cidrun";
  return "/tmp/cidrun-" + std::to_string(::geteuid());
}

// Options that come before the command (runc's global flags, and the repo location).
struct Globals {
  std::string repo;                               // --repo-dir, else $CIDRUN_PATH, else ~/.cidrun
  std::string state_root = default_state_root();  // --root: runtime state (runc's meaning)
  std::string log_file;                           // --log
  std::string log_format = "text";                // --log-format text|json
  bool debug = false;                             // --debug
  bool systemd_cgroup = false;                    // --systemd-cgroup (accepted; no systemd here)
  int exit_code = 0;                              // set by the command's callback
};

// A command's setup adds a subcommand to `app` and sets its callback, which stores the command's
// exit status in g.exit_code and throws cidrun::Error on failure.
using Setup = std::function<void(CLI::App& app, Globals& g)>;

struct Registrar {
  Registrar(const char* name, Setup setup);
};

// Adds the command `name` whose one argument is a container id (start, pause, resume, state):
// act(state root, id) does its work, and the command exits 0 unless act throws.
using ContainerAction = std::function<void(const std::string& state_root, const std::string& id)>;
inline void add_container_command(CLI::App& app, Globals& g, const char* name, const char* help,
                                  ContainerAction act) {
  auto id = std::make_shared<std::string>();
  auto* sub = app.add_subcommand(name, help);
  sub->add_option("id", *id, "Container id")->required();
  sub->callback([id, &g, act = std::move(act)] {
    act(g.state_root, *id);
    g.exit_code = 0;
  });
}

// The repository directory for content commands (resolved from Globals and the environment).
std::string repo_path(const Globals& g);

}  // namespace cidrun::cli
