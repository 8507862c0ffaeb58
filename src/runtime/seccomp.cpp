#include "runtime/seccomp.h"

#include <seccomp.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <memory>
#include <set>

#include "util/error.h"
#include "util/fd.h"
#include "util/log.h"

namespace cidrun::runtime {
namespace {

struct FilterDeleter {
  void operator()(void* ctx) const { seccomp_release(ctx); }
};
using Filter = std::unique_ptr<void, FilterDeleter>;

[[noreturn]] void fail(const std::string& msg) {
  throw Error("seccomp: " + msg);
}

// libseccomp returns -errno instead of setting errno.
void check(int rc, const std::string& what) {
  if (rc < 0) throw_errno("seccomp: " + what, -rc);
}

struct Named {
  const char* name;
  uint32_t value;
};

constexpr Named kArchs[] = {
    {"SCMP_ARCH_X86", SCMP_ARCH_X86},
    {"SCMP_ARCH_X86_64", SCMP_ARCH_X86_64},
    {"SCMP_ARCH_X32", SCMP_ARCH_X32},
    {"SCMP_ARCH_ARM", SCMP_ARCH_ARM},
    {"SCMP_ARCH_AARCH64", SCMP_ARCH_AARCH64},
    {"SCMP_ARCH_MIPS", SCMP_ARCH_MIPS},
    {"SCMP_ARCH_MIPS64", SCMP_ARCH_MIPS64},
    {"SCMP_ARCH_MIPS64N32", SCMP_ARCH_MIPS64N32},
    {"SCMP_ARCH_MIPSEL", SCMP_ARCH_MIPSEL},
    {"SCMP_ARCH_MIPSEL64", SCMP_ARCH_MIPSEL64},
    {"SCMP_ARCH_MIPSEL64N32", SCMP_ARCH_MIPSEL64N32},
    {"SCMP_ARCH_PPC", SCMP_ARCH_PPC},
    {"SCMP_ARCH_PPC64", SCMP_ARCH_PPC64},
    {"SCMP_ARCH_PPC64LE", SCMP_ARCH_PPC64LE},
    {"SCMP_ARCH_S390", SCMP_ARCH_S390},
    {"SCMP_ARCH_S390X", SCMP_ARCH_S390X},
    {"SCMP_ARCH_PARISC", SCMP_ARCH_PARISC},
    {"SCMP_ARCH_PARISC64", SCMP_ARCH_PARISC64},
    {"SCMP_ARCH_RISCV64", SCMP_ARCH_RISCV64},
};

constexpr Named kOperators[] = {
    {"SCMP_CMP_NE", SCMP_CMP_NE},
    {"SCMP_CMP_LT", SCMP_CMP_LT},
    {"SCMP_CMP_LE", SCMP_CMP_LE},
    {"SCMP_CMP_EQ", SCMP_CMP_EQ},
    {"SCMP_CMP_GE", SCMP_CMP_GE},
    {"SCMP_CMP_GT", SCMP_CMP_GT},
    {"SCMP_CMP_MASKED_EQ", SCMP_CMP_MASKED_EQ},
};

constexpr Named kFlags[] = {
    {"SECCOMP_FILTER_FLAG_TSYNC", SCMP_FLTATR_CTL_TSYNC},
    {"SECCOMP_FILTER_FLAG_LOG", SCMP_FLTATR_CTL_LOG},
    {"SECCOMP_FILTER_FLAG_SPEC_ALLOW", SCMP_FLTATR_CTL_SSB},
};

constexpr const char* kActions[] = {
    "SCMP_ACT_KILL",  "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_TRAP",
    "SCMP_ACT_ERRNO", "SCMP_ACT_TRACE",        "SCMP_ACT_ALLOW",       "SCMP_ACT_LOG",
};

template <size_t N>
const Named* find_named(const Named (&table)[N], const std::string& name) {
  for (const auto& n : table) {
    if (name == n.name) return &n;
  }
  return nullptr;
}

const char* arch_name(uint32_t token) {
  for (const auto& a : kArchs) {
    if (a.value == token) return a.name;
  }
  return nullptr;
}

uint64_t get_u64(const nlohmann::json& v, const std::string& what) {
  if (v.is_number_unsigned()) return v.get<uint64_t>();
  if (v.is_number_integer() && v.get<int64_t>() >= 0)
    return static_cast<uint64_t>(v.get<int64_t>());
  fail(what + " must be a non-negative integer, got " + v.dump());
}

const std::string& get_string(const nlohmann::json& v, const std::string& what) {
  if (!v.is_string()) fail(what + " must be a string, got " + v.dump());
  return v.get_ref<const std::string&>();
}

// errnoRet, when present, is the errno an ERRNO/TRACE action returns; EPERM otherwise (runc).
uint32_t parse_action(const nlohmann::json& name_json, const nlohmann::json* errno_ret,
                      const std::string& where) {
  const std::string& name = get_string(name_json, where);
  uint16_t ret = EPERM;
  if (errno_ret && !errno_ret->is_null()) {
    uint64_t v = get_u64(*errno_ret, where + " errnoRet");
    if (v > 0xffff) fail(where + " errnoRet " + std::to_string(v) + " is out of range");
    ret = static_cast<uint16_t>(v);
  }
  if (name == "SCMP_ACT_KILL" || name == "SCMP_ACT_KILL_THREAD") return SCMP_ACT_KILL_THREAD;
  if (name == "SCMP_ACT_KILL_PROCESS") return SCMP_ACT_KILL_PROCESS;
  if (name == "SCMP_ACT_TRAP") return SCMP_ACT_TRAP;
  if (name == "SCMP_ACT_ERRNO") return SCMP_ACT_ERRNO(ret);
  if (name == "SCMP_ACT_TRACE") return SCMP_ACT_TRACE(ret);
  if (name == "SCMP_ACT_ALLOW") return SCMP_ACT_ALLOW;
  if (name == "SCMP_ACT_LOG") return SCMP_ACT_LOG;
  if (name == "SCMP_ACT_NOTIFY") {
    fail(where + " SCMP_ACT_NOTIFY needs a seccomp agent (listenerPath), not supported yet");
  }
  fail(where + " has an unknown action \"" + name + "\"");
}

scmp_arg_cmp parse_arg(const nlohmann::json& arg, const std::string& where) {
  if (!arg.is_object()) fail(where + " must be an object, got " + arg.dump());
  auto index_it = arg.find("index");
  auto value_it = arg.find("value");
  auto op_it = arg.find("op");
  if (index_it == arg.end()) fail(where + " has no \"index\"");
  if (value_it == arg.end()) fail(where + " has no \"value\"");
  if (op_it == arg.end()) fail(where + " has no \"op\"");
  uint64_t index = get_u64(*index_it, where + " index");
  // Six arguments is the most a Linux syscall has.
  if (index > 5) fail(where + " index " + std::to_string(index) + " is above 5");
  const std::string& op_name = get_string(*op_it, where + " op");
  const Named* op = find_named(kOperators, op_name);
  if (!op) fail(where + " has an unknown op \"" + op_name + "\"");
  scmp_arg_cmp cmp{};
  cmp.arg = static_cast<unsigned int>(index);
  cmp.op = static_cast<scmp_compare>(op->value);
  cmp.datum_a = get_u64(*value_it, where + " value");
  auto two_it = arg.find("valueTwo");
  cmp.datum_b =
      (two_it == arg.end() || two_it->is_null()) ? 0 : get_u64(*two_it, where + " valueTwo");
  return cmp;
}

void add_syscall_rules(void* ctx, const nlohmann::json& entry, size_t i, uint32_t default_action) {
  const std::string where = "syscalls[" + std::to_string(i) + "]";
  if (!entry.is_object()) fail(where + " must be an object");
  auto names_it = entry.find("names");
  if (names_it == entry.end() || !names_it->is_array() || names_it->empty()) {
    fail(where + " needs a non-empty \"names\" array");
  }
  auto action_it = entry.find("action");
  if (action_it == entry.end()) fail(where + " has no \"action\"");
  auto errno_it = entry.find("errnoRet");
  const uint32_t action =
      parse_action(*action_it, errno_it == entry.end() ? nullptr : &*errno_it, where + " action");

  std::vector<scmp_arg_cmp> conds;
  auto args_it = entry.find("args");
  if (args_it != entry.end() && !args_it->is_null()) {
    if (!args_it->is_array()) fail(where + " args must be an array");
    for (size_t a = 0; a < args_it->size(); ++a) {
      conds.push_back(parse_arg((*args_it)[a], where + " args[" + std::to_string(a) + "]"));
    }
  }
  // libseccomp cannot AND two conditions on the same argument; runc then adds one rule per
  // condition (OR), and profiles in the wild rely on that (clone's namespace flags).
  std::set<unsigned int> indexes;
  for (const auto& c : conds) indexes.insert(c.arg);
  const bool one_rule_per_condition = indexes.size() != conds.size();

  for (const auto& name_json : *names_it) {
    const std::string& name = get_string(name_json, where + " names[]");
    // A rule with the default action would be redundant, and libseccomp refuses it.
    if (action == default_action) continue;
    int nr = seccomp_syscall_resolve_name(name.c_str());
    if (nr == __NR_SCMP_ERROR) {
      log::debug("seccomp: skipping unknown syscall " + name);
      continue;
    }
    if (one_rule_per_condition) {
      for (const auto& c : conds) {
        check(seccomp_rule_add_array(ctx, action, nr, 1, &c), "add rule for " + name);
      }
    } else {
      check(seccomp_rule_add_array(ctx, action, nr, static_cast<unsigned int>(conds.size()),
                                   conds.data()),
            "add rule for " + name);
    }
  }
}

Filter build_filter(const nlohmann::json& profile) {
  if (!profile.is_object()) fail("linux.seccomp must be an object");
  auto default_it = profile.find("defaultAction");
  if (default_it == profile.end()) fail("defaultAction is required");
  auto default_errno_it = profile.find("defaultErrnoRet");
  const uint32_t default_action =
      parse_action(*default_it, default_errno_it == profile.end() ? nullptr : &*default_errno_it,
                   "defaultAction");

  Filter ctx(seccomp_init(default_action));
  if (!ctx) fail("seccomp_init failed for defaultAction " + default_it->dump());
  // no_new_privs is the config's decision (process.noNewPrivileges), not the filter's.
  check(seccomp_attr_set(ctx.get(), SCMP_FLTATR_CTL_NNP, 0), "clear CTL_NNP");

  auto archs_it = profile.find("architectures");
  if (archs_it != profile.end() && !archs_it->is_null()) {
    if (!archs_it->is_array()) fail("architectures must be an array");
    for (const auto& a : *archs_it) {
      const std::string& name = get_string(a, "architectures[]");
      const Named* arch = find_named(kArchs, name);
      if (!arch) fail("unknown architecture \"" + name + "\"");
      int rc = seccomp_arch_add(ctx.get(), arch->value);
      if (rc != -EEXIST) check(rc, "add architecture " + name);
    }
  }

  auto flags_it = profile.find("flags");
  if (flags_it != profile.end() && !flags_it->is_null()) {
    if (!flags_it->is_array()) fail("flags must be an array");
    for (const auto& f : *flags_it) {
      const std::string& name = get_string(f, "flags[]");
      const Named* flag = find_named(kFlags, name);
      if (!flag) fail("flag " + name + " is not supported");
      check(seccomp_attr_set(ctx.get(), static_cast<scmp_filter_attr>(flag->value), 1),
            "set flag " + name);
    }
  }

  auto listener_it = profile.find("listenerPath");
  if (listener_it != profile.end() && listener_it->is_string() &&
      !listener_it->get_ref<const std::string&>().empty()) {
    fail("listenerPath (seccomp agents) is not supported yet");
  }

  auto syscalls_it = profile.find("syscalls");
  if (syscalls_it != profile.end() && !syscalls_it->is_null()) {
    if (!syscalls_it->is_array()) fail("syscalls must be an array");
    for (size_t i = 0; i < syscalls_it->size(); ++i) {
      add_syscall_rules(ctx.get(), (*syscalls_it)[i], i, default_action);
    }
  }
  return ctx;
}

}  // namespace

void validate_seccomp(const nlohmann::json& linux_seccomp) {
  if (!linux_seccomp.is_null()) build_filter(linux_seccomp);
}

void load_seccomp(const nlohmann::json& linux_seccomp) {
  if (linux_seccomp.is_null()) return;
  Filter ctx = build_filter(linux_seccomp);
  int rc = seccomp_load(ctx.get());
  if (rc == -EACCES || rc == -EPERM) {
    throw_errno("seccomp: load filter (needs no_new_privs or CAP_SYS_ADMIN)", -rc);
  }
  check(rc, "load filter");
}

std::string export_seccomp_bpf(const nlohmann::json& linux_seccomp) {
  Filter ctx = build_filter(linux_seccomp);
  UniqueFd fd(memfd_create("cidrun-seccomp", MFD_CLOEXEC));
  if (!fd.valid()) throw_errno("seccomp: memfd_create");
  check(seccomp_export_bpf(ctx.get(), fd.get()), "export bpf");
  off_t size = lseek(fd.get(), 0, SEEK_END);
  if (size < 0) throw_errno("seccomp: lseek");
  std::string out(static_cast<size_t>(size), '\0');
  if (pread(fd.get(), out.data(), out.size(), 0) != size) throw_errno("seccomp: read bpf");
  return out;
}

std::vector<std::string> seccomp_action_names() {
  return {std::begin(kActions), std::end(kActions)};
}
std::vector<std::string> seccomp_operator_names() {
  std::vector<std::string> out;
  for (const auto& o : kOperators) out.emplace_back(o.name);
  return out;
}
std::vector<std::string> seccomp_arch_names() {
  std::vector<std::string> out;
  for (const auto& a : kArchs) out.emplace_back(a.name);
  return out;
}
std::vector<std::string> seccomp_flag_names() {
  std::vector<std::string> out;
  for (const auto& f : kFlags) out.emplace_back(f.name);
  return out;
}

nlohmann::json default_seccomp_profile(const nlohmann::json& process_capabilities) {
  std::set<std::string> bounding;
  if (process_capabilities.is_object()) {
    auto it = process_capabilities.find("bounding");
    if (it != process_capabilities.end() && it->is_array()) {
      for (const auto& c : *it) {
        if (c.is_string()) bounding.insert(c.get<std::string>());
      }
    }
  }
  auto has = [&](const char* cap) { return bounding.count(cap) != 0; };

  nlohmann::json syscalls = nlohmann::json::array();
  auto deny = [&](std::vector<std::string> names) {
    syscalls.push_back({{"names", names}, {"action", "SCMP_ACT_ERRNO"}, {"errnoRet", EPERM}});
  };
  // Not namespaced at all, or a known escape route: refused whatever the capabilities.
  deny({"add_key", "keyctl", "request_key",  // the kernel keyring is shared with the host
        "create_module", "get_kernel_syms", "query_module", "nfsservctl", "_sysctl", "uselib",
        "vm86", "vm86old",
        // io_uring bypasses seccomp for the operations it performs.
        "io_uring_setup", "io_uring_enter", "io_uring_register"});
  if (!has("CAP_DAC_READ_SEARCH")) deny({"open_by_handle_at"});  // the "shocker" escape
  if (!has("CAP_SYS_ADMIN")) {
    // Mounting and new namespaces widen the kernel surface a container can reach.
    deny({"mount",         "umount",
          "umount2",       "pivot_root",
          "mount_setattr", "move_mount",
          "open_tree",     "fsopen",
          "fsconfig",      "fsmount",
          "fspick",        "setns",
          "unshare",       "name_to_handle_at",
          "fanotify_init", "quotactl",
          "quotactl_fd",   "lookup_dcookie",
          "swapon",        "swapoff"});
    // clone3 passes its flags in memory that seccomp cannot read: ENOSYS makes libc fall back
    // to clone, whose flags can be checked.
    syscalls.push_back({{"names", {"clone3"}}, {"action", "SCMP_ACT_ERRNO"}, {"errnoRet", ENOSYS}});
    nlohmann::json args = nlohmann::json::array();
    for (uint64_t flag :
         {0x00020000ULL /* NEWNS */, 0x02000000ULL /* NEWCGROUP */, 0x04000000ULL /* NEWUTS */,
          0x08000000ULL /* NEWIPC */, 0x10000000ULL /* NEWUSER */, 0x20000000ULL /* NEWPID */,
          0x40000000ULL /* NEWNET */}) {
      args.push_back(
          {{"index", 0}, {"value", flag}, {"valueTwo", flag}, {"op", "SCMP_CMP_MASKED_EQ"}});
    }
    syscalls.push_back(
        {{"names", {"clone"}}, {"action", "SCMP_ACT_ERRNO"}, {"errnoRet", EPERM}, {"args", args}});
  }
  if (!has("CAP_SYS_MODULE")) deny({"init_module", "finit_module", "delete_module"});
  if (!has("CAP_SYS_BOOT")) deny({"reboot", "kexec_load", "kexec_file_load"});
  if (!has("CAP_SYS_TIME")) deny({"settimeofday", "stime", "clock_settime", "clock_adjtime"});
  if (!has("CAP_SYS_RAWIO")) deny({"iopl", "ioperm"});
  if (!has("CAP_SYS_PACCT")) deny({"acct"});
  if (!has("CAP_SYSLOG") && !has("CAP_SYS_ADMIN")) deny({"syslog"});
  if (!has("CAP_PERFMON") && !has("CAP_SYS_ADMIN")) deny({"perf_event_open"});
  if (!has("CAP_BPF") && !has("CAP_SYS_ADMIN")) deny({"bpf"});
  if (!has("CAP_SYS_PTRACE")) deny({"userfaultfd"});

  // A syscall made through a 32-bit compat entry point must meet the same rules; other
  // architectures are killed by libseccomp's bad-arch action.
  nlohmann::json archs = nlohmann::json::array();
  const uint32_t native = seccomp_arch_native();
  if (const char* n = arch_name(native)) archs.push_back(n);
  if (native == SCMP_ARCH_X86_64) {
    archs.push_back("SCMP_ARCH_X86");
    archs.push_back("SCMP_ARCH_X32");
  } else if (native == SCMP_ARCH_AARCH64) {
    archs.push_back("SCMP_ARCH_ARM");
  } else if (native == SCMP_ARCH_S390X) {
    archs.push_back("SCMP_ARCH_S390");
  }
  return {{"defaultAction", "SCMP_ACT_ALLOW"}, {"architectures", archs}, {"syscalls", syscalls}};
}

}  // namespace cidrun::runtime
