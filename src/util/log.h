// The one logger: messages go to stderr (or the --log file), prefixed "cidrun: ".
#pragma once

#include <string>

namespace cidrun::log {

enum class Level { kError, kWarn, kInfo, kDebug };

void set_level(Level level);
Level level();
// Redirects log output to a file, in "text" or "json" format (runc's --log/--log-format).
void set_output(const std::string& path, const std::string& format);

void write(Level level, const std::string& msg);
inline void error(const std::string& msg) {
  write(Level::kError, msg);
}
inline void warn(const std::string& msg) {
  write(Level::kWarn, msg);
}
inline void info(const std::string& msg) {
  write(Level::kInfo, msg);
}
inline void debug(const std::string& msg) {
  if (level() >= Level::kDebug) write(Level::kDebug, msg);
}

}  // namespace cidrun::log
