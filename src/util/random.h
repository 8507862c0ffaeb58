#pragma once

#include <cstdint>

namespace cidrun {

// A random 64-bit number for unique temporary names and ids (not for keys): a per-thread
// generator seeded once from getrandom(2). std::random_device cost 22-35 µs to construct here
// (it probes the CPU's random instructions), a tax on every command's start (issue 4).
std::uint64_t random_u64();

}  // namespace cidrun
