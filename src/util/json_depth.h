// How deeply arrays and objects nest in JSON text, measured before it is parsed. JSON libraries
// build a tree whose copy, dump and (in some versions) destruction recurse once per level: a
// config.json nested 50,000 deep overflowed the stack. Every JSON a user or a peer hands cidrun
// is checked against kMaxJsonNesting first.
#pragma once

#include <cstddef>
#include <string_view>

namespace cidrun {

// Far beyond any real document (an OCI config nests about 6 deep, a seccomp profile 7).
inline constexpr size_t kMaxJsonNesting = 128;

// The deepest nesting of [ and { in text, outside strings. Malformed text gives some number;
// the parser then reports what is wrong with it.
size_t json_nesting(std::string_view text);

}  // namespace cidrun
