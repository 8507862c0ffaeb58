// The container's root mount: linux.rootfsPropagation, and a config without a mount namespace,
// which shares the runtime's.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "integration/runtime_helpers.h"

using namespace rt_test;
using nlohmann::json;

namespace {

// A bundle whose process may mount (CAP_SYS_ADMIN, no seccomp filter), with this propagation.
std::string propagation_bundle(const std::string& propagation, const json& args) {
  return make_bundle("prop-" + propagation, args, [&](json& c) {
    c["root"]["readonly"] = false;
    for (const char* set : {"bounding", "effective", "permitted"})
      c["process"]["capabilities"][set].push_back("CAP_SYS_ADMIN");
    c["linux"].erase("seccomp");
    c["linux"]["rootfsPropagation"] = propagation;
  });
}

// `run -b` of the bundle; what the script printed.
Result run_bundle(const std::string& bundle, const std::string& id) {
  return sh(cidrun() + " run -b " + bundle + " " + id);
}

std::string mounts_under(const std::string& dir) {
  return sh("grep -F ' " + dir + "' /proc/self/mountinfo").out;
}

}  // namespace

// The spec: rootfsPropagation sets the propagation of the container's root mount. Seen from
// inside: a copy of / made before a new mount receives it only when / is shared, and an
// unbindable / cannot be bound at all.
TEST(RuntimeRootfs, RootfsPropagationIsTheRootMounts) {
  const std::string script =
      "mkdir -p /copy /into /from && touch /from/file && "
      "mount -o rbind / /copy || { echo bind-refused; exit 0; }; "
      "mount -o bind /from /into && "
      "if [ -e /copy/into/file ]; then echo received; else echo not-received; fi";
  const std::pair<const char*, const char*> cases[] = {{"shared", "received\n"},
                                                       {"rshared", "received\n"},
                                                       {"slave", "not-received\n"},
                                                       {"private", "not-received\n"},
                                                       {"unbindable", "bind-refused\n"}};
  for (const auto& [propagation, want] : cases) {
    Result r = run_bundle(propagation_bundle(propagation, {"sh", "-c", script}),
                          std::string("p-") + propagation);
    EXPECT_EQ(r.code, 0) << propagation << ": " << r.err;
    EXPECT_EQ(r.out, want) << propagation << ": " << r.err;
  }
}

// Nothing the container mounts reaches the host, whatever its root's propagation.
TEST(RuntimeRootfs, SharedRootMountsStayInTheContainer) {
  std::string b = propagation_bundle("rshared", {"sh", "-c", "mkdir -p /m && mount -t tmpfs t /m"});
  Result r = run_bundle(b, "leak");
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(mounts_under(b), "");
}

// The spec: a namespace type left out of linux.namespaces is the runtime's. Without a mount
// namespace the container shares ours: its mounts (all under its root) are visible here while
// it exists and gone with it, and exec enters its root.
TEST(RuntimeRootfs, WithoutAMountNamespaceTheRuntimesIsShared) {
  std::string b = make_bundle("sharedmnt", {"sleep", "30"}, [](json& c) {
    json kept = json::array();
    for (const auto& ns : c["linux"]["namespaces"])
      if (ns["type"] != "mount") kept.push_back(ns);
    c["linux"]["namespaces"] = kept;
  });
  ASSERT_EQ(sh(cidrun() + " create -b " + b + " m1").code, 0);
  ASSERT_EQ(sh(cidrun() + " start m1").code, 0);
  Result ns = sh(cidrun() + " exec m1 readlink /proc/self/ns/mnt");
  EXPECT_EQ(ns.out, sh("readlink /proc/self/ns/mnt").out) << ns.err;
  Result root = sh(cidrun() + " exec m1 ls /");
  EXPECT_NE(root.out.find("bin\n"), std::string::npos) << root.out << root.err;
  EXPECT_EQ(root.out.find("rootfs"), std::string::npos) << root.out;
  EXPECT_NE(mounts_under(b + "/rootfs/proc"), "");
  ASSERT_EQ(sh(cidrun() + " delete -f m1").code, 0);
  EXPECT_EQ(mounts_under(b), "");
  // run takes them away too.
  json c = json::parse(slurp(b + "/config.json"));
  c["process"]["args"] = {"sh", "-c", "grep -c ' /proc ' /proc/self/mountinfo"};
  write_file(b + "/config.json", c.dump());
  Result r = sh(cidrun() + " run -b " + b + " m2");
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "1\n");
  EXPECT_EQ(mounts_under(b), "");
}
