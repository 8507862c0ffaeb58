// How commands plug into the CLI. Each command lives in its own file cli/cmd_<name>.cpp and adds
// itself with a static Registrar; main.cpp knows no command by name.
//
// Commands declare their options through Command and Option below, thin handles on the parser's
// own objects. The parser is CLI11, whose headers cost more to compile (and to analyse) than most
// commands: main.cpp is the one file that includes it, and implements these handles by calling
// CLI11 with the same names, types and help texts, so the parser sees what it always saw.
#pragma once

#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace CLI {
class App;
class Option;
}  // namespace CLI

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
  bool systemd_cgroup = false;                    // --systemd-cgroup: slice:prefix:name paths
  int exit_code = 0;                              // set by the command's callback
};

// One option, flag or positional of a command. Names are CLI11's: "-r,--recursive" for an
// option, "paths" for a positional, "--pin,!--no-pin" for a flag with a negation.
class Option {
 public:
  Option() = default;
  explicit Option(CLI::Option* o) : o_(o) {}

  Option& required();
  // One value per occurrence: `-e A -e B`, and `-e A B` leaves B to the positionals.
  Option& one_value_each();
  // The value must be one of these words.
  Option& one_of(std::vector<const char*> words);
  Option& non_negative();
  // How often it was given (after parsing).
  [[nodiscard]] size_t count() const;

 private:
  CLI::Option* o_ = nullptr;
};

// A command or subcommand: the options it takes, its subcommands and what it runs.
class Command {
 public:
  explicit Command(CLI::App* app) : app_(app) {}

  Command add_subcommand(const char* name, const char* help);
  // Left out of --help: the internal commands cidrun starts itself (the lazy mount's holder and
  // server).
  Command& hidden();
  // Exactly one subcommand must follow.
  Command& require_subcommand();
  // Every word after the first positional is positional (options go before it).
  Command& positionals_at_end();
  // Runs after parsing when this command was named; throws cidrun::Error on failure.
  Command& callback(std::function<void()> run);

  Option add_option(const char* names, std::string& value, const char* help);
  Option add_option(const char* names, std::vector<std::string>& values, const char* help);
  Option add_option(const char* names, int& value, const char* help);
  Option add_option(const char* names, int64_t& value, const char* help);
  Option add_option(const char* names, uint32_t& value, const char* help);
  Option add_option(const char* names, size_t& value, const char* help);
  Option add_option(const char* names, std::vector<uint32_t>& values, const char* help);
  Option add_flag(const char* names, bool& value, const char* help);

  // Words the parser left over (after parsing).
  [[nodiscard]] std::vector<std::string> remaining() const;

 private:
  CLI::App* app_;
};

// A command's setup adds a subcommand to `app` and sets its callback, which stores the command's
// exit status in g.exit_code and throws cidrun::Error on failure.
using Setup = std::function<void(Command& app, Globals& g)>;

struct Registrar {
  Registrar(const char* name, Setup setup);
};

// Adds the command `name` whose one argument is a container id (start, pause, resume, state):
// act(state root, id) does its work, and the command exits 0 unless act throws.
using ContainerAction = std::function<void(const std::string& state_root, const std::string& id)>;
inline void add_container_command(Command& app, Globals& g, const char* name, const char* help,
                                  ContainerAction act) {
  auto id = std::make_shared<std::string>();
  auto sub = app.add_subcommand(name, help);
  sub.add_option("id", *id, "Container id").required();
  sub.callback([id, &g, act = std::move(act)] {
    act(g.state_root, *id);
    g.exit_code = 0;
  });
}

// The repository directory for content commands (resolved from Globals and the environment).
std::string repo_path(const Globals& g);

}  // namespace cidrun::cli
