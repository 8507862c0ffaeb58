// The pieces of the runtime that need no root: mount options, run's flags onto a config, the
// state store, signal names, and path resolution inside a root (openat2 works unprivileged).
#include <fcntl.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

#include <gtest/gtest.h>

#include "runtime/container.h"
#include "runtime/default_spec.h"
#include "runtime/mount_options.h"
#include "runtime/run_options.h"
#include "runtime/safe_path.h"
#include "runtime/state.h"
#include "util/error.h"

namespace cidrun::runtime {
namespace {

using nlohmann::json;

TEST(MountOptions, FlagsPropagationAndData) {
  MountOptions o = parse_mount_options({"rbind", "ro", "nosuid", "rslave", "size=64k", "mode=755"});
  EXPECT_TRUE(o.is_bind());
  EXPECT_EQ(o.flags & (MS_BIND | MS_REC | MS_RDONLY | MS_NOSUID),
            MS_BIND | MS_REC | MS_RDONLY | MS_NOSUID);
  EXPECT_EQ(o.propagation, MS_SLAVE | MS_REC);
  EXPECT_EQ(o.data, "size=64k,mode=755");
  MountOptions rw = parse_mount_options({"ro", "rw", "exec"});
  EXPECT_EQ(rw.flags, 0u);
  EXPECT_EQ(propagation_flag("private"), static_cast<unsigned long>(MS_PRIVATE));
  EXPECT_EQ(propagation_flag("nope"), 0u);
}

TEST(RunOptions, SizesUsersAndMounts) {
  EXPECT_EQ(parse_size("64m"), 64 << 20);
  EXPECT_EQ(parse_size("1G"), int64_t{1} << 30);
  EXPECT_EQ(parse_size("512"), 512);
  EXPECT_EQ(parse_size("10kb"), 10240);
  EXPECT_THROW(parse_size("ten"), Error);
  json m = parse_mount_flag("type=bind,src=/tmp,dst=/mnt,ro");
  EXPECT_EQ(m["source"], "/tmp");
  EXPECT_EQ(m["destination"], "/mnt");
  EXPECT_EQ(m["options"], json({"rbind", "ro"}));
  EXPECT_THROW(parse_mount_flag("type=bind,src=/tmp,dst=mnt"), Error);
  EXPECT_THROW(parse_mount_flag("type=bind,dst=/mnt"), Error);
  EXPECT_THROW(parse_mount_flag("type=bind,src=/tmp,dst=/mnt,bogus=1"), Error);
}

TEST(RunOptions, OverridesLandInTheConfig) {
  json c = default_spec({});
  RunOverrides o;
  o.args = {"/bin/echo", "x"};
  o.tty = true;
  o.env = {"A=1", "PATH=/bin"};
  o.hostname = "h";
  o.workdir = "/w";
  o.user = "5:6";
  o.read_only = true;
  o.network = "host";
  o.memory = "64m";
  o.pids_limit = 10;
  o.cpus = "1.5";
  apply_run_overrides(c, o);
  EXPECT_EQ(c["process"]["args"], json({"/bin/echo", "x"}));
  EXPECT_TRUE(c["process"]["terminal"].get<bool>());
  EXPECT_EQ(c["process"]["env"], json({"TERM=xterm", "A=1", "PATH=/bin"}));
  EXPECT_EQ(c["process"]["user"]["uid"], 5);
  EXPECT_EQ(c["linux"]["resources"]["memory"]["limit"], 64 << 20);
  EXPECT_EQ(c["linux"]["resources"]["pids"]["limit"], 10);
  EXPECT_EQ(c["linux"]["resources"]["cpu"]["quota"], 150000);
  for (const auto& ns : c["linux"]["namespaces"]) EXPECT_NE(ns["type"], "network");
  EXPECT_TRUE(c["linux"].contains("seccomp"));  // the default profile
  RunOverrides unconfined;
  unconfined.seccomp = "unconfined";
  json d = default_spec({});
  apply_run_overrides(d, unconfined);
  EXPECT_FALSE(d["linux"].contains("seccomp"));
  RunOverrides bad;
  bad.network = "bridge";
  EXPECT_THROW(apply_run_overrides(d, bad), Error);
}

TEST(Signals, NamesAndNumbers) {
  EXPECT_EQ(parse_signal("TERM"), SIGTERM);
  EXPECT_EQ(parse_signal("SIGKILL"), SIGKILL);
  EXPECT_EQ(parse_signal("sigusr1"), SIGUSR1);
  EXPECT_EQ(parse_signal("9"), 9);
  EXPECT_EQ(parse_signal("RTMIN+1"), SIGRTMIN + 1);
  EXPECT_THROW(parse_signal("NOPE"), Error);
  EXPECT_THROW(parse_signal("0"), Error);
}

class TempDir : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/cidrun-rt-unit.XXXXXX";
    dir_ = ::mkdtemp(tmpl);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string dir_;
};

using StateStoreTest = TempDir;

TEST_F(StateStoreTest, SaveLoadListRemove) {
  StateStore store(dir_ + "/state");
  UniqueFd creating = store.create_dir("abc");
  EXPECT_THROW(store.create_dir("abc"), Error);
  ContainerState st;
  st.id = "abc";
  st.pid = ::getpid();
  st.pid_start_time = process_start_time(::getpid());
  st.bundle = "/b";
  st.annotations = {{"k", "v"}};
  store.save(st);
  ContainerState back = store.load("abc");
  EXPECT_EQ(back.pid, st.pid);
  EXPECT_EQ(back.annotations["k"], "v");
  EXPECT_EQ(container_status(store, back), "running");  // our own pid is alive
  back.pid_start_time += 1;                             // a reused pid is not ours
  EXPECT_EQ(container_status(store, back), "stopped");
  json oci = oci_state(st, "running");
  EXPECT_EQ(oci["status"], "running");
  EXPECT_EQ(oci["bundle"], "/b");
  EXPECT_EQ(store.list(), std::vector<std::string>{"abc"});
  store.remove("abc");
  EXPECT_THROW(store.load("abc"), Error);
}

// Issue 15: a create killed between making the directory and saving state.json left a directory
// that `list` hid, `delete -f` ignored and that blocked the name for ever.
TEST_F(StateStoreTest, DirectoryOfACreateThatDiedIsReclaimed) {
  StateStore store(dir_ + "/state");
  {
    UniqueFd creating = store.create_dir("c1");
    // While its create runs, the directory is nobody else's.
    EXPECT_FALSE(store.remove_if_abandoned("c1"));
    EXPECT_THROW(store.create_dir("c1"), Error);
  }  // the create "died": its lock is gone, no state.json was written
  EXPECT_FALSE(store.exists("c1"));
  UniqueFd again = store.create_dir("c1");  // the name is usable again
  again.reset();
  EXPECT_TRUE(store.remove_if_abandoned("c1"));  // delete --force cleans it up too
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/state/c1"));
  EXPECT_FALSE(store.remove_if_abandoned("c1"));
}

TEST_F(StateStoreTest, ASavedContainerIsNeverTakenForAbandoned) {
  StateStore store(dir_ + "/state");
  UniqueFd lock = store.create_dir("c2");
  ContainerState st;
  st.id = "c2";
  st.pid = 1;
  store.save(st);
  lock.reset();
  EXPECT_FALSE(store.remove_if_abandoned("c2"));
  try {
    store.create_dir("c2");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), "container \"c2\" already exists");
  }
  EXPECT_TRUE(store.exists("c2"));
}

TEST(StateIds, Validated) {
  EXPECT_NO_THROW(validate_container_id("a-b_c.d+1"));
  EXPECT_THROW(validate_container_id(""), Error);
  EXPECT_THROW(validate_container_id(".."), Error);
  EXPECT_THROW(validate_container_id("a/b"), Error);
}

using SafePath = TempDir;

TEST_F(SafePath, SymlinksResolveInsideTheRoot) {
  std::string root = dir_ + "/root", outside = dir_ + "/outside";
  ::mkdir(root.c_str(), 0755);
  ::mkdir(outside.c_str(), 0755);
  ASSERT_EQ(::symlink(outside.c_str(), (root + "/abs").c_str()), 0);
  ASSERT_EQ(::symlink("../../../../outside", (root + "/rel").c_str()), 0);
  UniqueFd rfd(::open(root.c_str(), O_PATH | O_DIRECTORY));
  make_path_in_root(rfd.get(), "/abs/x/y", false);
  make_path_in_root(rfd.get(), "/rel/f", true);
  make_path_in_root(rfd.get(), "/../../z", false);
  EXPECT_TRUE(std::filesystem::is_directory(root + outside + "/x/y"));
  EXPECT_TRUE(std::filesystem::is_regular_file(root + "/outside/f"));
  EXPECT_TRUE(std::filesystem::is_directory(root + "/z"));
  EXPECT_TRUE(std::filesystem::is_empty(outside));
  EXPECT_FALSE(try_open_in_root(rfd.get(), "/missing").valid());
  auto pn = open_parent_in_root(rfd.get(), "/a/b/c");
  EXPECT_EQ(pn.name, "c");
  EXPECT_TRUE(std::filesystem::is_directory(root + "/a/b"));
}

}  // namespace
}  // namespace cidrun::runtime
