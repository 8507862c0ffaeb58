#include "runtime/sysctl.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sched.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <string>

#include "runtime/in_child.h"
#include "util/error.h"

namespace cidrun::runtime {
namespace {

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  while (!s.empty() && s.back() == '\n') s.pop_back();
  return s;
}

std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

TEST(Sysctl, KeysBecomePaths) {
  EXPECT_EQ(sysctl_key_to_path("net.ipv4.ip_forward"), "net/ipv4/ip_forward");
  EXPECT_EQ(sysctl_key_to_path("net/ipv4/conf/eth0.100/forwarding"),
            "net/ipv4/conf/eth0.100/forwarding");
  for (const char* bad :
       {"net..ipv4", "net.ipv4.", ".net", "net/../../etc/passwd", "/etc/x", "net/./x", ""}) {
    EXPECT_NE(error_of([&] { sysctl_key_to_path(bad); }).find("invalid key"), std::string::npos)
        << bad;
  }
}

TEST(Sysctl, OnlyNamespacedKeysAreAllowed) {
  const SysctlNamespaces all{true, true, true};
  EXPECT_NO_THROW(validate_sysctl({{"kernel.shmmax", "1"},
                                   {"kernel.msgmax", "1"},
                                   {"kernel.sem", "1 2 3 4"},
                                   {"fs.mqueue.msg_max", "10"},
                                   {"net.ipv4.ip_forward", "1"},
                                   {"kernel.hostname", "x"},
                                   {"kernel.domainname", "y"}},
                                  all));
  EXPECT_NE(error_of([&] {
              validate_sysctl({{"vm.swappiness", "1"}}, all);
            }).find("vm.swappiness is not namespaced"),
            std::string::npos);
  EXPECT_NE(error_of([&] {
              validate_sysctl({{"kernel.pid_max", "1"}}, all);
            }).find("not namespaced"),
            std::string::npos);
  EXPECT_NE(error_of([&] {
              validate_sysctl({{"net.ipv4.ip_forward", "1"}}, SysctlNamespaces{});
            }).find("needs a private network namespace"),
            std::string::npos);
  EXPECT_NE(error_of([&] {
              validate_sysctl({{"kernel.shmmax", "1"}}, SysctlNamespaces{false, true, true});
            }).find("needs a private IPC namespace"),
            std::string::npos);
  EXPECT_NE(error_of([&] {
              validate_sysctl({{"kernel.hostname", "a"}}, SysctlNamespaces{true, true, false});
            }).find("needs a private UTS namespace"),
            std::string::npos);
  EXPECT_NE(error_of([&] {
              validate_sysctl({{"kernel.shmmax", 1}}, all);
            }).find("must be a string"),
            std::string::npos);
  EXPECT_NE(
      error_of([&] { validate_sysctl(nlohmann::json::array(), all); }).find("must be an object"),
      std::string::npos);
  EXPECT_NO_THROW(validate_sysctl(nullptr, SysctlNamespaces{}));
}

TEST(Sysctl, WritesIntoTheGivenProcSysTree) {
  auto dir = std::filesystem::temp_directory_path() / ("cidrun-sysctl-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir / "net/ipv4/conf/eth0.100");
  std::ofstream(dir / "net/ipv4/conf/eth0.100/forwarding") << "0\n";
  apply_sysctl({{"net/ipv4/conf/eth0.100/forwarding", "1"}}, SysctlNamespaces{true, true, true},
               dir.string());
  EXPECT_EQ(slurp((dir / "net/ipv4/conf/eth0.100/forwarding").string()), "1");
  // A missing file names the path and the errno.
  EXPECT_NE(
      error_of([&] {
        apply_sysctl({{"net.ipv4.nope", "1"}}, SysctlNamespaces{true, true, true}, dir.string());
      }).find("net/ipv4/nope: No such file or directory"),
      std::string::npos);
  std::filesystem::remove_all(dir);
}

TEST(Sysctl, AppliesInsidePrivateNamespaces) {
  ASSERT_EQ(geteuid(), 0u) << "needs root to unshare namespaces";
  std::string host_shmmax = slurp("/proc/sys/kernel/shmmax");
  std::string s = in_child([] {
    if (unshare(CLONE_NEWIPC | CLONE_NEWNET | CLONE_NEWUTS) != 0) return std::string("unshare");
    apply_sysctl({{"kernel.shmmax", "123456789"},
                  {"net.ipv4.ip_forward", "1"},
                  {"kernel.domainname", "cidrun.test"}},
                 true);
    return slurp("/proc/sys/kernel/shmmax") + " " + slurp("/proc/sys/net/ipv4/ip_forward") + " " +
           slurp("/proc/sys/kernel/domainname");
  });
  EXPECT_EQ(s, "123456789 1 cidrun.test");
  EXPECT_EQ(slurp("/proc/sys/kernel/shmmax"), host_shmmax);
}

}  // namespace
}  // namespace cidrun::runtime
