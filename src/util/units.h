// Human-readable sizes: "262144", "256KiB", "1GiB", "1B", "10MB" (kubo's humanize spelling).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace cidrun {

// Throws cidrun::Error on a malformed size or one that overflows 64 bits.
uint64_t parse_size(std::string_view text);
std::string format_bytes(double bytes);  // "1.5 MiB"

}  // namespace cidrun
