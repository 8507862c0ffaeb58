// Capabilities are applied in a forked child, which then reports its /proc/self/status lines.
#include "runtime/capabilities.h"

#include <gtest/gtest.h>
#include <sys/capability.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <functional>
#include <string>

#include "runtime/in_child.h"
#include "util/error.h"

namespace cidrun::runtime {
namespace {

// "CapEff=...,CapPrm=...,..." from /proc/self/status.
std::string cap_status() {
  std::ifstream in("/proc/self/status");
  std::string line, out;
  while (std::getline(in, line)) {
    if (line.rfind("Cap", 0) != 0) continue;
    auto tab = line.find(":\t");
    out += line.substr(0, tab) + "=" + line.substr(tab + 2) + ";";
  }
  return out;
}

constexpr const char* kDefaultMask = "0000000020000420";  // AUDIT_WRITE, KILL, NET_BIND_SERVICE

TEST(Capabilities, RequiresRoot) {
  ASSERT_EQ(geteuid(), 0u) << "capability tests run as root";
}

TEST(Capabilities, DefaultSetGivesRuncSpecCapabilities) {
  std::string s = in_child([] {
    apply_capabilities(default_capabilities());
    return cap_status();
  });
  EXPECT_NE(s.find(std::string("CapEff=") + kDefaultMask), std::string::npos) << s;
  EXPECT_NE(s.find(std::string("CapPrm=") + kDefaultMask), std::string::npos) << s;
  EXPECT_NE(s.find(std::string("CapBnd=") + kDefaultMask), std::string::npos) << s;
  EXPECT_NE(s.find("CapInh=0000000000000000"), std::string::npos) << s;
  EXPECT_NE(s.find("CapAmb=0000000000000000"), std::string::npos) << s;
}

TEST(Capabilities, AmbientSetIsRaised) {
  std::string s = in_child([] {
    nlohmann::json set = {"CAP_KILL", "CAP_NET_BIND_SERVICE"};
    apply_capabilities({{"bounding", set},
                        {"effective", set},
                        {"permitted", set},
                        {"inheritable", set},
                        {"ambient", set}});
    return cap_status();
  });
  EXPECT_NE(s.find("CapAmb=0000000000000420"), std::string::npos) << s;
  EXPECT_NE(s.find("CapInh=0000000000000420"), std::string::npos) << s;
  EXPECT_NE(s.find("CapBnd=0000000000000420"), std::string::npos) << s;
}

TEST(Capabilities, MissingSetsMeanEmptySets) {
  std::string s = in_child([] {
    apply_capabilities(nlohmann::json::object());
    return cap_status();
  });
  EXPECT_NE(s.find("CapEff=0000000000000000"), std::string::npos) << s;
  EXPECT_NE(s.find("CapBnd=0000000000000000"), std::string::npos) << s;
}

TEST(Capabilities, UnknownNamesAreSkipped) {
  std::string s = in_child([] {
    apply_capabilities({{"bounding", {"CAP_KILL", "CAP_UNKNOWN", "UNKNOWN_CAP"}},
                        {"effective", {"CAP_KILL", "CAP_NOT_YET_INVENTED"}},
                        {"permitted", {"cap_kill"}}});
    return cap_status();
  });
  EXPECT_NE(s.find("CapEff=0000000000000020"), std::string::npos) << s;
  EXPECT_NE(s.find("CapBnd=0000000000000020"), std::string::npos) << s;
}

TEST(Capabilities, MalformedFieldsAreErrorsAndChangeNothing) {
  std::string s = in_child([] {
    std::string out;
    for (const nlohmann::json& bad :
         {nlohmann::json{{"bounding", "CAP_KILL"}}, nlohmann::json{{"effective", {1}}},
          nlohmann::json{{"ambient", {{{"name", "CAP_KILL"}}}}}, nlohmann::json("CAP_KILL")}) {
      try {
        apply_capabilities(bad);
        out += "accepted " + bad.dump() + ";";
      } catch (const Error&) {
        out += "E;";
      }
    }
    return out + cap_status();
  });
  EXPECT_EQ(s.substr(0, 8), "E;E;E;E;") << s;
  // The process kept root's full bounding set.
  EXPECT_EQ(s.find("CapBnd=0000000000000000"), std::string::npos) << s;
}

TEST(Capabilities, CapabilityTheRuntimeLacksIsLeftOut) {
  std::string s = in_child([] {
    // Make sure CAP_SYS_RESOURCE is not held, as on this host, whatever runs the test.
    cap_t caps = cap_get_proc();
    cap_value_t res = CAP_SYS_RESOURCE;
    cap_set_flag(caps, CAP_EFFECTIVE, 1, &res, CAP_CLEAR);
    cap_set_flag(caps, CAP_PERMITTED, 1, &res, CAP_CLEAR);
    cap_set_proc(caps);
    cap_free(caps);
    nlohmann::json set = {"CAP_KILL", "CAP_SYS_RESOURCE"};
    apply_capabilities({{"bounding", set}, {"effective", set}, {"permitted", set}});
    return cap_status();
  });
  EXPECT_NE(s.find("CapEff=0000000000000020"), std::string::npos) << s;
  EXPECT_NE(s.find("CapPrm=0000000000000020"), std::string::npos) << s;
}

TEST(Capabilities, NonRootUserKeepsConfiguredCapabilities) {
  std::string s = in_child([] {
    nlohmann::json set = {"CAP_KILL", "CAP_SETUID", "CAP_SETGID"};
    nlohmann::json caps = {{"bounding", set}, {"effective", set}, {"permitted", set}};
    apply_bounding_set(caps);
    if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) != 0) return std::string("keepcaps failed");
    if (setgid(1000) != 0 || setuid(1000) != 0) return std::string("setuid failed");
    apply_process_capability_sets(caps);
    return cap_status();
  });
  EXPECT_NE(s.find("CapEff=00000000000000e0"), std::string::npos) << s;
  EXPECT_NE(s.find("CapPrm=00000000000000e0"), std::string::npos) << s;
}

// `crun spec` writes ambient capabilities with an empty inheritable set, which the kernel
// refuses to raise; runc runs such a config with a warning, and so does cidrun.
TEST(Capabilities, AmbientWithoutInheritableIsLeftOutWithAWarning) {
  std::string s = in_child([] {
    nlohmann::json set = {"CAP_KILL"};
    apply_capabilities(
        {{"bounding", set}, {"effective", set}, {"permitted", set}, {"ambient", set}});
    return cap_status();
  });
  EXPECT_NE(s.find("CapEff=0000000000000020"), std::string::npos) << s;
  EXPECT_NE(s.find("CapAmb=0000000000000000"), std::string::npos) << s;
}

// The kernel refuses an inheritable capability outside the bounding set: like the effective
// and permitted sets, one the runtime cannot grant is left out, not a failed container (a
// privileged config asks for every capability, and root here lacks CAP_SYS_RESOURCE).
TEST(Capabilities, InheritableTheRuntimeCannotGrantIsLeftOut) {
  std::string s = in_child([] {
    if (prctl(PR_CAPBSET_DROP, CAP_SYS_RESOURCE, 0, 0, 0) != 0 &&
        prctl(PR_CAPBSET_READ, CAP_SYS_RESOURCE, 0, 0, 0) != 0)
      return std::string("cannot drop CAP_SYS_RESOURCE from the bounding set");
    nlohmann::json all = {"CAP_KILL", "CAP_SYS_RESOURCE"};
    apply_capabilities({{"bounding", {"CAP_KILL"}},
                        {"effective", {"CAP_KILL"}},
                        {"permitted", {"CAP_KILL"}},
                        {"inheritable", all}});
    return cap_status();
  });
  EXPECT_NE(s.find("CapInh=0000000000000020"), std::string::npos) << s;
}

TEST(Capabilities, NamesTable) {
  auto names = all_capability_names();
  ASSERT_EQ(names.size(), 41u);
  EXPECT_EQ(names[0], "CAP_CHOWN");
  EXPECT_EQ(names[21], "CAP_SYS_ADMIN");
  EXPECT_EQ(names[40], "CAP_CHECKPOINT_RESTORE");
  EXPECT_EQ(capability_from_name("cap_sys_admin"), CAP_SYS_ADMIN);
  EXPECT_EQ(capability_from_name("SYS_ADMIN"), -1);
  EXPECT_EQ(default_capabilities()["bounding"].size(), 3u);
  EXPECT_FALSE(default_capabilities().contains("inheritable"));
}

}  // namespace
}  // namespace cidrun::runtime
