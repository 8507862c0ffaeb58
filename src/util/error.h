// The one error type of cidrun. Every layer throws cidrun::Error with a message that can be shown
// to the user as one line; the CLI catches it at the top and exits non-zero.
#pragma once

#include <stdexcept>
#include <string>

namespace cidrun {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

// A block or CID that is absent from every place it was looked for. Kept distinct so that readers
// can fetch it from a source and retry, and so that messages can name the missing CID.
class NotFound : public Error {
 public:
  explicit NotFound(const std::string& what) : Error(what) {}
};

// Throws Error("<what>: <strerror(errno)>"). Wraps every failing syscall once, so messages always
// carry the errno text and the path or object that failed.
[[noreturn]] void throw_errno(const std::string& what);
[[noreturn]] void throw_errno(const std::string& what, int err);

}  // namespace cidrun
