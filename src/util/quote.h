// Text from a stranger (a name in a DAG, a path, an argument, a config value) as it goes into a
// message. Messages are one line on a terminal: a newline would forge a second line, an escape
// sequence would drive the terminal.
#pragma once

#include <string>
#include <string_view>

namespace cidrun {

// In single quotes, with control characters (C0, DEL and the C1 range U+0080..U+009F, which
// terminals obey), backslashes and single quotes escaped as \xNN. Other bytes, UTF-8 included,
// are kept.
std::string quote(std::string_view text);

// The same escapes of control characters, without quotes: a whole message made safe for one
// line (the logger applies it to every record it writes to a terminal).
std::string escape_controls(std::string_view text);

}  // namespace cidrun
