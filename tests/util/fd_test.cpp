// open_beneath: the confinement every tree writer (get, image unpack) opens names through.
#include "util/fd.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <string>

namespace cidrun {
namespace {

namespace fs = std::filesystem;

TEST(OpenBeneath, OpensBelowAndRefusesEveryWayOut) {
  char tmpl[] = "/tmp/open_beneath_XXXXXX";
  std::string dir = ::mkdtemp(tmpl);
  fs::create_directories(dir + "/root/a/b");
  fs::create_directories(dir + "/outside");
  fs::create_symlink(dir + "/outside", dir + "/root/abs-link");
  fs::create_symlink("../outside", dir + "/root/rel-link");
  fs::create_symlink("b", dir + "/root/a/inner-link");
  UniqueFd root(::open((dir + "/root").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  ASSERT_TRUE(root.valid());

  UniqueFd b(open_beneath(root.get(), "a/b", O_RDONLY | O_DIRECTORY));
  EXPECT_TRUE(b.valid()) << std::strerror(errno);
  UniqueFd made(open_beneath(root.get(), "a/b/new", O_WRONLY | O_CREAT | O_EXCL, 0600));
  EXPECT_TRUE(made.valid()) << std::strerror(errno);
  struct stat st {};
  ASSERT_EQ(::fstat(made.get(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  EXPECT_TRUE(::fcntl(made.get(), F_GETFD) & FD_CLOEXEC);

  for (const char* way_out : {"..", "../outside", "a/../../outside", "/tmp", "abs-link", "rel-link",
                              "abs-link/x", "a/inner-link"}) {
    errno = 0;
    UniqueFd fd(open_beneath(root.get(), way_out, O_RDONLY));
    EXPECT_FALSE(fd.valid()) << way_out << " was opened";
  }
  EXPECT_TRUE(fs::is_empty(dir + "/outside"));
  fs::remove_all(dir);
}

}  // namespace
}  // namespace cidrun
