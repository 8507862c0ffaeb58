// --user names and ids resolved in a container root's own /etc/passwd and /etc/group.
#include "runtime/user_lookup.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>

#include "util/error.h"

using namespace cidrun;
using namespace cidrun::runtime;

namespace {

struct Root {
  std::string dir;
  Root() {
    char tmpl[] = "/tmp/cidrun-userlookup-XXXXXX";
    dir = ::mkdtemp(tmpl);
    ::mkdir((dir + "/etc").c_str(), 0755);
  }
  ~Root() { std::system(("rm -rf " + dir).c_str()); }
  void write(const std::string& rel, const std::string& text) const {
    std::ofstream(dir + "/" + rel) << text;
  }
};

void write_db(const Root& r) {
  r.write("etc/passwd",
          "root:x:0:0:root:/root:/bin/sh\n"
          "# a comment\n"
          "app:x:1000:1001:App:/home/app:/bin/sh\n"
          "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n");
  r.write("etc/group",
          "root:x:0:\n"
          "apps:x:1001:\n"
          "wheel:x:10:root,app\n"
          "audio:x:29:app\n"
          "video:x:44:someone\n");
}

}  // namespace

TEST(UserLookup, NamesAndIdsFromTheContainersFiles) {
  Root r;
  write_db(r);
  ResolvedUser u = resolve_user_in("app", r.dir);
  EXPECT_EQ(u.uid, 1000u);
  EXPECT_EQ(u.gid, 1001u);  // the passwd entry's primary group
  EXPECT_EQ(u.additional_gids, (std::vector<uint32_t>{10, 29}));
  EXPECT_EQ(u.home, "/home/app");

  u = resolve_user_in("app:wheel", r.dir);
  EXPECT_EQ(u.gid, 10u);
  EXPECT_EQ(u.additional_gids, (std::vector<uint32_t>{29}));  // the primary is not repeated

  u = resolve_user_in("1000:44", r.dir);  // numeric: still gets app's groups and home
  EXPECT_EQ(u.uid, 1000u);
  EXPECT_EQ(u.gid, 44u);
  EXPECT_EQ(u.additional_gids, (std::vector<uint32_t>{10, 29}));

  u = resolve_user_in("4242", r.dir);  // no entry: gid = uid, no groups, no home
  EXPECT_EQ(u.gid, 4242u);
  EXPECT_TRUE(u.additional_gids.empty());
  EXPECT_EQ(u.home, "");
}

TEST(UserLookup, UnknownNamesAreOneClearLine) {
  Root r;
  write_db(r);
  try {
    resolve_user_in("ghost", r.dir);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "--user ghost: no user named 'ghost' in the container's /etc/passwd");
  }
  try {
    resolve_user_in("app:ghosts", r.dir);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(),
                 "--user app:ghosts: no group named 'ghosts' in the container's /etc/group");
  }
  EXPECT_THROW(resolve_user_in("", r.dir), Error);
  EXPECT_THROW(resolve_user_in("app:", r.dir), Error);
  EXPECT_THROW(resolve_user_in(":1", r.dir), Error);
  EXPECT_THROW(resolve_user_in("99999999999", r.dir), Error);  // not an id, not a name here
}

TEST(UserLookup, NeverReadsTheHostsFiles) {
  // An image whose /etc/passwd is an absolute symlink to the host's: resolved inside the root,
  // it names <root>/etc/host-passwd, which does not exist, so "root" is unknown there.
  Root r;
  ASSERT_EQ(::symlink("/etc/host-passwd", (r.dir + "/etc/passwd").c_str()), 0);
  EXPECT_THROW(resolve_user_in("root", r.dir), Error);
  // ../../ climbs stop at the container's root too.
  Root r2;
  ASSERT_EQ(::symlink("../../../../../../etc/passwd", (r2.dir + "/etc/passwd").c_str()), 0);
  EXPECT_THROW(resolve_user_in("root", r2.dir), Error);
  r2.write("etc/group", "");
  // The symlink chain ends at the image's own file when that exists.
  Root r3;
  r3.write("etc/real", "alice:x:5:6::/a:/bin/sh\n");
  ASSERT_EQ(::symlink("/etc/real", (r3.dir + "/etc/passwd").c_str()), 0);
  EXPECT_EQ(resolve_user_in("alice", r3.dir).uid, 5u);
}

TEST(UserLookup, SpecialFilesAreRefused) {
  Root r;
  ASSERT_EQ(::mkfifo((r.dir + "/etc/passwd").c_str(), 0644), 0);
  try {
    resolve_user_in("root", r.dir);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "the container's /etc/passwd is not a regular file");
  }
}

TEST(UserLookup, WithoutARootOnlyIdsWork) {
  EXPECT_EQ(resolve_user("7:8", -1).gid, 8u);
  EXPECT_THROW(resolve_user("root", -1), Error);
}
