// Filters are loaded in forked children; each child reports what it saw through its exit code,
// so nothing but exit_group runs after the filter is in place.
#include "runtime/seccomp.h"

#include <gtest/gtest.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <functional>
#include <string>

#include "util/error.h"

namespace cidrun::runtime {
namespace {

constexpr int kThrew = 250;

// Wait status of a child running fn (its return value becomes the exit code).
int child_status(const std::function<int()>& fn) {
  pid_t pid = fork();
  if (pid == 0) {
    int rc = kThrew;
    try {
      rc = fn();
    } catch (...) {
    }
    // exit_group itself, not _exit(): a sanitizer runtime wraps _exit with work of its own
    // (sigaltstack, gettid, mmap) that a filter allowing only exit_group denies; under ASan the
    // child then died with status 1 instead of reporting rc.
    syscall(SYS_exit_group, rc);
    _exit(rc);  // not reached
  }
  int status = 0;
  waitpid(pid, &status, 0);
  return status;
}

int exit_code(int status) {
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// errno of a raw syscall that failed, 0 if it succeeded.
int errno_of(long rc) {
  return rc < 0 ? errno : 0;
}

std::string error_of(const nlohmann::json& profile) {
  try {
    validate_seccomp(profile);
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

TEST(Seccomp, ErrnoRetIsReturnedForDeniedSyscall) {
  nlohmann::json profile = {
      {"defaultAction", "SCMP_ACT_ALLOW"},
      {"syscalls",
       {{{"names", {"getcwd"}}, {"action", "SCMP_ACT_ERRNO"}, {"errnoRet", 42}},
        {{"names", {"uname"}}, {"action", "SCMP_ACT_ERRNO"}}}}};
  int status = child_status([&] {
    load_seccomp(profile);
    char buf[256];
    if (errno_of(syscall(SYS_getcwd, buf, sizeof buf)) != 42) return 1;
    if (errno_of(syscall(SYS_uname, buf)) != EPERM) return 2;  // EPERM without errnoRet
    if (errno_of(syscall(SYS_getpid)) != 0) return 3;
    return 0;
  });
  EXPECT_EQ(exit_code(status), 0) << status;
}

TEST(Seccomp, ArgumentFiltersSelectCalls) {
  nlohmann::json profile = {
      {"defaultAction", "SCMP_ACT_ALLOW"},
      {"syscalls",
       {// getpriority(PRIO_PGRP, ...) is denied, PRIO_PROCESS is not.
        {{"names", {"getpriority"}},
         {"action", "SCMP_ACT_ERRNO"},
         {"errnoRet", EACCES},
         {"args", {{{"index", 0}, {"value", PRIO_PGRP}, {"op", "SCMP_CMP_EQ"}}}}},
        // Two conditions on one argument are ORed: umask with 0o022 or 0o077 is denied.
        {{"names", {"umask"}},
         {"action", "SCMP_ACT_ERRNO"},
         {"errnoRet", EPERM},
         {"args",
          {{{"index", 0}, {"value", 022}, {"op", "SCMP_CMP_EQ"}},
           {{"index", 0}, {"value", 077}, {"op", "SCMP_CMP_EQ"}}}}},
        // MASKED_EQ: value is the mask, valueTwo the expected bits.
        {{"names", {"getpgid"}},
         {"action", "SCMP_ACT_ERRNO"},
         {"errnoRet", ENOTSUP},
         {"args",
          {{{"index", 0},
            {"value", 0xff00},
            {"valueTwo", 0x1200},
            {"op", "SCMP_CMP_MASKED_EQ"}}}}}}}};
  int status = child_status([&] {
    load_seccomp(profile);
    if (errno_of(syscall(SYS_getpriority, PRIO_PGRP, 0)) != EACCES) return 1;
    if (errno_of(syscall(SYS_getpriority, PRIO_PROCESS, 0)) != 0) return 2;
    if (errno_of(syscall(SYS_umask, 022)) != EPERM) return 3;
    if (errno_of(syscall(SYS_umask, 077)) != EPERM) return 4;
    if (errno_of(syscall(SYS_umask, 027)) != 0) return 5;
    if (errno_of(syscall(SYS_getpgid, 0x12ab)) != ENOTSUP) return 6;
    if (errno_of(syscall(SYS_getpgid, 0)) != 0) return 7;
    return 0;
  });
  EXPECT_EQ(exit_code(status), 0) << status;
}

TEST(Seccomp, DefaultActionErrnoWithAllowList) {
  nlohmann::json profile = {{"defaultAction", "SCMP_ACT_ERRNO"},
                            {"defaultErrnoRet", ENOSYS},
                            {"syscalls",
                             {{{"names", {"exit_group", "exit", "getpid", "rt_sigreturn"}},
                               {"action", "SCMP_ACT_ALLOW"}}}}};
  int status = child_status([&] {
    load_seccomp(profile);
    char buf[64];
    if (errno_of(syscall(SYS_getcwd, buf, sizeof buf)) != ENOSYS) return 1;
    if (errno_of(syscall(SYS_getpid)) != 0) return 2;
    return 0;
  });
  EXPECT_EQ(exit_code(status), 0) << status;
}

TEST(Seccomp, KillProcessActionKillsWithSigsys) {
  nlohmann::json profile = {
      {"defaultAction", "SCMP_ACT_ALLOW"},
      {"syscalls", {{{"names", {"getppid"}}, {"action", "SCMP_ACT_KILL_PROCESS"}}}}};
  int status = child_status([&] {
    load_seccomp(profile);
    syscall(SYS_getppid);
    return 0;
  });
  ASSERT_TRUE(WIFSIGNALED(status)) << status;
  EXPECT_EQ(WTERMSIG(status), SIGSYS);
}

TEST(Seccomp, UnknownSyscallNamesAreSkippedAndFlagsAccepted) {
  nlohmann::json profile = {
      {"defaultAction", "SCMP_ACT_ALLOW"},
      {"architectures", {"SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_AARCH64"}},
      {"flags", {"SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG"}},
      {"syscalls",
       {{{"names", {"no_such_syscall", "getcwd"}}, {"action", "SCMP_ACT_ERRNO"}},
        // Same action as the default: redundant, must be accepted.
        {{"names", {"getpid"}}, {"action", "SCMP_ACT_ALLOW"}}}}};
  int status = child_status([&] {
    // With no_new_privs the load needs no CAP_SYS_ADMIN, as for a non-root container.
    prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
    load_seccomp(profile);
    char buf[64];
    return errno_of(syscall(SYS_getcwd, buf, sizeof buf)) == EPERM ? 0 : 1;
  });
  EXPECT_EQ(exit_code(status), 0) << status;
}

TEST(Seccomp, MalformedProfilesAreClearErrors) {
  const nlohmann::json allow = "SCMP_ACT_ALLOW";
  auto with_rule = [&](nlohmann::json rule) {
    return nlohmann::json{{"defaultAction", allow}, {"syscalls", {rule}}};
  };
  EXPECT_NE(error_of(nlohmann::json::object()).find("defaultAction is required"),
            std::string::npos);
  EXPECT_NE(
      error_of({{"defaultAction", "SCMP_ACT_MAYBE"}}).find("unknown action \"SCMP_ACT_MAYBE\""),
      std::string::npos);
  EXPECT_NE(error_of({{"defaultAction", 1}}).find("must be a string"), std::string::npos);
  EXPECT_NE(error_of({{"defaultAction", "SCMP_ACT_NOTIFY"}}).find("not supported"),
            std::string::npos);
  EXPECT_NE(error_of({{"defaultAction", allow}, {"architectures", {"SCMP_ARCH_Z80"}}})
                .find("unknown architecture \"SCMP_ARCH_Z80\""),
            std::string::npos);
  EXPECT_NE(error_of({{"defaultAction", allow}, {"flags", {"SECCOMP_FILTER_FLAG_BOGUS"}}})
                .find("SECCOMP_FILTER_FLAG_BOGUS is not supported"),
            std::string::npos);
  EXPECT_NE(error_of({{"defaultAction", allow}, {"syscalls", {{"names", "x"}}}}).find("syscalls"),
            std::string::npos);
  EXPECT_NE(error_of(with_rule({{"names", "getcwd"}, {"action", "SCMP_ACT_ERRNO"}}))
                .find("non-empty \"names\" array"),
            std::string::npos);
  EXPECT_NE(error_of(with_rule({{"names", {"getcwd"}}})).find("syscalls[0] has no \"action\""),
            std::string::npos);
  EXPECT_NE(
      error_of(with_rule({{"names", {"getcwd"}}, {"action", "SCMP_ACT_ERRNO"}, {"errnoRet", -1}}))
          .find("errnoRet must be a non-negative integer"),
      std::string::npos);
  EXPECT_NE(error_of(with_rule({{"names", {"getcwd"}},
                                {"action", "SCMP_ACT_ERRNO"},
                                {"args", {{{"index", 6}, {"value", 1}, {"op", "SCMP_CMP_EQ"}}}}}))
                .find("index 6 is above 5"),
            std::string::npos);
  EXPECT_NE(
      error_of(with_rule({{"names", {"getcwd"}},
                          {"action", "SCMP_ACT_ERRNO"},
                          {"args", {{{"index", 0}, {"value", 1}, {"op", "SCMP_CMP_SORTOF"}}}}}))
          .find("unknown op \"SCMP_CMP_SORTOF\""),
      std::string::npos);
  EXPECT_NE(error_of(with_rule({{"names", {"getcwd"}},
                                {"action", "SCMP_ACT_ERRNO"},
                                {"args", {{{"index", 0}, {"op", "SCMP_CMP_EQ"}}}}}))
                .find("has no \"value\""),
            std::string::npos);
  EXPECT_NE(error_of(with_rule({{"names", {42}}, {"action", "SCMP_ACT_ERRNO"}})).find("names[]"),
            std::string::npos);
  EXPECT_NE(error_of({{"defaultAction", allow}, {"listenerPath", "/run/agent.sock"}})
                .find("listenerPath"),
            std::string::npos);
}

TEST(Seccomp, DefaultProfileDeniesEscapesAndAllowsTheRest) {
  nlohmann::json profile = default_seccomp_profile();
  EXPECT_EQ(profile["defaultAction"], "SCMP_ACT_ALLOW");
  EXPECT_FALSE(export_seccomp_bpf(profile).empty());
  int status = child_status([&] {
    prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
    load_seccomp(profile);
    if (errno_of(unshare(CLONE_NEWUTS)) != EPERM) return 1;
    if (errno_of(mount("none", "/tmp", "tmpfs", 0, nullptr)) != EPERM) return 2;
    if (errno_of(syscall(SYS_clone3, nullptr, 0)) != ENOSYS) return 3;
    if (errno_of(syscall(SYS_clone, CLONE_NEWNET | SIGCHLD, 0, 0, 0, 0)) != EPERM) return 4;
    if (errno_of(syscall(SYS_open_by_handle_at, -1, nullptr, 0)) != EPERM) return 5;
    if (errno_of(syscall(SYS_keyctl, 0, 0, 0, 0, 0)) != EPERM) return 6;
    if (errno_of(syscall(SYS_kexec_load, 0, 0, nullptr, 0)) != EPERM) return 7;
    if (errno_of(syscall(SYS_init_module, nullptr, 0, "")) != EPERM) return 8;
    // Ordinary process creation still works.
    pid_t pid = fork();
    if (pid == 0) _exit(7);
    int st = 0;
    if (pid < 0 || waitpid(pid, &st, 0) != pid || WEXITSTATUS(st) != 7) return 9;
    return 0;
  });
  EXPECT_EQ(exit_code(status), 0) << status;
}

TEST(Seccomp, DefaultProfileFollowsCapabilities) {
  auto denied = [](const nlohmann::json& profile, const std::string& name) {
    for (const auto& rule : profile["syscalls"]) {
      for (const auto& n : rule["names"]) {
        if (n == name) return true;
      }
    }
    return false;
  };
  nlohmann::json none = default_seccomp_profile();
  EXPECT_TRUE(denied(none, "mount"));
  EXPECT_TRUE(denied(none, "reboot"));
  EXPECT_TRUE(denied(none, "keyctl"));
  nlohmann::json admin = default_seccomp_profile({{"bounding", {"CAP_SYS_ADMIN", "CAP_SYS_BOOT"}}});
  EXPECT_FALSE(denied(admin, "mount"));
  EXPECT_FALSE(denied(admin, "clone"));
  EXPECT_FALSE(denied(admin, "reboot"));
  EXPECT_TRUE(denied(admin, "keyctl"));
  EXPECT_TRUE(denied(admin, "init_module"));
  EXPECT_NO_THROW(validate_seccomp(admin));
}

TEST(Seccomp, FeatureLists) {
  EXPECT_EQ(seccomp_operator_names().size(), 7u);
  EXPECT_FALSE(seccomp_arch_names().empty());
  EXPECT_FALSE(seccomp_action_names().empty());
  EXPECT_EQ(seccomp_flag_names().size(), 3u);
}

}  // namespace
}  // namespace cidrun::runtime
