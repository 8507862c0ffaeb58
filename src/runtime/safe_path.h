// Paths inside a container's root filesystem, resolved as if that root were "/": a symlink in the
// image (even "../../etc" or an absolute one) can never lead a mount or a device node out of it.
// Built on openat2(RESOLVE_IN_ROOT); the result is an O_PATH fd that mount(2) reaches through
// /proc/self/fd/N, so nothing is re-resolved between the check and the use.
#pragma once

#include <sys/types.h>

#include <string>
#include <utility>

#include "util/fd.h"

namespace cidrun::runtime {

// Opens `path` (absolute or relative, taken relative to root_fd) inside the root. Throws on error.
UniqueFd open_in_root(int root_fd, const std::string& path, int flags = 0);
// The same, but returns an invalid fd when the path does not exist.
UniqueFd try_open_in_root(int root_fd, const std::string& path, int flags = 0);

// Creates the missing components of `path` inside the root (directories with `mode`; the last one
// an empty file when `last_is_file`) and returns an O_PATH fd of the last component.
UniqueFd make_path_in_root(int root_fd, const std::string& path, bool last_is_file,
                           mode_t mode = 0755);

// Splits "/a/b/c" into the parent directory ("/a/b", created inside the root) and "c", for the
// *at calls that create a name (mknodat, symlinkat).
struct ParentAndName {
  UniqueFd parent;
  std::string name;
};
ParentAndName open_parent_in_root(int root_fd, const std::string& path);
// The same split without opening anything: {"/a/b", "c"}. Throws when no name is left.
std::pair<std::string, std::string> split_parent(const std::string& path);

// "/proc/self/fd/N": the name mount(2) and friends use to reach an fd's file.
std::string fd_path(int fd);

}  // namespace cidrun::runtime
