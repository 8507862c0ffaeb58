// cidrun's entry point: global options, then one registered command. The one file that includes
// CLI11 (command.h says why): the Command and Option handles are implemented here.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cli/command.h"
#include "util/error.h"
#include "util/log.h"

namespace cidrun::cli {
namespace {

std::map<std::string, Setup>& registry() {
  static std::map<std::string, Setup> r;
  return r;
}

// The command word of argv: the first word that is neither a global option nor its value.
// Empty when there is none (help, version, or an error CLI11 will report).
std::string command_word(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    if (a == "--") return {};
    if (a.empty() || a[0] != '-') return std::string(a);
    if (a == "--repo-dir" || a == "--root" || a == "--log" || a == "--log-format") ++i;
  }
  return {};
}

}  // namespace

Option& Option::required() {
  o_->required();
  return *this;
}

Option& Option::one_value_each() {
  o_->allow_extra_args(false);
  return *this;
}

Option& Option::one_of(std::vector<const char*> words) {
  o_->check(CLI::IsMember(std::move(words)));
  return *this;
}

Option& Option::non_negative() {
  o_->check(CLI::NonNegativeNumber);
  return *this;
}

size_t Option::count() const {
  return o_->count();
}

Command Command::add_subcommand(const char* name, const char* help) {
  return Command(app_->add_subcommand(name, help));
}

Command& Command::hidden() {
  app_->group("");
  return *this;
}

Command& Command::require_subcommand() {
  app_->require_subcommand(1);
  return *this;
}

Command& Command::positionals_at_end() {
  app_->positionals_at_end(true);
  return *this;
}

Command& Command::callback(std::function<void()> run) {
  app_->callback(std::move(run));
  return *this;
}

Option Command::add_option(const char* names, std::string& value, const char* help) {
  return Option(app_->add_option(names, value, help));
}

Option Command::add_option(const char* names, std::vector<std::string>& values, const char* help) {
  return Option(app_->add_option(names, values, help));
}

Option Command::add_option(const char* names, int& value, const char* help) {
  return Option(app_->add_option(names, value, help));
}

Option Command::add_option(const char* names, int64_t& value, const char* help) {
  return Option(app_->add_option(names, value, help));
}

Option Command::add_option(const char* names, uint32_t& value, const char* help) {
  return Option(app_->add_option(names, value, help));
}

Option Command::add_option(const char* names, size_t& value, const char* help) {
  return Option(app_->add_option(names, value, help));
}

Option Command::add_option(const char* names, std::vector<uint32_t>& values, const char* help) {
  return Option(app_->add_option(names, values, help));
}

Option Command::add_flag(const char* names, bool& value, const char* help) {
  return Option(app_->add_flag(names, value, help));
}

std::vector<std::string> Command::remaining() const {
  return app_->remaining();
}

Registrar::Registrar(const char* name, Setup setup) {
  registry().emplace(name, std::move(setup));
}

std::string repo_path(const Globals& g) {
  if (!g.repo.empty()) return g.repo;
  if (const char* p = std::getenv("CIDRUN_PATH"); p && *p) return p;
  if (const char* h = std::getenv("HOME"); h && *h) return std::string(h) + "/.cidrun";
  return "/var/lib/cidrun";
}

}  // namespace cidrun::cli

int main(int argc, char** argv) {
  using namespace cidrun;
  cli::Globals g;
  CLI::App app{
      "cidrun: start Linux containers straight from root filesystems stored in IPFS.\n"
      "Content commands use kubo's spelling, runtime commands runc's."};
  app.set_version_flag("-v,--version", std::string("cidrun version ") + CIDRUN_VERSION +
                                           "\nspec: 1.1.0\nipfs: kubo-compatible UnixFS");
  app.require_subcommand(1);
  app.add_option("--repo-dir", g.repo,
                 "Block store and image cache (default $CIDRUN_PATH or ~/.cidrun)");
  app.add_option("--root", g.state_root, "Directory for container state (runc --root)");
  app.add_option("--log", g.log_file, "Write log messages to this file");
  app.add_option("--log-format", g.log_format, "Log format: text or json")
      ->check(CLI::IsMember({"text", "json"}));
  app.add_flag("--debug", g.debug, "Verbose logging");
  app.add_flag("--systemd-cgroup", g.systemd_cgroup,
               "cgroupsPath is systemd's slice:prefix:name (runc's spelling); the container goes "
               "where systemd puts that unit, written directly (no D-Bus)");
  // Runs after all options are parsed and before the command's callback.
  app.parse_complete_callback([&g, argc, argv] {
    if (g.debug) log::set_level(log::Level::kDebug);
    log::set_output(g.log_file, g.log_format);
    if (log::level() >= log::Level::kDebug) {
      std::string line = "command line:";
      for (int i = 0; i < argc; ++i) line += std::string(" ") + argv[i];
      log::debug(line);
    }
  });
  // Building every command's options costs more than parsing one: when argv names a known
  // command, only that one is set up (help and errors without a command list them all).
  auto& commands = cli::registry();
  cli::Command top(&app);
  if (auto it = commands.find(cli::command_word(argc, argv)); it != commands.end())
    it->second(top, g);
  else
    for (auto& [name, setup] : commands) setup(top, g);

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    // A usage error can stop parsing before the log was set up; podman still reads the log.
    try {
      log::set_output(g.log_file, g.log_format);
    } catch (const cidrun::Error&) {
    }
    log::fatal(std::string(e.what()) + " (see --help)");
    return 2;
  } catch (const cidrun::Error& e) {
    std::fflush(stdout);
    log::fatal(e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fflush(stdout);
    log::fatal(std::string("internal error: ") + e.what());
    return 1;
  }
  return g.exit_code;
}
