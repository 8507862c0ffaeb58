// Helpers for integration tests that drive the cidrun binary on content commands.
#pragma once

#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <string>

#include "integration/helpers.h"

namespace cidrun::testing {

namespace fs = std::filesystem;
using itest::chomp;
using itest::exit_code;
using itest::Result;
using itest::run_shell;
using itest::shell_quote;
using itest::slurp;

// A scratch directory with its own repo; `run` executes cidrun against that repo.
class Sandbox {
 public:
  Sandbox() {
    char tmpl[] = "/tmp/cidrun_content_XXXXXX";
    dir_ = ::mkdtemp(tmpl);
    repo_ = dir_ + "/repo";
  }
  ~Sandbox() {
    // Trees may contain 0500 directories; make them removable first.
    std::system(
        ("chmod -R u+rwx " + shell_quote(dir_) + " 2>/dev/null; rm -rf " + shell_quote(dir_))
            .c_str());
  }
  const std::string& dir() const { return dir_; }
  const std::string& repo() const { return repo_; }
  std::string path(const std::string& rel) const { return dir_ + "/" + rel; }

  // args is a shell fragment (quote paths with shell_quote).
  Result run(const std::string& args, const std::string& repo = "") const {
    return run_shell(std::string(CIDRUN_BINARY) + " --repo-dir " +
                         shell_quote(repo.empty() ? repo_ : repo) + " " + args,
                     dir_);
  }
  // Runs and expects success; returns stdout without the trailing newline.
  std::string ok(const std::string& args, const std::string& repo = "") const {
    Result r = run(args, repo);
    if (r.code != 0) throw std::runtime_error("cidrun " + args + " failed: " + r.err);
    return chomp(r.out);
  }

 private:
  std::string dir_;
  std::string repo_;
};

// Compares two trees entry by entry: type, content, symlink target, permission bits (incl.
// setuid/setgid/sticky) and mtime to the nanosecond. Returns "" when equal, else the first
// difference.
inline std::string diff_trees(const std::string& a, const std::string& b,
                              bool compare_root_meta = true) {
  auto meta = [](const std::string& p, struct stat& st) { return ::lstat(p.c_str(), &st) == 0; };
  auto compare = [&](const std::string& rel) -> std::string {
    std::string pa = a + rel, pb = b + rel;
    struct stat sa {
    }, sb{};
    if (!meta(pa, sa)) return "missing in source: " + rel;
    if (!meta(pb, sb)) return "missing in copy: " + rel;
    if ((sa.st_mode & S_IFMT) != (sb.st_mode & S_IFMT)) return "type differs: " + rel;
    if (S_ISLNK(sa.st_mode)) {
      if (fs::read_symlink(pa) != fs::read_symlink(pb)) return "symlink target differs: " + rel;
    } else if ((sa.st_mode & 07777) != (sb.st_mode & 07777)) {
      char buf[64];
      std::snprintf(buf, sizeof buf, " (%o vs %o)", sa.st_mode & 07777, sb.st_mode & 07777);
      return "mode differs: " + rel + buf;
    }
    if (sa.st_mtim.tv_sec != sb.st_mtim.tv_sec || sa.st_mtim.tv_nsec != sb.st_mtim.tv_nsec) {
      return "mtime differs: " + rel + " (" + std::to_string(sa.st_mtim.tv_sec) + "." +
             std::to_string(sa.st_mtim.tv_nsec) + " vs " + std::to_string(sb.st_mtim.tv_sec) + "." +
             std::to_string(sb.st_mtim.tv_nsec) + ")";
    }
    if (S_ISREG(sa.st_mode) && slurp(pa) != slurp(pb)) return "content differs: " + rel;
    return "";
  };
  size_t count_a = 0;
  for (auto it = fs::recursive_directory_iterator(a); it != fs::recursive_directory_iterator();
       ++it) {
    ++count_a;
    std::string rel = it->path().string().substr(a.size());
    if (auto d = compare(rel); !d.empty()) return d;
  }
  size_t count_b = 0;
  for (auto it = fs::recursive_directory_iterator(b); it != fs::recursive_directory_iterator();
       ++it)
    ++count_b;
  if (count_a != count_b)
    return "entry count differs: " + std::to_string(count_a) + " vs " + std::to_string(count_b);
  return compare_root_meta ? compare("") : "";
}

}  // namespace cidrun::testing
