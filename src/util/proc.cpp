#include "util/proc.h"

#include <sys/syscall.h>
#include <unistd.h>

#include <charconv>
#include <string>
#include <string_view>

#include "util/error.h"
#include "util/fd.h"

namespace cidrun {

uint64_t process_start_time(pid_t pid) {
  if (pid <= 0) return 0;
  std::string text;
  try {
    text = read_text_file("/proc/" + std::to_string(pid) + "/stat");
  } catch (const Error&) {
    return 0;
  }
  // The command name (field 2) may hold spaces and parens: fields are counted after the last ')'.
  size_t close = text.rfind(')');
  if (close == std::string::npos) return 0;
  std::string_view rest(text);
  rest.remove_prefix(close + 1);
  std::string_view field;
  for (int n = 3; n <= 22; ++n) {
    size_t start = rest.find_first_not_of(' ');
    if (start == std::string_view::npos) return 0;
    rest.remove_prefix(start);
    field = rest.substr(0, rest.find(' '));
    rest.remove_prefix(field.size());
    // Field 3 is the state: a zombie (Z) or dead (X) process has finished.
    if (n == 3 && (field == "Z" || field == "X")) return 0;
  }
  uint64_t start_time = 0;
  auto [end, ec] = std::from_chars(field.data(), field.data() + field.size(), start_time);
  if (ec != std::errc() || end != field.data() + field.size()) return 0;
  return start_time;
}

UniqueFd open_pidfd(pid_t pid) {
  return UniqueFd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
}

}  // namespace cidrun
