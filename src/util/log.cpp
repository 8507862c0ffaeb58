#include "util/log.h"

#include <fcntl.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cstdio>
#include <ctime>
#include <mutex>

#include "util/error.h"
#include "util/quote.h"

namespace cidrun::log {
namespace {

std::atomic<Level> g_level{Level::kWarn};
int g_fd = STDERR_FILENO;
std::string g_path;
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

// Length of the well-formed UTF-8 sequence at s[i], 0 when the byte there starts none.
size_t utf8_length(const std::string& s, size_t i) {
  auto at = [&](size_t k) -> unsigned { return static_cast<unsigned char>(s[k]); };
  const unsigned c = at(i);
  const size_t left = s.size() - i;
  auto cont = [&](size_t k) { return k < left && (at(i + k) & 0xC0U) == 0x80U; };
  if (c < 0x80) return 1;
  if (c >= 0xC2 && c <= 0xDF) return cont(1) ? 2 : 0;
  if (c >= 0xE0 && c <= 0xEF) {
    if (!cont(1) || !cont(2)) return 0;
    // Overlong forms and UTF-16 surrogates are not UTF-8.
    if ((c == 0xE0 && at(i + 1) < 0xA0) || (c == 0xED && at(i + 1) > 0x9F)) return 0;
    return 3;
  }
  if (c >= 0xF0 && c <= 0xF4) {
    if (!cont(1) || !cont(2) || !cont(3)) return 0;
    if ((c == 0xF0 && at(i + 1) < 0x90) || (c == 0xF4 && at(i + 1) > 0x8F)) return 0;
    return 4;
  }
  return 0;
}

void append_hex(std::string& out, const char* fmt, unsigned value) {
  std::array<char, 8> buf{};
  std::snprintf(buf.data(), buf.size(), fmt, value);
  out += buf.data();
}

// How a quoted string escapes what cannot stand as itself; the rest ('"', '\\', \n, \r, \t, valid
// multi-byte UTF-8) is the same in Go's encoding/json and its %q.
struct Escapes {
  const char* invalid_byte;  // a format for a byte that is not UTF-8 (may ignore the value)
  const char* control;       // a format for the other control characters
  bool del_is_control;       // %q escapes 0x7f too; JSON lets it stand
};

std::string escape(const std::string& s, const Escapes& e) {
  std::string out;
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    const size_t n = utf8_length(s, i);
    if (n == 0) {
      append_hex(out, e.invalid_byte, c);
      ++i;
      continue;
    }
    if (n > 1) {
      out.append(s, i, n);
    } else if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c < 0x20 || (e.del_is_control && c == 0x7f)) {
      append_hex(out, e.control, c);
    } else {
      out += static_cast<char>(c);
    }
    i += n;
  }
  return out;
}

// A JSON string body as Go's encoding/json writes it: invalid UTF-8 becomes U+FFFD.
std::string json_string(const std::string& s) {
  return escape(s, {.invalid_byte = "\\ufffd", .control = "\\u%04x", .del_is_control = false});
}

// A logrus text value: bare when made only of [A-Za-z0-9-._/@^+] (or empty), else quoted the
// way Go's %q does (escapes for quotes, backslashes, controls and bytes that are not UTF-8).
std::string logfmt_value(const std::string& s) {
  bool bare = true;
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    const bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                       c == '-' || c == '.' || c == '_' || c == '/' || c == '@' || c == '^' ||
                       c == '+';
    if (!plain) {
      bare = false;
      break;
    }
  }
  if (bare) return s;
  return "\"" +
         escape(s, {.invalid_byte = "\\x%02x", .control = "\\x%02x", .del_is_control = true}) +
         "\"";
}

void write_all(int fd, const std::string& s) {
  std::lock_guard lock(g_mu);
  // A failed log write has nowhere better to be reported.
  [[maybe_unused]] auto n = ::write(fd, s.data(), s.size());
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
  if (path.empty() || path == g_path) return;
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) throw_errno("open log file " + path);
  if (g_fd != STDERR_FILENO) ::close(g_fd);
  g_fd = fd;
  g_path = path;
}

std::string format_record(Level l, const std::string& msg, bool json, long long time) {
  std::tm tm{};
  const auto t = static_cast<std::time_t>(time);
  gmtime_r(&t, &tm);
  std::array<char, 32> ts{};
  std::strftime(ts.data(), ts.size(), "%Y-%m-%dT%H:%M:%SZ", &tm);
  if (json) {
    return std::string("{\"level\":\"") + level_name(l) + "\",\"msg\":\"" + json_string(msg) +
           "\",\"time\":\"" + ts.data() + "\"}\n";
  }
  return std::string("time=\"") + ts.data() + "\" level=" + level_name(l) +
         " msg=" + logfmt_value(msg) + "\n";
}

void write(Level l, const std::string& msg) {
  if (l > g_level.load()) return;
  if (g_fd != STDERR_FILENO || g_json) {
    write_all(g_fd, format_record(l, msg, g_json, std::time(nullptr)));
    return;
  }
  std::string line = "cidrun: ";
  if (l != Level::kInfo) line += std::string(level_name(l)) + ": ";
  // One record, one line, whatever a message quoted from a stranger holds.
  write_all(g_fd, line + escape_controls(msg) + "\n");
}

void fatal(const std::string& msg) {
  if (g_fd != STDERR_FILENO || g_json)
    write_all(g_fd, format_record(Level::kError, msg, g_json, std::time(nullptr)));
  write_all(STDERR_FILENO, "cidrun: error: " + escape_controls(msg) + "\n");
}

}  // namespace cidrun::log
