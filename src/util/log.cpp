#include "util/log.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <mutex>

#include "util/error.h"

namespace cidrun::log {
namespace {

std::atomic<Level> g_level{Level::kWarn};
int g_fd = STDERR_FILENO;
bool g_json = false;
std::mutex g_mu;

const char* level_name(Level l) {
  switch (l) {
    case Level::kError:
      return "error";
    case Level::kWarn:
      return "warning";
    case Level::kInfo:
      return "info";
    case Level::kDebug:
      return "debug";
  }
  return "info";
}

std::string json_escape(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

}  // namespace

void set_level(Level l) {
  g_level = l;
}
Level level() {
  return g_level;
}

void set_output(const std::string& path, const std::string& format) {
  g_json = format == "json";
  if (path.empty()) return;
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) throw_errno("open log file " + path);
  g_fd = fd;
}

void write(Level l, const std::string& msg) {
  if (l > g_level.load()) return;
  std::string line;
  if (g_json) {
    auto now = std::chrono::system_clock::now();
    std::time_t t = std::chrono::system_clock::to_time_t(now);
    char ts[32];
    std::tm tm{};
    gmtime_r(&t, &tm);
    std::strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tm);
    line = std::string("{\"level\":\"") + level_name(l) + "\",\"msg\":\"" + json_escape(msg) +
           "\",\"time\":\"" + ts + "\"}\n";
  } else {
    line = "cidrun: ";
    if (l != Level::kInfo) line += std::string(level_name(l)) + ": ";
    line += msg + "\n";
  }
  std::lock_guard lock(g_mu);
  // A failed log write has nowhere better to be reported.
  [[maybe_unused]] auto n = ::write(g_fd, line.data(), line.size());
}

}  // namespace cidrun::log
