// The sync socket's typed messages: each step arrives as sent, with its value and an fd, and a
// failure carries its reason and the exit status the failing process uses.
#include "runtime/sync.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

namespace cidrun::runtime {
namespace {

TEST(SyncSocket, StepsArriveWithTheirValueAndFd) {
  auto [a, b] = SyncSocket::pair();
  int p[2];
  ASSERT_EQ(::pipe(p), 0);
  a.send(SyncStep::kGo, 4242);
  a.send(SyncStep::kPty, 0, p[0]);
  EXPECT_EQ(b.expect(SyncStep::kGo, "peer").value, 4242);
  UniqueFd got;
  b.expect(SyncStep::kPty, "peer", &got);
  ASSERT_TRUE(got.valid());
  ASSERT_EQ(::write(p[1], "x", 1), 1);
  char c = 0;
  EXPECT_EQ(::read(got.get(), &c, 1), 1);
  EXPECT_EQ(c, 'x');
  ::close(p[0]);
  ::close(p[1]);
}

TEST(SyncSocket, FailureCarriesItsReasonAndExitStatus) {
  auto [a, b] = SyncSocket::pair();
  EXPECT_TRUE(a.send_failure("exec: \"nope\": executable file not found in $PATH", 127));
  try {
    b.expect(SyncStep::kReady, "container init");
    FAIL() << "no SetupFailed";
  } catch (const SetupFailed& e) {
    EXPECT_STREQ(e.what(), "exec: \"nope\": executable file not found in $PATH");
    EXPECT_EQ(e.exit_status(), 127);
  }
}

TEST(SyncSocket, AnotherStepOrEndOfFileIsAnError) {
  auto [a, b] = SyncSocket::pair();
  a.send(SyncStep::kMounted);
  EXPECT_THROW(b.expect(SyncStep::kReady, "container init"), Error);
  a.close();
  try {
    b.expect(SyncStep::kReady, "container init");
    FAIL() << "no error at end of file";
  } catch (const SetupFailed&) {
    FAIL() << "end of file is not the peer's failure";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "container init exited during setup");
  }
  EXPECT_FALSE(b.send_failure("nobody listens"));
}

// A child whose runtime went away (it failed, and says why itself) exits 1 without a word: one
// error on the shared stderr, not two.
TEST(SyncSocket, RuntimeGoneMakesTheChildExitQuietly) {
  auto [runtime, child] = SyncSocket::pair();
  int err[2];
  ASSERT_EQ(::pipe(err), 0);
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::dup2(err[1], STDERR_FILENO);
    runtime.close();
    child.expect_from_runtime(SyncStep::kGo);
    ::_exit(0);
  }
  ::close(err[1]);
  child.close();
  runtime.close();
  int ws = 0;
  ASSERT_EQ(::waitpid(pid, &ws, 0), pid);
  EXPECT_TRUE(WIFEXITED(ws) && WEXITSTATUS(ws) == 1) << ws;
  char buf[64];
  EXPECT_EQ(::read(err[0], buf, sizeof buf), 0);
  ::close(err[0]);
}

}  // namespace
}  // namespace cidrun::runtime
