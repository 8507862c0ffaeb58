#include "runtime/rlimits.h"

#include <sys/resource.h>

#include <cerrno>
#include <cstdint>
#include <set>
#include <utility>
#include <vector>

#include "util/error.h"

namespace cidrun::runtime {
namespace {

struct RlimitName {
  const char* name;
  int resource;
};

constexpr RlimitName kRlimits[] = {
    {"RLIMIT_AS", RLIMIT_AS},
    {"RLIMIT_CORE", RLIMIT_CORE},
    {"RLIMIT_CPU", RLIMIT_CPU},
    {"RLIMIT_DATA", RLIMIT_DATA},
    {"RLIMIT_FSIZE", RLIMIT_FSIZE},
    {"RLIMIT_LOCKS", RLIMIT_LOCKS},
    {"RLIMIT_MEMLOCK", RLIMIT_MEMLOCK},
    {"RLIMIT_MSGQUEUE", RLIMIT_MSGQUEUE},
    {"RLIMIT_NICE", RLIMIT_NICE},
    {"RLIMIT_NOFILE", RLIMIT_NOFILE},
    {"RLIMIT_NPROC", RLIMIT_NPROC},
    {"RLIMIT_RSS", RLIMIT_RSS},
    {"RLIMIT_RTPRIO", RLIMIT_RTPRIO},
    {"RLIMIT_RTTIME", RLIMIT_RTTIME},
    {"RLIMIT_SIGPENDING", RLIMIT_SIGPENDING},
    {"RLIMIT_STACK", RLIMIT_STACK},
};

std::string show(rlim_t v) {
  return v == RLIM_INFINITY ? "unlimited" : std::to_string(v);
}

// OCI limits are uint64; UINT64_MAX is RLIM_INFINITY. A negative number is a malformed config.
rlim_t parse_limit(const nlohmann::json& entry, const char* field, const std::string& type) {
  auto it = entry.find(field);
  if (it == entry.end() || !it->is_number_integer() || it->is_number_float()) {
    throw Error("rlimits: " + type + ": \"" + field + "\" must be a non-negative integer");
  }
  if (it->is_number_unsigned()) return static_cast<rlim_t>(it->get<uint64_t>());
  int64_t v = it->get<int64_t>();
  if (v < 0) throw Error("rlimits: " + type + ": \"" + field + "\" must be a non-negative integer");
  return static_cast<rlim_t>(v);
}

}  // namespace

int rlimit_from_name(const std::string& name) {
  for (const auto& r : kRlimits) {
    if (name == r.name) return r.resource;
  }
  return -1;
}

void apply_rlimits(const nlohmann::json& process_rlimits) {
  if (process_rlimits.is_null()) return;
  if (!process_rlimits.is_array()) throw Error("rlimits: process.rlimits must be an array");

  struct Wanted {
    std::string type;
    int resource;
    rlimit limit;
  };
  std::vector<Wanted> wanted;
  std::set<int> seen;
  for (const auto& entry : process_rlimits) {
    if (!entry.is_object())
      throw Error("rlimits: each entry must be an object, got " + entry.dump());
    auto type_it = entry.find("type");
    if (type_it == entry.end() || !type_it->is_string()) {
      throw Error("rlimits: entry without a string \"type\": " + entry.dump());
    }
    const std::string type = type_it->get<std::string>();
    const int resource = rlimit_from_name(type);
    if (resource < 0) throw Error("rlimits: unknown rlimit type " + type);
    if (!seen.insert(resource).second) throw Error("rlimits: " + type + " is given twice");
    rlimit limit{};
    limit.rlim_cur = parse_limit(entry, "soft", type);
    limit.rlim_max = parse_limit(entry, "hard", type);
    if (limit.rlim_cur > limit.rlim_max) {
      throw Error("rlimits: " + type + ": soft limit " + show(limit.rlim_cur) +
                  " is above the hard limit " + show(limit.rlim_max));
    }
    wanted.push_back({type, resource, limit});
  }

  for (const auto& w : wanted) {
    if (setrlimit(static_cast<__rlimit_resource>(w.resource), &w.limit) == 0) continue;
    const int err = errno;
    rlimit current{};
    getrlimit(static_cast<__rlimit_resource>(w.resource), &current);
    if (err == EPERM && w.limit.rlim_max > current.rlim_max) {
      throw Error("rlimits: " + w.type + ": cannot raise the hard limit to " +
                  show(w.limit.rlim_max) + " above the current hard limit " +
                  show(current.rlim_max) + " (needs CAP_SYS_RESOURCE)");
    }
    throw_errno("rlimits: setrlimit " + w.type + " soft=" + show(w.limit.rlim_cur) +
                    " hard=" + show(w.limit.rlim_max),
                err);
  }
}

}  // namespace cidrun::runtime
