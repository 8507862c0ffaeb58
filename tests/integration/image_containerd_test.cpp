// `cidrun image export` handed to containerd: an image cidrun built from a root directory goes out
// as an oci-archive and as a docker-archive, `ctr image import` takes each into a containerd this
// test starts (integration/containerd_process.h), and containers run from containerd's own
// unpacked snapshot, with cidrun as the runtime, see what the image holds: contents, owners,
// modes with setuid, a hard-link group with its owner, mode, mtime and xattr, and the config.
#include <gtest/gtest.h>

#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "integration/containerd_process.h"

using namespace rt_test;

namespace {

std::string cli() {
  return cidrun() + " --repo-dir " + work_dir() + "/repo";
}

// A busybox root with what a tar applier can get wrong, and a config, imported as `name`.
void import_test_image(const std::string& name) {
  const std::string root = make_root("export-root");
  write_file(root + "/etc/greeting", "hello from an export\n");
  write_file(root + "/etc/owned", "owned\n");
  write_file(root + "/etc/group-a", "one inode, two names\n");
  Result r = sh("cd " + root +
                " && chown 7:8 etc/owned && chmod 4750 etc/owned"
                " && ln etc/group-a etc/group-b && chown 5:6 etc/group-a && chmod 0640 etc/group-a"
                " && setfattr -n user.origin -v cidrun-test etc/group-a"
                " && touch -d @1234567 etc/group-a");
  ASSERT_EQ(r.code, 0) << r.err;
  write_file(work_dir() + "/config.json", R"({"config": {
      "Env": ["PATH=/bin", "GREETING=hello from the config"], "WorkingDir": "/etc",
      "Cmd": ["/bin/sh", "-c", "echo \"$GREETING in $(pwd)\""]}})");
  r = sh(cli() + " image import -q --tag " + name + " --config " + work_dir() +
         "/config.json rootfs:" + root);
  ASSERT_EQ(r.code, 0) << r.err;
}

// The line of `ctr image ls` naming image, split into its columns (REF TYPE DIGEST ...).
std::vector<std::string> listed(const Containerd& c, const std::string& image) {
  std::istringstream lines(c.ctr("image ls").out);
  for (std::string line; std::getline(lines, line);) {
    std::istringstream words(line);
    std::vector<std::string> cols;
    for (std::string w; words >> w;) cols.push_back(w);
    if (!cols.empty() && cols[0] == image) return cols;
  }
  return {};
}

// Runs the image's own config, then a script printing what a tar applier sets, in containers
// of containerd's snapshot of image; both with cidrun as the runtime.
void expect_image_runs(const Containerd& c, const std::string& image, const std::string& id) {
  SCOPED_TRACE(image);
  Result r = sh(c.run_command() + " --rm " + image + " " + id + "-config");
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "hello from the config in /etc\n");
  r = sh(c.run_command() + " --rm " + image + " " + id + "-files sh -c " +
         shell_quote("cat /etc/greeting; stat -c '%n %u:%g %a %h' /etc/owned /bin/busybox; "
                     "stat -c '%n %u:%g %a %h %Y' /etc/group-a /etc/group-b; "
                     "[ /etc/group-a -ef /etc/group-b ] && echo one inode"));
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out,
            "hello from an export\n"
            "/etc/owned 7:8 4750 1\n"
            "/bin/busybox 0:0 755 1\n"
            "/etc/group-a 5:6 640 2 1234567\n"
            "/etc/group-b 5:6 640 2 1234567\n"
            "one inode\n");
}

}  // namespace

TEST(ImageContainerd, ImportsOciAndDockerArchiveExportsAndRunsThem) {
  ASSERT_NO_FATAL_FAILURE(import_test_image("exported"));
  const std::string& dir = work_dir();
  Containerd c;

  // oci-archive: a full name as REF is the image's name in containerd; the manifest is ours,
  // byte for byte, so containerd lists the digest export printed.
  Result e = sh(cli() + " image export exported oci-archive:" + dir +
                "/exported.oci.tar:cidrun-test/exported:oci");
  ASSERT_EQ(e.code, 0) << e.err;
  const std::string manifest_digest = chomp(e.out);
  ASSERT_EQ(manifest_digest.rfind("sha256:", 0), 0u) << e.out;
  Result r = c.ctr("image import " + dir + "/exported.oci.tar");
  ASSERT_EQ(r.code, 0) << r.err;
  std::vector<std::string> oci = listed(c, "cidrun-test/exported:oci");
  ASSERT_GE(oci.size(), 3u) << c.ctr("image ls").out;
  EXPECT_EQ(oci[1], "application/vnd.oci.image.manifest.v1+json");
  EXPECT_EQ(oci[2], manifest_digest);

  // docker-archive: containerd writes a Docker manifest of its own for it (and stores the layer
  // gzipped); it must name our config, kept byte for byte, whose diff_id is our layer's digest.
  e = sh(cli() + " image export exported docker-archive:" + dir +
         "/exported.docker.tar:cidrun-test/exported:docker");
  ASSERT_EQ(e.code, 0) << e.err;
  r = c.ctr("image import " + dir + "/exported.docker.tar");
  ASSERT_EQ(r.code, 0) << r.err;
  std::vector<std::string> docker = listed(c, "docker.io/cidrun-test/exported:docker");
  ASSERT_GE(docker.size(), 3u) << c.ctr("image ls").out;
  nlohmann::json ours = nlohmann::json::parse(
      sh("tar -xOf " + dir + "/exported.docker.tar manifest.json").out, nullptr, false);
  ASSERT_TRUE(ours.is_array() && ours.size() == 1) << ours;
  const std::string config_file = ours[0].value("Config", "");
  const std::string config_digest = "sha256:" + config_file.substr(0, config_file.find('.'));
  const std::string layer_file = ours[0]["Layers"][0].get<std::string>();
  const std::string layer_digest =
      "sha256:" + sh("tar -xOf " + dir + "/exported.docker.tar " + layer_file + " | sha256sum")
                      .out.substr(0, 64);
  nlohmann::json manifest =
      nlohmann::json::parse(c.ctr("content get " + docker[2]).out, nullptr, false);
  ASSERT_TRUE(manifest.is_object()) << c.ctr("content get " + docker[2]).out;
  EXPECT_EQ(manifest["config"].value("digest", ""), config_digest) << manifest;
  EXPECT_EQ(manifest["layers"].size(), 1u) << manifest;
  nlohmann::json config =
      nlohmann::json::parse(c.ctr("content get " + config_digest).out, nullptr, false);
  ASSERT_TRUE(config.is_object()) << c.ctr("content get " + config_digest).out;
  EXPECT_EQ(config["rootfs"]["diff_ids"], nlohmann::json::array({layer_digest})) << config;

  // Both exports hold the same uncompressed layer, so containerd unpacked one snapshot for both.
  expect_image_runs(c, "cidrun-test/exported:oci", "oci");
  expect_image_runs(c, "docker.io/cidrun-test/exported:docker", "docker");
  // The xattr reached containerd's snapshot (busybox has no getfattr to look from inside).
  r = sh("getfattr --only-values -n user.origin " + c.dir() +
         "/root/io.containerd.snapshotter.v1.overlayfs/snapshots/*/fs/etc/group-b");
  EXPECT_EQ(r.out, "cidrun-test") << r.err;
  EXPECT_EQ(c.ctr("task ls -q").out, "");
  EXPECT_NE(c.calls().find(" create --bundle"), std::string::npos) << c.calls();
}
