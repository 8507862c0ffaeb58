// `-u/--user name|uid[:group|gid]` the way podman and runc users expect: names are looked up in
// the container's own /etc/passwd and /etc/group (never the host's), read through
// openat2(RESOLVE_IN_ROOT), so a symlinked /etc/passwd in an image cannot lead to a host file. A
// user found in /etc/passwd also brings its primary gid (when no group is given), its home (for
// HOME) and the groups that list it as a member (supplementary gids).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace cidrun::runtime {

struct ResolvedUser {
  uint32_t uid = 0;
  uint32_t gid = 0;
  std::vector<uint32_t> additional_gids;  // from /etc/group membership
  std::string home;                       // empty when the user has no passwd entry
};

// root_fd: the container's root directory, or -1 when there is none to read (then only
// numeric ids are accepted). Throws one clear line for an unknown name or a malformed spec. A
// numeric uid without a passwd entry gets gid = uid when no group is given.
ResolvedUser resolve_user(const std::string& spec, int root_fd);

// The same, opening the root directory at root_path.
ResolvedUser resolve_user_in(const std::string& spec, const std::string& root_path);

}  // namespace cidrun::runtime
