#include "util/error.h"

#include <cerrno>
#include <cstring>

namespace cidrun {

void throw_errno(const std::string& what) {
  throw_errno(what, errno);
}

void throw_errno(const std::string& what, int err) {
  throw Error(what + ": " + std::strerror(err));
}

}  // namespace cidrun
