// cgroup v1: one hierarchy per controller (or group of controllers) mounted under the root; the
// container gets the same path in each of them.
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>

#include <cerrno>
#include <chrono>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include "runtime/cgroups.h"
#include "util/error.h"
#include "util/log.h"

namespace cidrun::runtime {
namespace {

using namespace cgroupfs;

std::string limit_value(int64_t v) {
  return v < 0 ? "-1" : std::to_string(v);
}

std::string device_rule(const nlohmann::json& rule) {
  if (!rule.is_object()) throw Error("cgroup: devices entries must be objects");
  std::string type = get_str(rule, "type");
  if (type.empty()) type = "a";
  if (type != "a" && type != "b" && type != "c") {
    throw Error("cgroup: device rule type must be a, b or c, got " + type);
  }
  auto number = [&](const char* key) {
    auto v = get_i64(rule, key);
    return (!v || *v < 0) ? std::string("*") : std::to_string(*v);
  };
  std::string access = get_str(rule, "access");
  if (access.empty()) access = "rwm";
  if (access.find_first_not_of("rwm") != std::string::npos) {
    throw Error("cgroup: device rule access must be made of r, w and m, got " + access);
  }
  return type + " " + number("major") + ":" + number("minor") + " " + access;
}

class CgroupV1 : public CgroupManager {
 public:
  // dirs: controller name ("memory", "name=systemd") -> absolute directory of our cgroup there;
  // mounts: controller -> where its hierarchy is mounted.
  CgroupV1(std::string path, std::map<std::string, std::string> dirs,
           std::map<std::string, std::string> mounts)
      : path_(std::move(path)), dirs_(std::move(dirs)), mounts_(std::move(mounts)) {}

  void apply(pid_t pid) override {
    for (const auto& d : create_dirs()) write(d, "cgroup.procs", std::to_string(pid));
  }

  std::vector<UniqueFd> open_self_attach() override {
    std::vector<UniqueFd> fds;
    for (const auto& d : create_dirs()) {
      const std::string tasks = d + "/tasks";
      fds.emplace_back(::open(tasks.c_str(), O_WRONLY | O_CLOEXEC));
      if (!fds.back().valid()) throw_errno("cgroup: open " + tasks);
    }
    return fds;
  }

  void set_resources(const nlohmann::json& r) override {
    if (r.is_null()) return;
    if (!r.is_object()) throw Error("cgroup: linux.resources must be an object");
    if (auto it = r.find("unified"); it != r.end() && it->is_object() && !it->empty()) {
      throw Error("cgroup: linux.resources.unified needs cgroup v2, this host uses v1");
    }
    if (auto it = r.find("devices"); it != r.end() && !it->is_null()) set_devices(*it);
    if (auto it = r.find("memory"); it != r.end() && !it->is_null()) set_memory(*it);
    if (auto it = r.find("cpu"); it != r.end() && !it->is_null()) set_cpu(*it);
    if (auto it = r.find("pids"); it != r.end() && !it->is_null()) {
      if (auto limit = get_i64(*it, "limit"); limit && *limit != 0) {
        write(dir("pids"), "pids.max", *limit < 0 ? "max" : std::to_string(*limit));
      }
    }
    if (auto it = r.find("blockIO"); it != r.end() && !it->is_null()) set_blkio(*it);
    if (auto it = r.find("hugepageLimits"); it != r.end() && !it->is_null()) {
      if (!it->is_array()) throw Error("cgroup: linux.resources.hugepageLimits must be an array");
      std::vector<std::pair<std::string, uint64_t>> limits;
      for (const auto& h : *it) {
        auto limit = get_u64(h, "limit");
        if (!limit) throw Error("cgroup: hugepageLimits entries need a limit");
        limits.emplace_back(hugepage_size(h), *limit);
      }
      for (const auto& [size, limit] : limits)
        write(dir("hugetlb"), "hugetlb." + size + ".limit_in_bytes", std::to_string(limit));
    }
    if (auto it = r.find("network"); it != r.end() && !it->is_null()) {
      if (auto id = get_u64(*it, "classID"))
        write(dir("net_cls"), "net_cls.classid", std::to_string(*id));
      if (auto p = it->find("priorities"); p != it->end() && p->is_array()) {
        for (const auto& prio : *p) {
          write(
              dir("net_prio"), "net_prio.ifpriomap",
              get_str(prio, "name") + " " + std::to_string(get_u64(prio, "priority").value_or(0)));
        }
      }
    }
  }

  void freeze() override { set_freezer("FROZEN"); }
  void thaw() override { set_freezer("THAWED"); }

  std::vector<pid_t> pids() override { return procs_recursive(any_dir()); }

  void kill_all(int sig) override {
    const bool can_freeze =
        dirs_.count("freezer") != 0 && exists(dirs_.at("freezer"), "freezer.state");
    if (can_freeze) freeze();
    for (pid_t pid : pids()) {
      if (::kill(pid, sig) < 0 && errno != ESRCH)
        throw_errno("cgroup: kill " + std::to_string(pid));
    }
    if (can_freeze) thaw();
  }

  void destroy() override {
    // Frozen processes would not die from SIGKILL until thawed.
    if (dirs_.count("freezer") && exists(dirs_.at("freezer"), "freezer.state")) {
      try {
        if (read(dirs_.at("freezer"), "freezer.state") != "THAWED") thaw();
      } catch (const Error& e) {
        log::debug(e.what());
      }
    }
    auto kill_leftovers = [this] {
      for (pid_t pid : pids()) ::kill(pid, SIGKILL);
    };
    for (const auto& d : unique_dirs()) remove_tree(d, kill_leftovers);
  }

  std::string path() const override { return path_; }

  nlohmann::json stats() override {
    nlohmann::json s = nlohmann::json::object();
    auto num = [](const std::string& d, const char* file) -> std::optional<uint64_t> {
      try {
        return std::stoull(read(d, file));
      } catch (const std::exception&) {
        return std::nullopt;
      }
    };
    auto put = [](nlohmann::json& obj, const char* key, std::optional<uint64_t> v) {
      if (v) obj[key] = *v;
    };
    if (auto it = dirs_.find("memory"); it != dirs_.end()) {
      nlohmann::json usage = nlohmann::json::object();
      put(usage, "usage", num(it->second, "memory.usage_in_bytes"));
      put(usage, "max", num(it->second, "memory.max_usage_in_bytes"));
      put(usage, "limit", num(it->second, "memory.limit_in_bytes"));
      put(usage, "failcnt", num(it->second, "memory.failcnt"));
      s["memory"]["usage"] = usage;
      nlohmann::json swap = nlohmann::json::object();
      put(swap, "usage", num(it->second, "memory.memsw.usage_in_bytes"));
      put(swap, "limit", num(it->second, "memory.memsw.limit_in_bytes"));
      if (!swap.empty()) s["memory"]["swap"] = swap;
    }
    if (auto it = dirs_.find("pids"); it != dirs_.end()) {
      put(s["pids"], "current", num(it->second, "pids.current"));
      // "max" reads as 0, runc's convention for no limit.
      s["pids"]["limit"] = num(it->second, "pids.max").value_or(0);
    }
    if (auto it = dirs_.find("cpuacct"); it != dirs_.end()) {
      nlohmann::json usage = nlohmann::json::object();
      put(usage, "total", num(it->second, "cpuacct.usage"));
      put(usage, "user", num(it->second, "cpuacct.usage_user"));
      put(usage, "kernel", num(it->second, "cpuacct.usage_sys"));
      s["cpu"]["usage"] = usage;
    }
    if (auto it = dirs_.find("cpu"); it != dirs_.end() && exists(it->second, "cpu.stat")) {
      std::stringstream ss(read(it->second, "cpu.stat"));
      std::string key;
      uint64_t value;
      while (ss >> key >> value) {
        if (key == "nr_periods") s["cpu"]["throttling"]["periods"] = value;
        if (key == "nr_throttled") s["cpu"]["throttling"]["throttledPeriods"] = value;
        if (key == "throttled_time") s["cpu"]["throttling"]["throttledTime"] = value;
      }
    }
    return s;
  }

  nlohmann::json save() const override {
    return {{"version", 1}, {"path", path_}, {"dirs", dirs_}, {"mounts", mounts_}};
  }

 private:
  const std::string& dir(const std::string& controller) const {
    auto it = dirs_.find(controller);
    if (it == dirs_.end()) {
      throw Error("cgroup: the " + controller + " controller is not mounted on this host");
    }
    return it->second;
  }

  // Any hierarchy holds all the container's processes; prefer ones every host has.
  const std::string& any_dir() const {
    for (const char* c : {"pids", "freezer", "memory", "cpu", "devices"}) {
      if (auto it = dirs_.find(c); it != dirs_.end()) return it->second;
    }
    if (dirs_.empty()) throw Error("cgroup: no v1 hierarchy is mounted");
    return dirs_.begin()->second;
  }

  // Every hierarchy's directory of the cgroup, made where missing (once per directory).
  std::vector<std::string> create_dirs() const {
    std::set<std::string> done;
    std::vector<std::string> out;
    auto cpuset = dirs_.find("cpuset");
    for (const auto& [controller, d] : dirs_) {
      if (!done.insert(d).second) continue;
      // Co-mounted controllers share the directory: cpuset's rules apply if it is among them.
      create_dir(mounts_.at(controller), d, cpuset != dirs_.end() && cpuset->second == d);
      out.push_back(d);
    }
    return out;
  }

  // Co-mounted controllers (cpu,cpuacct) share one directory.
  std::vector<std::string> unique_dirs() const {
    std::set<std::string> seen;
    std::vector<std::string> out;
    for (const auto& [c, d] : dirs_) {
      if (seen.insert(d).second) out.push_back(d);
    }
    return out;
  }

  // mkdir -p, and a new cpuset cgroup starts with no cpus and mems: copy them from its parent
  // at every level, or nothing could run in it.
  static void create_dir(const std::string& mount, const std::string& dir, bool cpuset) {
    // The parents usually exist already: one mkdir then, unless this is cpuset.
    if (!cpuset && mkdir(dir.c_str(), 0755) == 0) return;
    std::string cur = mount;
    std::stringstream ss(dir.substr(mount.size()));
    std::string part;
    while (std::getline(ss, part, '/')) {
      if (part.empty()) continue;
      const std::string parent = cur;
      cur += "/" + part;
      if (mkdir(cur.c_str(), 0755) < 0 && errno != EEXIST) throw_errno("cgroup: mkdir " + cur);
      if (!cpuset) continue;
      for (const char* file : {"cpuset.cpus", "cpuset.mems"}) {
        if (read(cur, file).empty()) write(cur, file, read(parent, file));
      }
    }
  }

  void set_memory(const nlohmann::json& m) {
    auto limit = get_i64(m, "limit");
    auto swap = get_i64(m, "swap");
    if (auto res = get_i64(m, "reservation")) {
      write(dir("memory"), "memory.soft_limit_in_bytes", limit_value(*res));
    }
    const std::string& d = limit || swap ? dir("memory") : std::string();
    const bool has_swap_file = !d.empty() && exists(d, "memory.memsw.limit_in_bytes");
    // Unlimited memory with swap unspecified means both unlimited (runc), else the old swap
    // limit would still cap the memory.
    if (limit && *limit < 0 && !swap && has_swap_file) swap = -1;
    if (swap && !has_swap_file) {
      throw Error(
          "cgroup: memory.swap needs swap accounting (memory.memsw.limit_in_bytes is absent)");
    }
    if (limit && swap) {
      // memsw must stay >= the memory limit at every moment: raise it first, lower it last.
      uint64_t current_swap = 0;
      try {
        current_swap = std::stoull(read(d, "memory.memsw.limit_in_bytes"));
      } catch (const std::exception&) {
      }
      if (*swap < 0 || static_cast<uint64_t>(*swap) >= current_swap) {
        write(d, "memory.memsw.limit_in_bytes", limit_value(*swap));
        write(d, "memory.limit_in_bytes", limit_value(*limit));
      } else {
        write(d, "memory.limit_in_bytes", limit_value(*limit));
        write(d, "memory.memsw.limit_in_bytes", limit_value(*swap));
      }
    } else if (limit) {
      write(d, "memory.limit_in_bytes", limit_value(*limit));
    } else if (swap) {
      write(d, "memory.memsw.limit_in_bytes", limit_value(*swap));
    }
    if (auto sw = get_u64(m, "swappiness"); sw && *sw <= 100) {
      write(dir("memory"), "memory.swappiness", std::to_string(*sw));
    } else if (sw) {
      throw Error("cgroup: memory.swappiness must be 0..100, got " + std::to_string(*sw));
    }
    if (auto it = m.find("disableOOMKiller");
        it != m.end() && it->is_boolean() && it->get<bool>()) {
      write(dir("memory"), "memory.oom_control", "1");
    }
    if (auto tcp = get_i64(m, "kernelTCP")) {
      // The kernel still honours it where v1 has the file; without the file it is an error, as
      // for any field this backend cannot apply.
      if (!exists(dir("memory"), "memory.kmem.tcp.limit_in_bytes"))
        throw Error("cgroup: memory.kernelTCP needs memory.kmem.tcp.limit_in_bytes, absent here");
      write(dir("memory"), "memory.kmem.tcp.limit_in_bytes", limit_value(*tcp));
    }
    if (get_i64(m, "kernel")) {
      log::debug("cgroup: memory.kernel is deprecated by the kernel, ignored");
    }
  }

  void set_cpu(const nlohmann::json& c) {
    if (auto shares = get_u64(c, "shares"); shares && *shares) {
      write(dir("cpu"), "cpu.shares", std::to_string(*shares));
    }
    auto period = get_u64(c, "period");
    auto quota = get_i64(c, "quota");
    if (period && *period) {
      try {
        write(dir("cpu"), "cpu.cfs_period_us", std::to_string(*period));
      } catch (const Error&) {
        // A period the kernel refuses with the old quota in place: set the quota first.
        if (!quota) throw;
        write(dir("cpu"), "cpu.cfs_quota_us", std::to_string(*quota));
        write(dir("cpu"), "cpu.cfs_period_us", std::to_string(*period));
      }
    }
    if (quota && *quota) write(dir("cpu"), "cpu.cfs_quota_us", std::to_string(*quota));
    if (auto rt = get_u64(c, "realtimePeriod"); rt && *rt) {
      write(dir("cpu"), "cpu.rt_period_us", std::to_string(*rt));
    }
    if (auto rt = get_i64(c, "realtimeRuntime"); rt && *rt) {
      write(dir("cpu"), "cpu.rt_runtime_us", std::to_string(*rt));
    }
    if (auto idle = get_i64(c, "idle")) write(dir("cpu"), "cpu.idle", std::to_string(*idle));
    if (auto cpus = get_str(c, "cpus"); !cpus.empty()) write(dir("cpuset"), "cpuset.cpus", cpus);
    if (auto mems = get_str(c, "mems"); !mems.empty()) write(dir("cpuset"), "cpuset.mems", mems);
  }

  void set_devices(const nlohmann::json& rules) {
    if (!rules.is_array()) throw Error("cgroup: linux.resources.devices must be an array");
    // Build every line first so that a bad rule changes nothing.
    std::vector<std::pair<bool, std::string>> lines;
    for (const auto& rule : rules) {
      auto allow = rule.is_object() ? rule.find("allow") : rule.end();
      if (!rule.is_object() || allow == rule.end() || !allow->is_boolean()) {
        throw Error("cgroup: device rule needs a boolean \"allow\": " + rule.dump());
      }
      lines.emplace_back(allow->get<bool>(), device_rule(rule));
    }
    for (const auto& [allow, line] : lines) {
      write(dir("devices"), allow ? "devices.allow" : "devices.deny", line);
    }
  }

  void set_blkio(const nlohmann::json& b) {
    if (auto w = get_u64(b, "weight"); w && *w) {
      const std::string& d = dir("blkio");
      write(d, exists(d, "blkio.weight") ? "blkio.weight" : "blkio.bfq.weight", std::to_string(*w));
    }
    if (auto w = get_u64(b, "leafWeight"); w && *w) {
      write(dir("blkio"), "blkio.leaf_weight", std::to_string(*w));
    }
    auto devices = [&](const char* key, const char* file, const char* value_key) {
      auto it = b.find(key);
      if (it == b.end() || it->is_null()) return;
      for (const auto& dev : *it) {
        auto major = get_i64(dev, "major");
        auto minor = get_i64(dev, "minor");
        auto value = get_u64(dev, value_key);
        if (!major || !minor || !value) {
          throw Error(std::string("cgroup: blockIO.") + key + " entries need major, minor and " +
                      value_key);
        }
        write(dir("blkio"), file,
              std::to_string(*major) + ":" + std::to_string(*minor) + " " + std::to_string(*value));
      }
    };
    devices("weightDevice", "blkio.weight_device", "weight");
    devices("throttleReadBpsDevice", "blkio.throttle.read_bps_device", "rate");
    devices("throttleWriteBpsDevice", "blkio.throttle.write_bps_device", "rate");
    devices("throttleReadIOPSDevice", "blkio.throttle.read_iops_device", "rate");
    devices("throttleWriteIOPSDevice", "blkio.throttle.write_iops_device", "rate");
  }

  // freezer.state goes FREEZING -> FROZEN once every task has stopped; a task in an
  // uninterruptible sleep can hold it in FREEZING, and rewriting the state retries the freeze.
  void set_freezer(const std::string& state) {
    const std::string& d = dir("freezer");
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    std::string now;
    for (int i = 0; std::chrono::steady_clock::now() <= deadline; ++i) {
      if (i % 50 == 0) write(d, "freezer.state", state);
      now = read(d, "freezer.state");
      if (now == state) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(i < 10 ? 1 : 10));
    }
    if (state == "FROZEN") write(d, "freezer.state", "THAWED");
    throw Error("cgroup: " + d + "/freezer.state stayed " + now + " instead of " + state);
  }

  std::string path_;
  std::map<std::string, std::string> dirs_;
  std::map<std::string, std::string> mounts_;
};

}  // namespace

std::unique_ptr<CgroupManager> make_cgroup_v1(const std::string& cgroups_path,
                                              const CgroupHost& host) {
  const std::string mountinfo =
      host.mountinfo.empty() ? read_host_file("/proc/self/mountinfo") : host.mountinfo;
  const std::string self =
      host.self_cgroup.empty() ? read_host_file("/proc/self/cgroup") : host.self_cgroup;
  std::map<std::string, std::string> dirs;
  std::map<std::string, std::string> mounts;
  std::string resolved_any;
  std::stringstream ss(mountinfo);
  std::string line;
  while (std::getline(ss, line)) {
    std::stringstream ls(line);
    std::vector<std::string> f;
    std::string w;
    while (ls >> w) f.push_back(w);
    size_t dash = 0;
    for (size_t i = 6; i < f.size(); ++i) {
      if (f[i] == "-") {
        dash = i;
        break;
      }
    }
    if (dash == 0 || dash + 3 >= f.size() || f[dash + 1] != "cgroup") continue;
    const std::string& mount = f[4];
    if (mount.compare(0, host.root.size() + 1, host.root + "/") != 0) continue;
    // The super options list the controllers of this hierarchy: "rw,cpu,cpuacct".
    std::stringstream opts(f[dash + 3]);
    std::string opt;
    while (std::getline(opts, opt, ',')) {
      if (opt == "rw" || opt == "ro" || opt.find('=') != std::string::npos) {
        if (opt.compare(0, 5, "name=") != 0) continue;
      }
      // A relative cgroupsPath is below our own cgroup, which differs per hierarchy.
      const std::string path = resolve_path(cgroups_path, "", own_cgroup(self, opt));
      // The mount's root (field 4) is the part of the hierarchy visible here, e.g. inside a
      // cgroup namespace; our paths from /proc/self/cgroup are relative to the same view.
      dirs[opt] = mount + path;
      mounts[opt] = mount;
      resolved_any = path;
    }
  }
  if (dirs.empty()) throw Error("cgroup: no cgroup v1 hierarchy is mounted under " + host.root);
  // Relative paths resolve per hierarchy; the container's path is reported from one of them.
  return std::make_unique<CgroupV1>(resolved_any, std::move(dirs), std::move(mounts));
}

namespace cgroupfs {
std::unique_ptr<CgroupManager> open_v1(const nlohmann::json& saved) {
  try {
    return std::make_unique<CgroupV1>(saved.at("path").get<std::string>(),
                                      saved.at("dirs").get<std::map<std::string, std::string>>(),
                                      saved.at("mounts").get<std::map<std::string, std::string>>());
  } catch (const nlohmann::json::exception& e) {
    throw Error(std::string("cgroup: saved v1 cgroup state is malformed: ") + e.what());
  }
}
}  // namespace cgroupfs

}  // namespace cidrun::runtime
