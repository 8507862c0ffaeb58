// Shared by the runtime integration tests: a busybox root made once per test process, a private
// state root, and a way to run a shell command line and capture its output and status.
#pragma once

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>

#include "integration/helpers.h"

namespace rt_test {

using itest::chomp;
using itest::eventually;
using itest::Result;
using itest::shell_quote;
using itest::slurp;
using itest::spawn_sh;
using itest::wait_exit;
using itest::wait_for_text;

inline const std::string& work_dir() {
  static const std::string dir = [] {
    std::string d = "/tmp/cidrun-rt-" + std::to_string(::getpid());
    std::system(("rm -rf " + d + " && mkdir -p " + d).c_str());
    // Each test runs in its own process (gtest_discover_tests): leave nothing behind in /tmp.
    std::atexit([] {
      std::string cmd = "rm -rf /tmp/cidrun-rt-" + std::to_string(::getpid());
      if (std::system(cmd.c_str()) != 0) std::fprintf(stderr, "cleanup failed: %s\n", cmd.c_str());
    });
    return d;
  }();
  return dir;
}

inline std::string cidrun() {
  return std::string(CIDRUN_BINARY) + " --root " + work_dir() + "/state";
}

// Runs `cmd` with /bin/sh; stdin is /dev/null unless the command redirects it.
inline Result sh(const std::string& cmd) {
  return itest::run_shell(cmd, work_dir());
}

// A fresh busybox root (scripts/make-busybox-root.sh) under this test's work dir.
inline std::string make_root(const std::string& name = "root") {
  std::string dir = work_dir() + "/" + name;
  std::string cmd = std::string(CIDRUN_SOURCE_DIR) + "/scripts/make-busybox-root.sh " + dir;
  if (std::system((cmd + " >/dev/null 2>&1").c_str()) != 0) std::abort();
  return dir;
}

inline const std::string& busybox_root() {
  static const std::string root = make_root();
  return root;
}

// `cidrun run --rm ROOT -- sh -c SCRIPT` with extra run options.
inline Result run_sh(const std::string& script, const std::string& opts = "",
                     const std::string& root = busybox_root()) {
  return sh(cidrun() + " run --rm " + opts + " " + root + " -- /bin/sh -c " + shell_quote(script));
}

// The default spec (`cidrun config`).
inline nlohmann::json default_config() {
  return nlohmann::json::parse(sh(std::string(CIDRUN_BINARY) + " config").out);
}

inline void write_file(const std::string& path, const std::string& text) {
  std::ofstream(path) << text;
}

// A bundle {rootfs/ (a copy of the busybox root), config.json} whose config is `cidrun config`'s
// running args, with a cgroupsPath unique to this test process (other runs of these tests may use
// the same container ids at once); `edit` changes the config further.
inline std::string make_bundle(const std::string& name, const nlohmann::json& args,
                               const std::function<void(nlohmann::json&)>& edit = nullptr) {
  std::string b = work_dir() + "/" + name;
  sh("mkdir -p " + b + " && cp -a " + busybox_root() + " " + b + "/rootfs");
  nlohmann::json c = default_config();
  c["process"]["args"] = args;
  c["linux"]["cgroupsPath"] = "/cidrun-test/" + std::to_string(::getpid()) + "-" + name;
  if (edit) edit(c);
  write_file(b + "/config.json", c.dump());
  return b;
}

// The container's OCI status from `cidrun state`, or "error: ..." when state fails.
inline std::string status_of(const std::string& id) {
  Result r = sh(cidrun() + " state " + id);
  if (r.code != 0) return "error: " + r.err;
  return nlohmann::json::parse(r.out)["status"].get<std::string>();
}

// Waits until the container's status is `want`; false if it never became that.
inline bool wait_status(const std::string& id, const std::string& want) {
  return eventually([&] { return status_of(id) == want; });
}

}  // namespace rt_test
