#include "runtime/cgroups.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <sstream>
#include <thread>

#include "util/error.h"
#include "util/fd.h"
#include "util/log.h"

namespace cidrun::runtime {
namespace cgroupfs {

std::string read_host_file(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) throw_errno("cgroup: open " + path);
  std::string out;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw_errno("cgroup: read " + path);
    if (n == 0) return out;
    out.append(buf, static_cast<size_t>(n));
  }
}

std::string resolve_path(const std::string& cgroups_path, const std::string& container_id,
                         const std::string& own_cgroup) {
  std::string path;
  if (cgroups_path.empty()) {
    path = "/cidrun/" + container_id;
  } else if (cgroups_path[0] == '/') {
    path = cgroups_path;
  } else {
    path = (own_cgroup == "/" ? "" : own_cgroup) + "/" + cgroups_path;
  }
  // Normalise and refuse anything that could climb out of the hierarchy.
  std::string out;
  std::stringstream ss(path);
  std::string part;
  while (std::getline(ss, part, '/')) {
    if (part.empty() || part == ".") continue;
    if (part == "..") throw Error("cgroup: cgroupsPath " + cgroups_path + " must not contain ..");
    out += "/" + part;
  }
  if (out.empty())
    throw Error("cgroup: cgroupsPath \"" + cgroups_path + "\" names the root cgroup");
  return out;
}

std::string own_cgroup(const std::string& self_cgroup, const std::string& controller) {
  std::stringstream ss(self_cgroup);
  std::string line;
  while (std::getline(ss, line)) {
    // "hierarchy-id:controller-list:path"
    auto first = line.find(':');
    auto second = line.find(':', first + 1);
    if (first == std::string::npos || second == std::string::npos) continue;
    std::string list = line.substr(first + 1, second - first - 1);
    std::string path = line.substr(second + 1);
    if (controller.empty()) {
      if (list.empty() && line.compare(0, first, "0") == 0) return path;
      continue;
    }
    std::stringstream ls(list);
    std::string c;
    while (std::getline(ls, c, ',')) {
      if (c == controller) return path;
    }
  }
  return "/";
}

void write(const std::string& dir, const std::string& file, const std::string& value) {
  const std::string path = dir + "/" + file;
  // No O_CREAT: a missing file means the controller or feature is absent, which must show.
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC));
  if (!fd.valid()) throw_errno("cgroup: write " + path + "=" + value);
  // cgroupfs takes each write(2) as one whole value.
  ssize_t n;
  do {
    n = ::write(fd.get(), value.data(), value.size());
  } while (n < 0 && errno == EINTR);
  if (n < 0) throw_errno("cgroup: write " + path + "=" + value);
}

std::string read(const std::string& dir, const std::string& file) {
  std::string s = read_host_file(dir + "/" + file);
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

bool exists(const std::string& dir, const std::string& file) {
  return access((dir + "/" + file).c_str(), F_OK) == 0;
}

namespace {

std::vector<std::string> subdirs(const std::string& dir) {
  std::vector<std::string> out;
  DIR* d = opendir(dir.c_str());
  if (!d) return out;
  while (dirent* e = readdir(d)) {
    std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    if (e->d_type == DT_DIR) out.push_back(std::string(dir).append("/").append(name));
  }
  closedir(d);
  return out;
}

}  // namespace

std::vector<pid_t> procs_recursive(const std::string& dir) {
  std::vector<pid_t> out;
  std::string text;
  try {
    text = read_host_file(dir + "/cgroup.procs");
  } catch (const Error&) {
    if (access(dir.c_str(), F_OK) != 0) return out;  // the cgroup is gone: no processes
    throw;
  }
  std::stringstream ss(text);
  long pid;
  while (ss >> pid) out.push_back(static_cast<pid_t>(pid));
  for (const auto& sub : subdirs(dir)) {
    auto more = procs_recursive(sub);
    out.insert(out.end(), more.begin(), more.end());
  }
  return out;
}

void remove_tree(const std::string& dir, const std::function<void()>& kill_leftovers) {
  // Usually the cgroup is empty and has no children: one rmdir, no directory listing.
  if (rmdir(dir.c_str()) == 0 || errno == ENOENT) return;
  for (const auto& sub : subdirs(dir)) remove_tree(sub, kill_leftovers);
  // Processes take a moment to leave a cgroup after they die; runc retries for a few seconds.
  auto delay = std::chrono::milliseconds(5);
  for (int attempt = 0;; ++attempt) {
    if (rmdir(dir.c_str()) == 0 || errno == ENOENT) return;
    if (errno != EBUSY || attempt >= 30) throw_errno("cgroup: rmdir " + dir);
    if (attempt >= 2) kill_leftovers();
    std::this_thread::sleep_for(delay);
    delay = std::min(delay * 2, std::chrono::milliseconds(200));
  }
}

std::optional<int64_t> get_i64(const nlohmann::json& obj, const char* key) {
  if (!obj.is_object()) return std::nullopt;
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return std::nullopt;
  if (it->is_number_unsigned()) {
    uint64_t v = it->get<uint64_t>();
    if (v > static_cast<uint64_t>(INT64_MAX))
      throw Error(std::string("cgroup: ") + key + " is too large");
    return static_cast<int64_t>(v);
  }
  if (!it->is_number_integer()) {
    throw Error(std::string("cgroup: ") + key + " must be an integer, got " + it->dump());
  }
  return it->get<int64_t>();
}

std::optional<uint64_t> get_u64(const nlohmann::json& obj, const char* key) {
  if (!obj.is_object()) return std::nullopt;
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return std::nullopt;
  if (it->is_number_unsigned()) return it->get<uint64_t>();
  if (it->is_number_integer() && it->get<int64_t>() >= 0) return it->get<uint64_t>();
  throw Error(std::string("cgroup: ") + key + " must be a non-negative integer, got " + it->dump());
}

std::string get_str(const nlohmann::json& obj, const char* key) {
  if (!obj.is_object()) return {};
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return {};
  if (!it->is_string()) throw Error(std::string("cgroup: ") + key + " must be a string");
  return it->get<std::string>();
}

std::string hugepage_size(const nlohmann::json& entry) {
  std::string size = get_str(entry, "pageSize");
  size_t digits = 0;
  while (digits < size.size() && std::isdigit(static_cast<unsigned char>(size[digits]))) ++digits;
  const std::string unit = size.substr(digits);
  if (digits == 0 || (unit != "KB" && unit != "MB" && unit != "GB")) {
    throw Error("cgroup: hugepageLimits pageSize must be a number with KB, MB or GB, got \"" +
                size + "\"");
  }
  return size;
}

}  // namespace cgroupfs

namespace {

// systemd's slice naming: "a-b-c.slice" lives in /a.slice/a-b.slice/a-b-c.slice, "-.slice" is
// the root.
std::string expand_slice(const std::string& slice, const std::string& whole) {
  constexpr std::string_view kSuffix = ".slice";
  auto bad = [&](const std::string& why) {
    return Error("cgroup: --systemd-cgroup: slice \"" + slice + "\" in cgroupsPath \"" + whole +
                 "\" " + why);
  };
  if (slice.size() <= kSuffix.size() ||
      slice.compare(slice.size() - kSuffix.size(), kSuffix.size(), kSuffix) != 0) {
    throw bad("does not end in .slice");
  }
  if (slice == "-.slice") return "";
  std::string name = slice.substr(0, slice.size() - kSuffix.size());
  if (name.find('/') != std::string::npos) throw bad("holds a /");
  std::string path;
  std::string prefix;
  size_t at = 0;
  for (;;) {
    size_t dash = name.find('-', at);
    std::string part = name.substr(at, dash == std::string::npos ? dash : dash - at);
    if (part.empty()) throw bad("has an empty part between dashes");
    prefix += (prefix.empty() ? "" : "-") + part;
    path += "/" + prefix + std::string(kSuffix);
    if (dash == std::string::npos) break;
    at = dash + 1;
  }
  return path;
}

}  // namespace

std::string systemd_cgroup_path(const std::string& cgroups_path, const std::string& container_id) {
  std::string spec = cgroups_path.empty() ? "system.slice:cidrun:" + container_id : cgroups_path;
  size_t a = spec.find(':');
  size_t b = a == std::string::npos ? a : spec.find(':', a + 1);
  if (b == std::string::npos || spec.find(':', b + 1) != std::string::npos) {
    throw Error("cgroup: --systemd-cgroup: cgroupsPath \"" + cgroups_path +
                "\" is not slice:prefix:name");
  }
  std::string slice = spec.substr(0, a);
  std::string prefix = spec.substr(a + 1, b - a - 1);
  std::string name = spec.substr(b + 1);
  if (name.empty() || name.find('/') != std::string::npos ||
      prefix.find('/') != std::string::npos) {
    throw Error("cgroup: --systemd-cgroup: cgroupsPath \"" + cgroups_path +
                "\" needs a name, and no / in its prefix or name");
  }
  constexpr std::string_view kSlice = ".slice";
  if (name.size() > kSlice.size() &&
      name.compare(name.size() - kSlice.size(), kSlice.size(), kSlice) == 0) {
    return expand_slice(name, cgroups_path);  // the container is a slice of its own
  }
  std::string parent = expand_slice(slice.empty() ? "system.slice" : slice, cgroups_path);
  std::string unit = (prefix.empty() ? "" : prefix + "-") + name + ".scope";
  return parent + "/" + unit;
}

void attach_self(const std::vector<int>& fds) {
  for (int fd : fds) {
    ssize_t n;
    do {
      n = ::write(fd, "0", 1);
    } while (n < 0 && errno == EINTR);
    if (n < 0) throw_errno("cgroup: move the container's init into its cgroup");
  }
}

namespace {

// For `--no-cgroups` style runs: every operation succeeds and does nothing.
class NoCgroupManager : public CgroupManager {
 public:
  void apply(pid_t) override {}
  void set_resources(const nlohmann::json&) override {}
  void freeze() override { throw Error("cgroup: cannot freeze a container that has no cgroup"); }
  void thaw() override { throw Error("cgroup: cannot thaw a container that has no cgroup"); }
  std::vector<pid_t> pids() override { return {}; }
  void kill_all(int) override {}
  void destroy() override {}
  std::string path() const override { return {}; }
  nlohmann::json stats() override { return nlohmann::json::object(); }
  nlohmann::json save() const override { return {{"version", 0}}; }
  bool enabled() const override { return false; }
};

struct MountEntry {
  std::string mount_point;
  std::string fstype;
};

std::vector<MountEntry> parse_mountinfo(const std::string& text) {
  std::vector<MountEntry> out;
  std::stringstream ss(text);
  std::string line;
  while (std::getline(ss, line)) {
    std::stringstream ls(line);
    std::vector<std::string> fields;
    std::string f;
    while (ls >> f) fields.push_back(f);
    // id parent dev root mountpoint options [optional...] - fstype source superoptions
    size_t dash = 0;
    for (size_t i = 6; i < fields.size(); ++i) {
      if (fields[i] == "-") {
        dash = i;
        break;
      }
    }
    if (dash == 0 || dash + 1 >= fields.size()) continue;
    out.push_back({fields[4], fields[dash + 1]});
  }
  return out;
}

}  // namespace

CgroupVersion detect_cgroup_version(const CgroupHost& host) {
  const std::string text =
      host.mountinfo.empty() ? cgroupfs::read_host_file("/proc/self/mountinfo") : host.mountinfo;
  bool v1 = false;
  CgroupVersion root_type = CgroupVersion::kNone;
  for (const auto& m : parse_mountinfo(text)) {
    // Later mounts on the same point hide earlier ones, so the last one wins.
    if (m.mount_point == host.root) {
      root_type = m.fstype == "cgroup2"  ? CgroupVersion::kV2
                  : m.fstype == "cgroup" ? CgroupVersion::kV1
                                         : CgroupVersion::kNone;
    } else if (m.fstype == "cgroup" &&
               m.mount_point.compare(0, host.root.size() + 1, host.root + "/") == 0) {
      v1 = true;
    }
  }
  if (root_type == CgroupVersion::kV2) return CgroupVersion::kV2;
  if (v1 || root_type == CgroupVersion::kV1) return CgroupVersion::kV1;
  return CgroupVersion::kNone;
}

std::unique_ptr<CgroupManager> CgroupManager::create(const std::string& cgroups_path,
                                                     const std::string& container_id,
                                                     bool disabled) {
  if (disabled) return std::make_unique<NoCgroupManager>();
  CgroupHost host;
  if (const char* v2 = std::getenv("CIDRUN_TEST_CGROUP2_ROOT"); v2 && *v2) {
    host.root = v2;
    host.mountinfo = cgroupfs::read_host_file("/proc/self/mountinfo");
    if (detect_cgroup_version(host) != CgroupVersion::kV2) {
      throw Error(std::string("cgroup: CIDRUN_TEST_CGROUP2_ROOT=") + v2 +
                  " is not a cgroup2 mount point");
    }
  }
  return create(cgroups_path, container_id, host);
}

std::unique_ptr<CgroupManager> CgroupManager::create(const std::string& cgroups_path,
                                                     const std::string& container_id,
                                                     const CgroupHost& host) {
  CgroupHost h = host;
  if (h.mountinfo.empty()) h.mountinfo = cgroupfs::read_host_file("/proc/self/mountinfo");
  if (h.self_cgroup.empty()) h.self_cgroup = cgroupfs::read_host_file("/proc/self/cgroup");
  // An empty path is the default; the backends only see absolute or relative paths.
  const std::string path = cgroups_path.empty() ? "/cidrun/" + container_id : cgroups_path;
  switch (detect_cgroup_version(h)) {
    case CgroupVersion::kV2:
      return make_cgroup_v2(path, h);
    case CgroupVersion::kV1:
      return make_cgroup_v1(path, h);
    case CgroupVersion::kNone:
      break;
  }
  throw Error("cgroup: no cgroup filesystem is mounted at " + h.root +
              " (run without cgroups to start anyway)");
}

std::unique_ptr<CgroupManager> CgroupManager::open(const nlohmann::json& saved) {
  const int version = saved.is_object() ? saved.value("version", -1) : -1;
  if (version == 0) return std::make_unique<NoCgroupManager>();
  if (version == 1) return cgroupfs::open_v1(saved);
  if (version == 2) return cgroupfs::open_v2(saved);
  throw Error("cgroup: saved cgroup state is not understood: " + saved.dump());
}

uint64_t cpu_shares_to_weight(uint64_t shares) {
  if (shares == 0) return 0;
  shares = std::clamp<uint64_t>(shares, 2, 262144);
  return 1 + ((shares - 2) * 9999) / 262142;
}

}  // namespace cidrun::runtime
