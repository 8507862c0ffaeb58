// linux.resources as the container sees them in its cgroup.
#include <gtest/gtest.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "integration/runtime_helpers.h"

using namespace rt_test;
using nlohmann::json;

// memory.kernelTCP is honoured where cgroup v1 still has its file, an error where it does not.
TEST(RuntimeResources, KernelTcpLimitIsWrittenOnCgroupV1) {
  std::string b =
      make_bundle("kmemtcp", {"cat", "/sys/fs/cgroup/memory/memory.kmem.tcp.limit_in_bytes"},
                  [](json& c) { c["linux"]["resources"]["memory"]["kernelTCP"] = 50593792; });
  Result r = sh(cidrun() + " run -b " + b + " t1");
  if (::access("/sys/fs/cgroup/memory/memory.kmem.tcp.limit_in_bytes", F_OK) == 0) {
    EXPECT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(r.out, "50593792\n") << r.err;
  } else {
    EXPECT_NE(r.code, 0);
    EXPECT_NE(r.err.find("memory.kernelTCP"), std::string::npos) << r.err;
  }
}
