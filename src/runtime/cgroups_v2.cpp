// cgroup v2: one unified hierarchy; controllers must be enabled in every parent's
// cgroup.subtree_control before a child can use them.
#include <fcntl.h>
#include <linux/bpf.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstddef>
#include <optional>
#include <set>
#include <sstream>
#include <thread>

#include "runtime/cgroups.h"
#include "util/error.h"
#include "util/fd.h"
#include "util/log.h"

namespace cidrun::runtime {
namespace {

using namespace cgroupfs;

std::string max_or(int64_t v) {
  return v < 0 ? "max" : std::to_string(v);
}

// OCI's memory.swap is memory+swap (the v1 meaning); v2's memory.swap.max is swap alone.
// Follows runc's conversion, including its special cases for "unset" (0) and "unlimited" (-1).
std::optional<int64_t> swap_only(std::optional<int64_t> swap, std::optional<int64_t> limit) {
  const int64_t mem = limit.value_or(0);
  const int64_t total = swap.value_or(0);
  if (mem == -1 && total == 0) return limit ? std::optional<int64_t>(-1) : std::nullopt;
  if (total == -1) return -1;
  if (total == 0) return std::nullopt;
  if (mem == 0 || mem == -1) throw Error("cgroup: memory.swap needs a memory.limit on cgroup v2");
  if (total < mem) throw Error("cgroup: memory.swap (memory+swap) must be >= memory.limit");
  return total - mem;
}

class CgroupV2 : public CgroupManager {
 public:
  CgroupV2(std::string root, std::string path)
      : root_(std::move(root)), path_(std::move(path)), dir_(root_ + path_) {}

  void apply(pid_t pid) override {
    create();
    write(dir_, "cgroup.procs", std::to_string(pid));
  }

  UniqueFd open_clone_target() override {
    create();
    UniqueFd fd(::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!fd.valid()) throw_errno("cgroup: open " + dir_);
    return fd;
  }

  void set_resources(const nlohmann::json& r) override {
    if (r.is_null()) return;
    if (!r.is_object()) throw Error("cgroup: linux.resources must be an object");
    if (auto it = r.find("devices"); it != r.end() && it->is_array() && !it->empty()) {
      set_devices(*it);
    }
    if (auto it = r.find("memory"); it != r.end() && !it->is_null()) set_memory(*it);
    if (auto it = r.find("cpu"); it != r.end() && !it->is_null()) set_cpu(*it);
    if (auto it = r.find("pids"); it != r.end() && !it->is_null()) {
      if (auto limit = get_i64(*it, "limit"); limit && *limit != 0) {
        require("pids", "linux.resources.pids");
        write(dir_, "pids.max", max_or(*limit));
      }
    }
    if (auto it = r.find("blockIO"); it != r.end() && !it->is_null()) set_io(*it);
    if (auto it = r.find("hugepageLimits"); it != r.end() && !it->is_null()) {
      if (!it->is_array()) throw Error("cgroup: linux.resources.hugepageLimits must be an array");
      std::vector<std::pair<std::string, uint64_t>> limits;
      for (const auto& h : *it) {
        auto limit = get_u64(h, "limit");
        if (!limit) throw Error("cgroup: hugepageLimits entries need a limit");
        limits.emplace_back(hugepage_size(h), *limit);
      }
      if (!limits.empty()) require("hugetlb", "linux.resources.hugepageLimits");
      for (const auto& [size, limit] : limits)
        write(dir_, "hugetlb." + size + ".max", std::to_string(limit));
    }
    if (auto it = r.find("network"); it != r.end() && it->is_object() && !it->empty()) {
      throw Error("cgroup: linux.resources.network (net_cls/net_prio) does not exist on cgroup v2");
    }
    if (auto it = r.find("unified"); it != r.end() && !it->is_null()) {
      if (!it->is_object()) throw Error("cgroup: linux.resources.unified must be an object");
      for (const auto& [key, value] : it->items()) {
        // A file of this cgroup only: no path, no hidden or parent entries.
        if (key.empty() || key.find('/') != std::string::npos || key[0] == '.') {
          throw Error("cgroup: invalid linux.resources.unified key \"" + key + "\"");
        }
        if (!value.is_string()) throw Error("cgroup: unified." + key + " must be a string");
        // "memory.high" belongs to the memory controller; "cgroup.*" files are always there.
        if (auto dot = key.find('.');
            dot != std::string::npos && key.compare(0, dot, "cgroup") != 0) {
          require(key.substr(0, dot), "linux.resources.unified." + key);
        }
        write(dir_, key, value.get<std::string>());
      }
    }
  }

  void freeze() override { set_frozen(true); }
  void thaw() override { set_frozen(false); }

  std::vector<pid_t> pids() override { return procs_recursive(dir_); }

  void kill_all(int sig) override {
    // cgroup.kill (5.14+) kills atomically, even processes forking meanwhile.
    if (sig == SIGKILL && exists(dir_, "cgroup.kill")) {
      log::debug("cgroup: SIGKILL to every process of " + dir_ + " through cgroup.kill");
      write(dir_, "cgroup.kill", "1");
      return;
    }
    const bool can_freeze = exists(dir_, "cgroup.freeze");
    if (can_freeze) freeze();
    for (pid_t pid : pids()) {
      if (::kill(pid, sig) < 0 && errno != ESRCH)
        throw_errno("cgroup: kill " + std::to_string(pid));
    }
    if (can_freeze) thaw();
  }

  void destroy() override {
    remove_tree(dir_, [this] {
      if (exists(dir_, "cgroup.kill")) {
        write(dir_, "cgroup.kill", "1");
        return;
      }
      for (pid_t pid : pids()) ::kill(pid, SIGKILL);
    });
  }

  std::string path() const override { return path_; }

  nlohmann::json stats() override {
    nlohmann::json s = nlohmann::json::object();
    auto num = [this](const char* file) -> std::optional<uint64_t> {
      try {
        return std::stoull(read(dir_, file));
      } catch (const std::exception&) {
        return std::nullopt;  // absent, or "max"
      }
    };
    if (auto v = num("memory.current")) {
      s["memory"]["usage"]["usage"] = *v;
      if (auto peak = num("memory.peak")) s["memory"]["usage"]["max"] = *peak;
      s["memory"]["usage"]["limit"] = num("memory.max").value_or(0);
      if (auto swap = num("memory.swap.current")) s["memory"]["swap"]["usage"] = *swap;
    }
    if (auto v = num("pids.current")) {
      s["pids"]["current"] = *v;
      s["pids"]["limit"] = num("pids.max").value_or(0);
    }
    if (exists(dir_, "cpu.stat")) {
      std::stringstream ss(read(dir_, "cpu.stat"));
      std::string key;
      uint64_t value;
      while (ss >> key >> value) {
        // v2 reports microseconds; runc's stats are nanoseconds.
        if (key == "usage_usec") s["cpu"]["usage"]["total"] = value * 1000;
        if (key == "user_usec") s["cpu"]["usage"]["user"] = value * 1000;
        if (key == "system_usec") s["cpu"]["usage"]["kernel"] = value * 1000;
        if (key == "nr_periods") s["cpu"]["throttling"]["periods"] = value;
        if (key == "nr_throttled") s["cpu"]["throttling"]["throttledPeriods"] = value;
        if (key == "throttled_usec") s["cpu"]["throttling"]["throttledTime"] = value * 1000;
      }
    }
    return s;
  }

  nlohmann::json save() const override {
    return {{"version", 2}, {"root", root_}, {"path", path_}};
  }

 private:
  // The cgroup and its parents, with the controllers enabled on the way down.
  void create() {
    std::string cur = root_;
    std::stringstream ss(path_);
    std::string part;
    while (std::getline(ss, part, '/')) {
      if (part.empty()) continue;
      enable_controllers(cur);
      cur += "/" + part;
      if (mkdir(cur.c_str(), 0755) < 0 && errno != EEXIST) throw_errno("cgroup: mkdir " + cur);
    }
  }

  // Makes every controller dir has available to its children, writing only those its
  // cgroup.subtree_control lacks (usually none after the first container). All at once is one
  // write; if the kernel refuses one (a parent with processes of its own, a threaded subtree),
  // they are enabled one by one and the rest kept: require() names a missing one when a limit
  // needs it.
  static void enable_controllers(const std::string& dir) {
    if (!exists(dir, "cgroup.controllers")) return;
    const std::set<std::string> enabled = words(read(dir, "cgroup.subtree_control"));
    std::vector<std::string> controllers;  // in the kernel's order
    std::stringstream ss(read(dir, "cgroup.controllers"));
    std::string word;
    while (ss >> word)
      if (enabled.count(word) == 0) controllers.push_back(word);
    if (controllers.empty()) return;
    std::string all;
    for (const auto& name : controllers) all += (all.empty() ? "+" : " +") + name;
    try {
      write(dir, "cgroup.subtree_control", all);
      return;
    } catch (const Error& e) {
      log::debug(e.what());
    }
    for (const auto& name : controllers) {
      try {
        write(dir, "cgroup.subtree_control", "+" + name);
      } catch (const Error& e) {
        log::debug(e.what());
      }
    }
  }

  static std::set<std::string> words(const std::string& text) {
    std::set<std::string> out;
    std::stringstream ss(text);
    std::string w;
    while (ss >> w) out.insert(w);
    return out;
  }

  static std::string joined(const std::set<std::string>& names) {
    std::string out;
    for (const auto& n : names) out += (out.empty() ? "" : " ") + n;
    return out.empty() ? "none" : out;
  }

  // A limit without its controller must fail with the reason, not as a missing file or not at
  // all: either the hierarchy lacks the controller (a hybrid host's v2 mount) or a parent did not
  // enable it for its children.
  void require(const std::string& controller, const std::string& what) {
    if (!controllers_) controllers_ = words(read(dir_, "cgroup.controllers"));
    if (controllers_->count(controller) != 0) return;
    const std::set<std::string> host = words(read(root_, "cgroup.controllers"));
    if (host.count(controller) == 0) {
      throw Error("cgroup: " + what + " needs the " + controller +
                  " controller, which the cgroup v2 hierarchy at " + root_ +
                  " does not have (it has: " + joined(host) + ")");
    }
    throw Error("cgroup: " + what + " needs the " + controller + " controller, which " + dir_ +
                " does not get from its parent's cgroup.subtree_control (it gets: " +
                joined(*controllers_) + ")");
  }

  void set_memory(const nlohmann::json& m) {
    auto limit = get_i64(m, "limit");
    auto swap = swap_only(get_i64(m, "swap"), limit);
    if (limit || swap || get_i64(m, "reservation")) require("memory", "linux.resources.memory");
    // Swap first when lowering would not matter on v2 (the two are independent files).
    if (limit) write(dir_, "memory.max", max_or(*limit));
    if (swap) write(dir_, "memory.swap.max", max_or(*swap));
    if (auto res = get_i64(m, "reservation")) write(dir_, "memory.low", max_or(*res));
    if (auto it = m.find("disableOOMKiller");
        it != m.end() && it->is_boolean() && it->get<bool>()) {
      throw Error("cgroup: memory.disableOOMKiller is not supported on cgroup v2");
    }
    if (get_u64(m, "swappiness")) {
      log::debug("cgroup: memory.swappiness does not exist on cgroup v2, ignored");
    }
  }

  void set_cpu(const nlohmann::json& c) {
    if (get_u64(c, "shares").value_or(0) || get_i64(c, "quota").value_or(0) ||
        get_u64(c, "period").value_or(0) || get_i64(c, "idle")) {
      require("cpu", "linux.resources.cpu");
    }
    if (!get_str(c, "cpus").empty() || !get_str(c, "mems").empty())
      require("cpuset", "linux.resources.cpu.cpus/mems");
    if (auto shares = get_u64(c, "shares"); shares && *shares) {
      write(dir_, "cpu.weight", std::to_string(cpu_shares_to_weight(*shares)));
    }
    auto quota = get_i64(c, "quota");
    auto period = get_u64(c, "period");
    if ((quota && *quota != 0) || (period && *period != 0)) {
      // "$MAX $PERIOD": a quota of 0 or less is no limit.
      std::string value = quota && *quota > 0 ? std::to_string(*quota) : "max";
      if (period && *period) value += " " + std::to_string(*period);
      write(dir_, "cpu.max", value);
    }
    if (get_i64(c, "realtimeRuntime").value_or(0) || get_u64(c, "realtimePeriod").value_or(0)) {
      throw Error("cgroup: cpu.realtimeRuntime/realtimePeriod are not supported on cgroup v2");
    }
    if (auto idle = get_i64(c, "idle")) write(dir_, "cpu.idle", std::to_string(*idle));
    if (auto cpus = get_str(c, "cpus"); !cpus.empty()) write(dir_, "cpuset.cpus", cpus);
    if (auto mems = get_str(c, "mems"); !mems.empty()) write(dir_, "cpuset.mems", mems);
  }

  void set_io(const nlohmann::json& b) {
    bool any = get_u64(b, "weight").value_or(0) != 0;
    for (const char* key : {"throttleReadBpsDevice", "throttleWriteBpsDevice",
                            "throttleReadIOPSDevice", "throttleWriteIOPSDevice"}) {
      if (auto it = b.find(key); it != b.end() && it->is_array() && !it->empty()) any = true;
    }
    if (any) require("io", "linux.resources.blockIO");
    if (auto w = get_u64(b, "weight"); w && *w) {
      // BFQ takes the v1 range directly; io.weight's range is [1, 10000] (runc's conversion).
      if (exists(dir_, "io.bfq.weight")) {
        write(dir_, "io.bfq.weight", std::to_string(*w));
      } else {
        write(dir_, "io.weight", std::to_string(1 + (*w - 10) * 9999 / 990));
      }
    }
    auto throttle = [&](const char* key, const char* what) {
      auto it = b.find(key);
      if (it == b.end() || it->is_null()) return;
      for (const auto& dev : *it) {
        auto major = get_i64(dev, "major");
        auto minor = get_i64(dev, "minor");
        auto rate = get_u64(dev, "rate");
        if (!major || !minor || !rate) {
          throw Error(std::string("cgroup: blockIO.") + key + " entries need major, minor, rate");
        }
        write(dir_, "io.max",
              std::to_string(*major) + ":" + std::to_string(*minor) + " " + what + "=" +
                  (*rate == 0 ? std::string("max") : std::to_string(*rate)));
      }
    };
    throttle("throttleReadBpsDevice", "rbps");
    throttle("throttleWriteBpsDevice", "wbps");
    throttle("throttleReadIOPSDevice", "riops");
    throttle("throttleWriteIOPSDevice", "wiops");
  }

  void set_devices(const nlohmann::json& rules);

  // cgroup.events' "frozen" line turns to the new state once every task has stopped or resumed.
  void set_frozen(bool frozen) {
    if (!exists(dir_, "cgroup.freeze")) {
      throw Error("cgroup: " + dir_ + "/cgroup.freeze is missing (freezing needs Linux 5.2+)");
    }
    write(dir_, "cgroup.freeze", frozen ? "1" : "0");
    const std::string want = frozen ? "frozen 1" : "frozen 0";
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    for (int i = 0;; ++i) {
      const std::string events = read(dir_, "cgroup.events");
      if (events.find(want) != std::string::npos) return;
      if (std::chrono::steady_clock::now() > deadline) {
        if (frozen) write(dir_, "cgroup.freeze", "0");
        throw Error("cgroup: " + dir_ + "/cgroup.events never reported \"" + want + "\"");
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(i < 10 ? 1 : 10));
    }
  }

  std::string root_;
  std::string path_;
  std::string dir_;
  std::optional<std::set<std::string>> controllers_;  // this cgroup's cgroup.controllers
};

// ---- devices: cgroup v2 has no devices.allow; an eBPF program attached to the cgroup decides ----

struct DeviceRule {
  bool allow;
  int type;              // BPF_DEVCG_DEV_*, 0 for "a" (any)
  int64_t major, minor;  // -1 for any
  uint32_t access;       // BPF_DEVCG_ACC_* bits
};

DeviceRule parse_device_rule(const nlohmann::json& rule) {
  if (!rule.is_object() || !rule.contains("allow") || !rule["allow"].is_boolean()) {
    throw Error("cgroup: device rule needs a boolean \"allow\": " + rule.dump());
  }
  DeviceRule r{rule["allow"].get<bool>(), 0, get_i64(rule, "major").value_or(-1),
               get_i64(rule, "minor").value_or(-1), 0};
  const std::string type = get_str(rule, "type");
  if (type == "b") {
    r.type = BPF_DEVCG_DEV_BLOCK;
  } else if (type == "c") {
    r.type = BPF_DEVCG_DEV_CHAR;
  } else if (!type.empty() && type != "a") {
    throw Error("cgroup: device rule type must be a, b or c, got " + type);
  }
  std::string access = get_str(rule, "access");
  if (access.empty()) access = "rwm";
  for (char c : access) {
    if (c == 'r')
      r.access |= BPF_DEVCG_ACC_READ;
    else if (c == 'w')
      r.access |= BPF_DEVCG_ACC_WRITE;
    else if (c == 'm')
      r.access |= BPF_DEVCG_ACC_MKNOD;
    else
      throw Error("cgroup: device rule access must be made of r, w and m, got " + access);
  }
  return r;
}

bpf_insn insn(uint8_t code, uint8_t dst, uint8_t src, int16_t off, int32_t imm) {
  bpf_insn i{};
  i.code = code;
  i.dst_reg = dst & 0xf;
  i.src_reg = src & 0xf;
  i.off = off;
  i.imm = imm;
  return i;
}

// The program reads the request into r2 (type), r3 (access), r4 (major), r5 (minor), then tries
// the rules from last to first: the last matching rule wins, as with v1's devices.allow/deny
// written in order. An allow rule matches when it grants every requested access; a deny rule
// when it refuses any of them. A request no rule matches is allowed, as in a fresh v1 cgroup
// (configs start with "deny all", which then matches everything).
std::vector<bpf_insn> device_program(const std::vector<DeviceRule>& rules) {
  constexpr uint8_t kLdxW = BPF_LDX | BPF_MEM | BPF_W;
  std::vector<bpf_insn> p = {
      insn(kLdxW, 2, 1, offsetof(bpf_cgroup_dev_ctx, access_type), 0),
      insn(BPF_ALU | BPF_AND | BPF_K, 2, 0, 0, 0xffff),
      insn(kLdxW, 3, 1, offsetof(bpf_cgroup_dev_ctx, access_type), 0),
      insn(BPF_ALU | BPF_RSH | BPF_K, 3, 0, 0, 16),
      insn(kLdxW, 4, 1, offsetof(bpf_cgroup_dev_ctx, major), 0),
      insn(kLdxW, 5, 1, offsetof(bpf_cgroup_dev_ctx, minor), 0),
  };
  constexpr uint32_t kAll = BPF_DEVCG_ACC_READ | BPF_DEVCG_ACC_WRITE | BPF_DEVCG_ACC_MKNOD;
  for (auto it = rules.rbegin(); it != rules.rend(); ++it) {
    const DeviceRule& r = *it;
    // Each failed test jumps to the next rule; the offsets are filled in once the block is out.
    std::vector<size_t> jumps;
    auto jump_unless = [&](uint8_t op, uint8_t reg, int64_t value) {
      jumps.push_back(p.size());
      p.push_back(insn(BPF_JMP | op | BPF_K, reg, 0, 0, static_cast<int32_t>(value)));
    };
    if (r.type) jump_unless(BPF_JNE, 2, r.type);
    if (r.access != kAll) {
      p.push_back(insn(BPF_ALU64 | BPF_MOV | BPF_X, 6, 3, 0, 0));
      if (r.allow) {
        p.push_back(
            insn(BPF_ALU | BPF_AND | BPF_K, 6, 0, 0, static_cast<int32_t>(~r.access & kAll)));
        jump_unless(BPF_JNE, 6, 0);
      } else {
        p.push_back(insn(BPF_ALU | BPF_AND | BPF_K, 6, 0, 0, static_cast<int32_t>(r.access)));
        jump_unless(BPF_JEQ, 6, 0);
      }
    }
    if (r.major >= 0) jump_unless(BPF_JNE, 4, r.major);
    if (r.minor >= 0) jump_unless(BPF_JNE, 5, r.minor);
    p.push_back(insn(BPF_ALU64 | BPF_MOV | BPF_K, 0, 0, 0, r.allow ? 1 : 0));
    p.push_back(insn(BPF_JMP | BPF_EXIT, 0, 0, 0, 0));
    // A rule that matches every request makes the rules before it and the default
    // unreachable, and the verifier refuses unreachable instructions.
    if (jumps.empty()) return p;
    for (size_t j : jumps) p[j].off = static_cast<int16_t>(p.size() - j - 1);
  }
  p.push_back(insn(BPF_ALU64 | BPF_MOV | BPF_K, 0, 0, 0, 1));
  p.push_back(insn(BPF_JMP | BPF_EXIT, 0, 0, 0, 0));
  return p;
}

long bpf(int cmd, bpf_attr& attr) {
  return syscall(SYS_bpf, cmd, &attr, sizeof attr);
}

void CgroupV2::set_devices(const nlohmann::json& rules) {
  if (!rules.is_array()) throw Error("cgroup: linux.resources.devices must be an array");
  std::vector<DeviceRule> parsed;
  for (const auto& rule : rules) parsed.push_back(parse_device_rule(rule));
  const std::vector<bpf_insn> program = device_program(parsed);

  UniqueFd cgroup(::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!cgroup.valid()) throw_errno("cgroup: open " + dir_);

  static const char kLicense[] = "GPL";
  bpf_attr load{};
  load.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
  load.insns = reinterpret_cast<uintptr_t>(program.data());
  load.insn_cnt = static_cast<uint32_t>(program.size());
  load.license = reinterpret_cast<uintptr_t>(kLicense);
  // Without a log: a verifier log that outgrows its buffer fails the load itself (ENOSPC), and
  // the log of a program that passes is of no use. A refused program is loaded again with a
  // log, for the reason.
  UniqueFd prog(static_cast<int>(bpf(BPF_PROG_LOAD, load)));
  if (!prog.valid()) {
    const int err = errno;
    std::string verifier_log(1 << 20, '\0');
    load.log_buf = reinterpret_cast<uintptr_t>(verifier_log.data());
    load.log_size = static_cast<uint32_t>(verifier_log.size());
    load.log_level = 1;
    prog.reset(static_cast<int>(bpf(BPF_PROG_LOAD, load)));
    if (!prog.valid()) {
      // The verifier's last line says what it refused (the log has a line per instruction).
      std::string why = verifier_log.c_str();
      while (!why.empty() && why.back() == '\n') why.pop_back();
      if (auto nl = why.rfind('\n'); nl != std::string::npos) why = why.substr(nl + 1);
      errno = err;
      throw_errno("cgroup: load eBPF device program of " + std::to_string(program.size()) +
                  " instructions" + (why.empty() ? "" : " (" + why + ")"));
    }
  }

  // Programs a previous set_resources attached: replaced, so updates do not pile up.
  std::vector<uint32_t> old_ids(64);
  bpf_attr query{};
  query.query.target_fd = static_cast<uint32_t>(cgroup.get());
  query.query.attach_type = BPF_CGROUP_DEVICE;
  query.query.prog_ids = reinterpret_cast<uintptr_t>(old_ids.data());
  query.query.prog_cnt = static_cast<uint32_t>(old_ids.size());
  if (bpf(BPF_PROG_QUERY, query) < 0) throw_errno("cgroup: query device programs of " + dir_);
  old_ids.resize(query.query.prog_cnt);

  bpf_attr attach{};
  attach.target_fd = static_cast<uint32_t>(cgroup.get());
  attach.attach_bpf_fd = static_cast<uint32_t>(prog.get());
  attach.attach_type = BPF_CGROUP_DEVICE;
  attach.attach_flags = BPF_F_ALLOW_MULTI;
  if (bpf(BPF_PROG_ATTACH, attach) < 0)
    throw_errno("cgroup: attach eBPF device program to " + dir_);

  for (uint32_t id : old_ids) {
    bpf_attr get{};
    get.prog_id = id;
    UniqueFd old(static_cast<int>(bpf(BPF_PROG_GET_FD_BY_ID, get)));
    if (!old.valid()) continue;  // detached meanwhile
    bpf_attr detach{};
    detach.target_fd = static_cast<uint32_t>(cgroup.get());
    detach.attach_bpf_fd = static_cast<uint32_t>(old.get());
    detach.attach_type = BPF_CGROUP_DEVICE;
    if (bpf(BPF_PROG_DETACH, detach) < 0 && errno != ENOENT) {
      throw_errno("cgroup: detach old eBPF device program from " + dir_);
    }
  }
}

}  // namespace

std::unique_ptr<CgroupManager> make_cgroup_v2(const std::string& cgroups_path,
                                              const CgroupHost& host) {
  const std::string self =
      host.self_cgroup.empty() ? read_host_file("/proc/self/cgroup") : host.self_cgroup;
  return std::make_unique<CgroupV2>(host.root,
                                    resolve_path(cgroups_path, "", own_cgroup(self, "")));
}

namespace cgroupfs {
std::unique_ptr<CgroupManager> open_v2(const nlohmann::json& saved) {
  try {
    return std::make_unique<CgroupV2>(saved.at("root").get<std::string>(),
                                      saved.at("path").get<std::string>());
  } catch (const nlohmann::json::exception& e) {
    throw Error(std::string("cgroup: saved v2 cgroup state is malformed: ") + e.what());
  }
}
}  // namespace cgroupfs

}  // namespace cidrun::runtime
