// process_start_time: what tells a live process from a dead one or a reused pid.
#include "util/proc.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <string>
#include <thread>

namespace cidrun {
namespace {

std::string comm_of(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/comm");
  std::string s;
  std::getline(in, s);
  return s;
}

TEST(ProcessStartTime, OursIsKnownAndStable) {
  uint64_t t = process_start_time(::getpid());
  EXPECT_GT(t, 0u);
  EXPECT_EQ(process_start_time(::getpid()), t);
}

TEST(ProcessStartTime, NoSuchProcessIsZero) {
  EXPECT_EQ(process_start_time(0), 0u);
  EXPECT_EQ(process_start_time(-1), 0u);
  // Above the kernel's pid_max (at most 2^22), so never a live process.
  EXPECT_EQ(process_start_time((1 << 22) + 1), 0u);
}

// A command name with spaces and parentheses must not shift the fields; a zombie counts as gone.
TEST(ProcessStartTime, OddCommandNamesAndZombies) {
  const char* name = "a) 1 2 (b)";
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::prctl(PR_SET_NAME, name);
    ::pause();
    ::_exit(0);
  }
  for (int i = 0; i < 500 && comm_of(child) != name; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  ASSERT_EQ(comm_of(child), name);
  uint64_t parent = process_start_time(::getpid());
  uint64_t t = process_start_time(child);
  EXPECT_GE(t, parent);
  EXPECT_EQ(process_start_time(child), t);

  ::kill(child, SIGKILL);
  // Until reaped the child is a zombie: finished, so 0.
  siginfo_t info{};
  ASSERT_EQ(::waitid(P_PID, static_cast<id_t>(child), &info, WEXITED | WNOWAIT), 0);
  EXPECT_EQ(process_start_time(child), 0u);
  ::waitpid(child, nullptr, 0);
  EXPECT_EQ(process_start_time(child), 0u);
}

}  // namespace
}  // namespace cidrun
