#include "runtime/rlimits.h"

#include <gtest/gtest.h>
#include <sys/capability.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <functional>
#include <string>

#include "runtime/in_child.h"
#include "util/error.h"

namespace cidrun::runtime {
namespace {

std::string limits(int resource) {
  rlimit r{};
  getrlimit(static_cast<__rlimit_resource>(resource), &r);
  auto show = [](rlim_t v) { return v == RLIM_INFINITY ? std::string("inf") : std::to_string(v); };
  return show(r.rlim_cur) + "/" + show(r.rlim_max);
}

void expect_error(const nlohmann::json& rlimits, const std::string& fragment) {
  try {
    apply_rlimits(rlimits);
    ADD_FAILURE() << "accepted " << rlimits.dump();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
  }
}

TEST(Rlimits, SetsSoftAndHard) {
  std::string s = in_child([] {
    apply_rlimits({{{"type", "RLIMIT_NOFILE"}, {"hard", 200}, {"soft", 100}},
                   {{"type", "RLIMIT_CORE"}, {"hard", 0}, {"soft", 0}}});
    return limits(RLIMIT_NOFILE) + " " + limits(RLIMIT_CORE);
  });
  EXPECT_EQ(s, "100/200 0/0");
}

TEST(Rlimits, MaxUint64IsUnlimited) {
  std::string s = in_child([] {
    apply_rlimits({{{"type", "RLIMIT_STACK"}, {"hard", UINT64_MAX}, {"soft", 8u << 20}}});
    return limits(RLIMIT_STACK);
  });
  // Only when the hard stack limit was unlimited already can it stay so without privilege.
  rlimit cur{};
  getrlimit(RLIMIT_STACK, &cur);
  if (cur.rlim_max == RLIM_INFINITY) {
    EXPECT_EQ(s, "8388608/inf");
  } else {
    EXPECT_NE(s.find("error: rlimits: RLIMIT_STACK: cannot raise the hard limit"),
              std::string::npos)
        << s;
  }
}

TEST(Rlimits, RaisingHardLimitWithoutCapSysResourceSaysSo) {
  std::string s = in_child([] {
    // Drop CAP_SYS_RESOURCE (absent on this host anyway) so the case is the same everywhere.
    cap_t caps = cap_get_proc();
    cap_value_t res = CAP_SYS_RESOURCE;
    cap_set_flag(caps, CAP_EFFECTIVE, 1, &res, CAP_CLEAR);
    cap_set_proc(caps);
    cap_free(caps);
    rlimit r{};
    getrlimit(RLIMIT_NOFILE, &r);
    apply_rlimits({{{"type", "RLIMIT_NOFILE"}, {"hard", r.rlim_max + 1}, {"soft", 10}}});
    return std::string("applied");
  });
  EXPECT_NE(s.find("cannot raise the hard limit"), std::string::npos) << s;
  EXPECT_NE(s.find("above the current hard limit"), std::string::npos) << s;
  EXPECT_NE(s.find("CAP_SYS_RESOURCE"), std::string::npos) << s;
}

TEST(Rlimits, LoweringHardLimitWorks) {
  std::string s = in_child([] {
    apply_rlimits({{{"type", "RLIMIT_NPROC"}, {"hard", 5000}, {"soft", 4000}}});
    return limits(RLIMIT_NPROC);
  });
  EXPECT_EQ(s, "4000/5000");
}

TEST(Rlimits, MalformedEntriesAreErrorsBeforeAnyChange) {
  expect_error({{{"type", "RLIMIT_NOFILE"}, {"hard", 10}, {"soft", 20}}},
               "soft limit 20 is above the hard limit 10");
  expect_error({{{"type", "RLIMIT_BOGUS"}, {"hard", 10}, {"soft", 1}}},
               "unknown rlimit type RLIMIT_BOGUS");
  expect_error({{{"type", "RLIMIT_NOFILE"}, {"soft", 1}}}, "\"hard\" must be");
  expect_error({{{"type", "RLIMIT_NOFILE"}, {"hard", -1}, {"soft", 1}}}, "\"hard\" must be");
  expect_error({{{"type", "RLIMIT_NOFILE"}, {"hard", "10"}, {"soft", 1}}}, "\"hard\" must be");
  expect_error({{{"hard", 10}, {"soft", 1}}}, "without a string \"type\"");
  expect_error({{"type", "RLIMIT_NOFILE"}}, "must be an array");
  expect_error({{{"type", "RLIMIT_CORE"}, {"hard", 0}, {"soft", 0}},
                {{"type", "RLIMIT_CORE"}, {"hard", 0}, {"soft", 0}}},
               "given twice");
  // A valid entry before a bad one must not have been applied.
  rlimit before{};
  getrlimit(RLIMIT_CORE, &before);
  expect_error({{{"type", "RLIMIT_CORE"}, {"hard", 0}, {"soft", 0}}, {{"type", "X"}}}, "");
  rlimit after{};
  getrlimit(RLIMIT_CORE, &after);
  EXPECT_EQ(before.rlim_max, after.rlim_max);
}

TEST(Rlimits, NullMeansNothing) {
  EXPECT_NO_THROW(apply_rlimits(nullptr));
}

TEST(Rlimits, Names) {
  EXPECT_EQ(rlimit_from_name("RLIMIT_NOFILE"), RLIMIT_NOFILE);
  EXPECT_EQ(rlimit_from_name("RLIMIT_RTTIME"), RLIMIT_RTTIME);
  EXPECT_EQ(rlimit_from_name("NOFILE"), -1);
}

}  // namespace
}  // namespace cidrun::runtime
