// config.json parsing: valid configs load, and every kind of mistake is one line naming the field.
#include "runtime/spec.h"

#include <gtest/gtest.h>

#include <functional>

#include "runtime/default_spec.h"
#include "util/error.h"

namespace cidrun::runtime {
namespace {

using nlohmann::json;

json minimal() {
  return json::parse(R"({"ociVersion":"1.1.0","root":{"path":"rootfs"},
    "process":{"args":["sh"],"cwd":"/"},"linux":{"namespaces":[{"type":"mount"}]}})");
}

std::string error_of(const json& j) {
  try {
    parse_spec(j);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(Spec, DefaultConfigParses) {
  Spec s = parse_spec(default_spec({}));
  EXPECT_EQ(s.process.args, std::vector<std::string>{"sh"});
  EXPECT_TRUE(s.root_readonly);
  EXPECT_TRUE(s.has_namespace("pid"));
  EXPECT_TRUE(s.has_namespace("network"));
  EXPECT_FALSE(s.has_namespace("user"));
  EXPECT_EQ(s.hostname, "cidrun");
  EXPECT_TRUE(s.process.no_new_privileges);
  EXPECT_FALSE(s.masked_paths.empty());
  EXPECT_NE(std::find(s.readonly_paths.begin(), s.readonly_paths.end(), "/proc/sys"),
            s.readonly_paths.end());
}

TEST(Spec, RootlessDefaultHasUserNamespaceAndMappings) {
  DefaultSpecOptions o;
  o.rootless = true;
  o.host_uid = 1000;
  o.host_gid = 1000;
  o.args = {"/bin/echo", "hi"};
  o.terminal = true;
  Spec s = parse_spec(default_spec(o));
  EXPECT_TRUE(s.has_namespace("user"));
  EXPECT_FALSE(s.has_namespace("network"));
  ASSERT_EQ(s.uid_mappings.size(), 1u);
  EXPECT_EQ(s.uid_mappings[0].host_id, 1000u);
  EXPECT_TRUE(s.process.terminal);
  EXPECT_EQ(s.process.args.size(), 2u);
}

TEST(Spec, BadJsonIsOneLine) {
  try {
    parse_spec_text("{\"ociVersion\": ", "cfg.json");
    FAIL();
  } catch (const Error& e) {
    std::string m = e.what();
    EXPECT_EQ(m.rfind("cfg.json: invalid JSON: ", 0), 0u) << m;
    EXPECT_EQ(m.find('\n'), std::string::npos);
  }
}

// Found by tests/fuzz/oci_spec.cpp: a number too big for a double is nlohmann's out_of_range,
// not a parse_error, and escaped parse_json as a foreign exception.
TEST(Spec, NumberTooBigForADoubleIsInvalidJson) {
  try {
    parse_spec_text("{\"ociVersion\": 4298E87291849348813}", "cfg.json");
    FAIL();
  } catch (const Error& e) {
    std::string m = e.what();
    EXPECT_EQ(m.rfind("cfg.json: invalid JSON: ", 0), 0u) << m;
    EXPECT_NE(m.find("number overflow"), std::string::npos) << m;
  }
}

TEST(Spec, MissingArgs) {
  json j = minimal();
  j["process"].erase("args");
  EXPECT_EQ(error_of(j), "config.json.process.args: required: at least the program to run");
}

TEST(Spec, WrongTypesNameTheField) {
  json j = minimal();
  j["process"]["args"] = "sh";
  EXPECT_EQ(error_of(j), "config.json.process.args: must be an array, not a string");
  j = minimal();
  j["process"]["user"] = {{"uid", "0"}};
  EXPECT_EQ(error_of(j), "config.json.process.user.uid: must be an integer, not a string");
  j = minimal();
  j["root"]["readonly"] = 1;
  EXPECT_EQ(error_of(j), "config.json.root.readonly: must be a boolean, not an integer");
  j = minimal();
  j["process"]["env"] = {"NOEQUALS"};
  EXPECT_NE(error_of(j).find("process.env[0]: must be NAME=VALUE"), std::string::npos);
}

TEST(Spec, RelativePathsAreRefused) {
  json j = minimal();
  j["process"]["cwd"] = "tmp";
  EXPECT_EQ(error_of(j), "config.json.process.cwd: must be an absolute path: \"tmp\"");
  j = minimal();
  j["mounts"] = {{{"destination", "proc"}, {"type", "proc"}, {"source", "proc"}}};
  EXPECT_EQ(error_of(j), "config.json.mounts[0].destination: must be an absolute path: \"proc\"");
  j = minimal();
  j["linux"]["maskedPaths"] = {"proc/kcore"};
  EXPECT_NE(error_of(j).find("maskedPaths: must be an absolute path"), std::string::npos);
}

TEST(Spec, UnknownOrDuplicateNamespace) {
  json j = minimal();
  j["linux"]["namespaces"].push_back({{"type", "net"}});
  EXPECT_NE(error_of(j).find("unknown namespace type \"net\""), std::string::npos) << error_of(j);
  j = minimal();
  j["linux"]["namespaces"].push_back({{"type", "mount"}});
  EXPECT_NE(error_of(j).find("duplicate namespace"), std::string::npos);
}

TEST(Spec, UserNamespaceNeedsMappingsAndHostnameNeedsUts) {
  json j = minimal();
  j["linux"]["namespaces"].push_back({{"type", "user"}});
  EXPECT_NE(error_of(j).find("needs uidMappings and gidMappings"), std::string::npos);
  j = minimal();
  j["hostname"] = "x";
  EXPECT_NE(error_of(j).find("needs a uts namespace"), std::string::npos);
}

TEST(Spec, VersionAndRootRequired) {
  json j = minimal();
  j.erase("ociVersion");
  EXPECT_EQ(error_of(j), "config.json.ociVersion: required");
  j = minimal();
  j["ociVersion"] = "2.0.0";
  EXPECT_NE(error_of(j).find("unsupported version"), std::string::npos);
  j = minimal();
  j.erase("root");
  EXPECT_EQ(error_of(j), "config.json.root: required");
}

TEST(Spec, DevicesHooksAndMappingsParse) {
  json j = minimal();
  j["linux"]["devices"] = {{{"path", "/dev/fuse"}, {"type", "c"}, {"major", 10}, {"minor", 229}}};
  j["hooks"] = {{"prestart", {{{"path", "/bin/true"}, {"timeout", 5}}}}};
  Spec s = parse_spec(j);
  ASSERT_EQ(s.devices.size(), 1u);
  EXPECT_EQ(s.devices[0].minor, 229);
  EXPECT_EQ(s.devices[0].file_mode, 0666u);
  ASSERT_EQ(s.hooks.prestart.size(), 1u);
  EXPECT_EQ(s.hooks.prestart[0].timeout, 5);
  j["linux"]["devices"][0]["type"] = "x";
  EXPECT_NE(error_of(j).find("devices[0].type: must be c, b, u or p"), std::string::npos);
  j = minimal();
  j["hooks"] = {{"poststop", {{{"path", "true"}}}}};
  EXPECT_NE(error_of(j).find("hooks.poststop[0].path: must be an absolute path"),
            std::string::npos);
}

// The spec: a value that cannot be mapped to a kernel interface is an error, found when the
// config is read rather than when the container's process is set up.
TEST(Spec, UnknownRlimitOrCapabilityIsAnError) {
  json j = minimal();
  j["process"]["rlimits"] = {{{"type", "RLIMIT_TEST"}, {"hard", 1024}, {"soft", 1024}}};
  EXPECT_EQ(error_of(j), "config.json.process.rlimits[0].type: unknown rlimit \"RLIMIT_TEST\"");
  j = minimal();
  j["process"]["capabilities"] = {{"bounding", {"CAP_KILL", "CAP_TEST"}}};
  EXPECT_EQ(error_of(j),
            "config.json.process.capabilities.bounding: unknown capability \"CAP_TEST\"");
  // Known names, in any case, are fine; whether this kernel has them is decided when applied.
  j["process"]["capabilities"] = {{"ambient", {"cap_kill", "CAP_CHECKPOINT_RESTORE"}}};
  EXPECT_EQ(error_of(j), "");
}

// The spec: a namespace left out of linux.namespaces is the runtime's own, the mount namespace
// included.
TEST(Spec, NoNamespaceAtAllIsValid) {
  json j = minimal();
  j["linux"]["namespaces"] = json::array();
  Spec s = parse_spec(j);
  EXPECT_FALSE(s.has_namespace("mount"));
}

// Issue 15: a value nested 50,000 deep overflowed the stack when the spec was copied and dumped
// (the release build died with SIGSEGV). Nesting is bounded before the JSON is parsed.
TEST(Spec, DeeplyNestedJsonIsRefusedBeforeItIsParsed) {
  std::string deep = R"({"ociVersion":"1.1.0","annotations":{"x":"y"},"v":)" +
                     std::string(50000, '[') + std::string(50000, ']') + "}";
  try {
    parse_spec_text(deep, "cfg.json");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), "cfg.json: invalid JSON: nested deeper than 128 levels");
  }
  // Brackets inside strings are text, not nesting; real configs are far from the limit.
  std::string text = minimal().dump();
  text.insert(1, R"("note":")" + std::string(1000, '[') + R"(\"{{",)");
  EXPECT_NO_THROW(parse_spec_text(text, "cfg.json"));
  EXPECT_NO_THROW(parse_spec_text(default_spec({}).dump(), "cfg.json"));
}

// Issue 15: additionalGids 4294967296 was taken and truncated to 0, giving the process the root
// group. Every number is checked against the range of the field it fills.
TEST(Spec, NumbersOutOfTheirFieldsRangeAreRefused) {
  auto with = [](const std::function<void(json&)>& change) {
    json j = minimal();
    change(j);
    return error_of(j);
  };
  EXPECT_EQ(with([](json& j) {
              j["process"]["user"] = {{"uid", 0}, {"gid", 0}, {"additionalGids", {4294967296}}};
            }),
            "config.json.process.user.additionalGids[0]: out of range (0..4294967294)");
  EXPECT_EQ(with([](json& j) {
              j["process"]["user"] = {{"uid", 0}, {"gid", 0}, {"additionalGids", {-1}}};
            }),
            "config.json.process.user.additionalGids[0]: out of range (0..4294967294)");
  EXPECT_EQ(with([](json& j) {
              j["process"]["user"] = {{"uid", 0}, {"gid", 0}, {"additionalGids", {"5"}}};
            }),
            "config.json.process.user.additionalGids[0]: must be an integer, not a string");
  // (uid_t)-1 means "leave unchanged" to setresuid: the process would stay root.
  EXPECT_EQ(with([](json& j) {
              j["process"]["user"] = {{"uid", 4294967295u}, {"gid", 0}};
            }),
            "config.json.process.user.uid: out of range (0..4294967294)");
  EXPECT_EQ(with([](json& j) {
              j["process"]["user"] = {{"uid", 0}, {"gid", -1}};
            }),
            "config.json.process.user.gid: out of range (0..4294967294)");
  EXPECT_EQ(with([](json& j) {
              j["process"]["consoleSize"] = {{"height", 65536}, {"width", 80}};
            }),
            "config.json.process.consoleSize.height: out of range (0..65535)");
  // The kernel's device number has 12 bits of major: mknod(2) would refuse 4097 only later.
  EXPECT_EQ(with([](json& j) {
              j["linux"]["devices"] = {
                  {{"path", "/dev/x"}, {"type", "c"}, {"major", 4097}, {"minor", 1}}};
            }),
            "config.json.linux.devices[0].major: out of range (0..4095)");
  EXPECT_EQ(
      with([](json& j) {
        j["linux"]["namespaces"].push_back({{"type", "user"}});
        j["linux"]["uidMappings"] = {{{"containerID", 0}, {"hostID", 4294967000u}, {"size", 1000}}};
        j["linux"]["gidMappings"] = {{{"containerID", 0}, {"hostID", 0}, {"size", 1}}};
      }),
      "config.json.linux.uidMappings[0].size: the range goes past the last id (4294967294)");
  EXPECT_EQ(with([](json& j) {
              j["linux"]["namespaces"].push_back({{"type", "user"}});
              j["linux"]["uidMappings"] = {{{"containerID", 0}, {"hostID", 0}, {"size", 0}}};
              j["linux"]["gidMappings"] = {{{"containerID", 0}, {"hostID", 0}, {"size", 1}}};
            }),
            "config.json.linux.uidMappings[0].size: must be at least 1");
  // The largest valid values still pass.
  EXPECT_EQ(with([](json& j) {
              j["process"]["user"] = {
                  {"uid", 4294967294u}, {"gid", 4294967294u}, {"additionalGids", {4294967294u}}};
              j["linux"]["devices"] = {
                  {{"path", "/dev/x"}, {"type", "b"}, {"major", 4095}, {"minor", 1048575}}};
            }),
            "");
}

TEST(Spec, ProcessForExec) {
  ProcessSpec p =
      parse_process(json::parse(R"({"args":["ls"],"cwd":"/tmp","user":{"uid":5,"gid":6,"umask":18,
      "additionalGids":[7]},"terminal":true,"oomScoreAdj":100})"),
                    "process.json");
  EXPECT_EQ(p.uid, 5u);
  EXPECT_EQ(p.gid, 6u);
  EXPECT_EQ(*p.umask, 022u);
  EXPECT_EQ(p.additional_gids, std::vector<uint32_t>{7});
  EXPECT_EQ(*p.oom_score_adj, 100);
  EXPECT_TRUE(p.terminal);
  EXPECT_THROW(parse_process(json::parse(R"({"args":[],"cwd":"/"})"), "p"), Error);
}

}  // namespace
}  // namespace cidrun::runtime
