#include "util/random.h"

#include <sys/random.h>

#include <cerrno>
#include <chrono>
#include <random>

#include <unistd.h>

namespace cidrun {

namespace {

std::uint64_t seed() {
  std::uint64_t s = 0;
  ssize_t n = 0;
  do {
    n = ::getrandom(&s, sizeof s, GRND_NONBLOCK);
  } while (n < 0 && errno == EINTR);
  // Before the kernel's pool is ready (early boot), the clock and pid still keep names apart.
  if (n != static_cast<ssize_t>(sizeof s))
    s ^= static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count()) ^
         (static_cast<std::uint64_t>(::getpid()) << 32);
  return s;
}

}  // namespace

std::uint64_t random_u64() {
  static thread_local std::mt19937_64 rng{seed()};
  return rng();
}

}  // namespace cidrun
