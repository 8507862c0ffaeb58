// The container's process as configured: capabilities (ambient ones the kernel refuses, names
// no kernel knows, sets the runtime cannot grant) and rlimits.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "integration/runtime_helpers.h"

using namespace rt_test;
using nlohmann::json;

// `crun spec` writes ambient capabilities with an empty inheritable set, which the kernel
// refuses to raise. runc runs such a bundle with a warning in its log; so does cidrun.
TEST(RuntimeProcess, AmbientCapabilitiesWithoutInheritableRunWithAWarning) {
  std::string b = make_bundle(
      "ambient", {"sh", "-c", "grep -E '^Cap(Eff|Amb)' /proc/self/status"}, [](json& c) {
        json set = {"CAP_KILL", "CAP_NET_BIND_SERVICE"};
        c["process"]["capabilities"] = {
            {"bounding", set}, {"effective", set}, {"permitted", set}, {"ambient", set}};
      });
  std::string log = work_dir() + "/ambient.log";
  Result r = sh(cidrun() + " --log " + log + " --log-format json run -b " + b + " a1");
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "CapEff:\t0000000000000420\nCapAmb:\t0000000000000000\n") << r.err;
  EXPECT_NE(slurp(log).find("cannot raise ambient CAP_KILL"), std::string::npos) << slurp(log);
}

// The spec: a capability name that maps to no kernel capability is an error.
TEST(RuntimeProcess, UnknownCapabilityFailsCreate) {
  std::string b = make_bundle("capfail", {"true"}, [](json& c) {
    c["process"]["capabilities"]["bounding"].push_back("CAP_TEST");
  });
  Result r = sh(cidrun() + " create -b " + b + " cf");
  EXPECT_NE(r.code, 0);
  EXPECT_EQ(r.err, "cidrun: error: " + b +
                       "/config.json.process.capabilities.bounding: unknown capability "
                       "\"CAP_TEST\"\n");
}

// A privileged config asks for every capability, also those the runtime does not hold itself
// (root here lacks CAP_SYS_RESOURCE): the container runs with what can be granted.
TEST(RuntimeProcess, PrivilegedConfigRunsWithWhatTheRuntimeHolds) {
  const std::string held = chomp(sh("grep CapBnd /proc/self/status | cut -f2").out);
  std::string b = make_bundle(
      "privileged",
      {"sh", "-c",
       "grep -E '^Cap(Inh|Prm|Eff|Bnd)' "
       "/proc/self/status | cut -f2 | sort -u"},
      [](json& c) {
        json all =
            json::parse(sh(std::string(CIDRUN_BINARY) + " features").out)["linux"]["capabilities"];
        for (const char* set : {"bounding", "effective", "permitted", "inheritable"})
          c["process"]["capabilities"][set] = all;
      });
  Result r = sh(cidrun() + " run -b " + b + " pv");
  EXPECT_EQ(r.code, 0) << r.err;
  // Every set is what the runtime's own bounding set allows.
  EXPECT_EQ(r.out, held + "\n") << r.err;
}
