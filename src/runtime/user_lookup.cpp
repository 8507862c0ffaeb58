#include "runtime/user_lookup.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <sstream>

#include "runtime/safe_path.h"
#include "util/error.h"
#include "util/fd.h"

namespace cidrun::runtime {
namespace {

constexpr size_t kMaxDbFile = 4u << 20;  // a hostile image must not make us read forever

std::optional<uint32_t> parse_id(const std::string& s) {
  if (s.empty() || s.size() > 10 || s.find_first_not_of("0123456789") != std::string::npos)
    return std::nullopt;
  uint64_t v = std::stoull(s);
  if (v > 0xfffffffeu) return std::nullopt;
  return static_cast<uint32_t>(v);
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  size_t i = 0;
  for (;;) {
    size_t j = s.find(sep, i);
    out.push_back(s.substr(i, j == std::string::npos ? std::string::npos : j - i));
    if (j == std::string::npos) return out;
    i = j + 1;
  }
}

// The lines of /etc/<name> inside the root, or none when it does not exist. Only a regular
// file is read (a FIFO or device planted in an image must not block or feed us).
std::vector<std::vector<std::string>> read_db(int root_fd, const std::string& name) {
  std::vector<std::vector<std::string>> rows;
  if (root_fd < 0) return rows;
  // O_PATH first: opening a device node for reading can have effects of its own.
  UniqueFd path = try_open_in_root(root_fd, "/etc/" + name, O_PATH);
  if (!path.valid()) return rows;
  struct stat st {};
  if (::fstat(path.get(), &st) != 0) throw_errno("stat the container's /etc/" + name);
  if (!S_ISREG(st.st_mode)) throw Error("the container's /etc/" + name + " is not a regular file");
  UniqueFd fd(::open(fd_path(path.get()).c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) throw_errno("open the container's /etc/" + name);
  if (static_cast<uint64_t>(st.st_size) > kMaxDbFile)
    throw Error("the container's /etc/" + name + " is larger than 4 MiB");
  std::string text(static_cast<size_t>(st.st_size), '\0');
  size_t got = read_full(fd.get(), text.data(), text.size(), "/etc/" + name);
  text.resize(got);
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    rows.push_back(split(line, ':'));
  }
  return rows;
}

}  // namespace

ResolvedUser resolve_user(const std::string& spec, int root_fd) {
  if (spec.empty()) throw Error("--user: empty");
  size_t colon = spec.find(':');
  std::string user = spec.substr(0, colon);
  std::optional<std::string> group;
  if (colon != std::string::npos) group = spec.substr(colon + 1);
  if (user.empty() || (group && group->empty()))
    throw Error("--user " + spec + ": want user[:group] (names or numeric ids)");

  ResolvedUser r;
  auto passwd = read_db(root_fd, "passwd");
  // passwd: name:password:uid:gid:gecos:home:shell
  const std::vector<std::string>* entry = nullptr;
  std::optional<uint32_t> uid = parse_id(user);
  for (const auto& row : passwd) {
    if (row.size() < 7) continue;
    if (uid ? parse_id(row[2]) == uid : row[0] == user) {
      entry = &row;
      break;
    }
  }
  if (!uid) {
    if (!entry) {
      throw Error("--user " + spec + ": no user named '" + user +
                  "' in the container's /etc/passwd");
    }
    uid = parse_id((*entry)[2]);
    if (!uid)
      throw Error("--user " + spec + ": the container's /etc/passwd has a bad uid for " + user);
  }
  r.uid = *uid;
  if (entry) r.home = (*entry)[5];

  auto groups = read_db(root_fd, "group");
  // group: name:password:gid:member,member
  if (group) {
    if (auto gid = parse_id(*group)) {
      r.gid = *gid;
    } else {
      const std::vector<std::string>* g = nullptr;
      for (const auto& row : groups) {
        if (row.size() >= 3 && row[0] == *group) {
          g = &row;
          break;
        }
      }
      if (!g) {
        throw Error("--user " + spec + ": no group named '" + *group +
                    "' in the container's /etc/group");
      }
      auto named = parse_id((*g)[2]);
      if (!named)
        throw Error("--user " + spec + ": the container's /etc/group has a bad gid for " + *group);
      r.gid = *named;
    }
  } else if (entry) {
    auto gid = parse_id((*entry)[3]);
    if (!gid)
      throw Error("--user " + spec + ": the container's /etc/passwd has a bad gid for " + user);
    r.gid = *gid;
  } else {
    r.gid = r.uid;
  }
  if (entry) {
    const std::string& name = (*entry)[0];
    for (const auto& row : groups) {
      if (row.size() < 4) continue;
      auto gid = parse_id(row[2]);
      if (!gid || *gid == r.gid) continue;
      for (const auto& member : split(row[3], ',')) {
        if (member == name) {
          r.additional_gids.push_back(*gid);
          break;
        }
      }
    }
  }
  return r;
}

ResolvedUser resolve_user_in(const std::string& spec, const std::string& root_path) {
  UniqueFd root(::open(root_path.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  // No root to read (yet): numeric ids still work, a name fails as not found.
  if (!root.valid() && errno == ENOENT) return resolve_user(spec, -1);
  if (!root.valid()) throw_errno("open the container's root " + root_path);
  return resolve_user(spec, root.get());
}

}  // namespace cidrun::runtime
