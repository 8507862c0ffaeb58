// The one logger. Messages go to stderr as "cidrun: LEVEL: MSG" (control characters in MSG
// escaped: a record is always one line), or, with runc's --log FILE, to
// that file as runc writes it: --log-format json gives one {"level","msg","time"} object per
// line, text gives logrus's `time="..." level=... msg="..."` lines.
#pragma once

#include <string>

namespace cidrun::log {

enum class Level { kError, kWarn, kInfo, kDebug };

void set_level(Level level);
Level level();
// Sends log records to path (appending; none: stderr) in "text" or "json" format (runc's --log
// and --log-format). Calling it again with the same path keeps the open file.
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

// An error that ends the command: always on stderr as "cidrun: error: MSG", and also an error
// record in the log when it goes elsewhere or is JSON. runc does both, and its clients (podman,
// containerd) read the log file's last record to tell the user why the runtime failed.
void fatal(const std::string& msg);

// One record as it is written to a --log file, for `time` (seconds since the epoch, UTC).
std::string format_record(Level level, const std::string& msg, bool json, long long time);

}  // namespace cidrun::log
