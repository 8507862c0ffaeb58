// The sync socket's typed messages: each step arrives as sent, with its value and an fd, and a
// failure carries its reason and the exit status the failing process uses.
#include "runtime/sync.h"

#include <fcntl.h>
#include <gtest/gtest.h>
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

}  // namespace
}  // namespace cidrun::runtime
