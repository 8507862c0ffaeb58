// pull / serve / push through the real binary: serve on an ephemeral loopback port, pull from it
// into another repo, push to a CAR file and pull from that; errors name the missing CID.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "integration/content_helpers.h"
#include "integration/serve_process.h"

namespace cidrun::testing {
namespace {

class exchangeCli : public ServedTreeTest {
 protected:
  exchangeCli() : ServedTreeTest(1500000) {}
};

TEST_F(exchangeCli, ServeBindsLoopbackAndPullFetchesAndPins) {
  ServeProcess serve(sb.repo(), ":0");
  EXPECT_EQ(serve.url().rfind("http://127.0.0.1:", 0), 0u) << serve.url();
  std::string repo2 = sb.path("repo2");
  Result r = sb.run("pull " + root + " --from " + serve.url(), repo2);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("pulled " + root), std::string::npos) << r.out;
  EXPECT_TRUE(fs::exists(repo2 + "/pins/recursive/" + root));
  EXPECT_TRUE(same_tree(repo2, sb.path("out2")));
  // Resumable: a second pull fetches nothing.
  Result again = sb.run("pull " + root + " --json --from " + serve.url(), repo2);
  ASSERT_EQ(again.code, 0) << again.err;
  auto last = nlohmann::json::parse(again.out.substr(again.out.rfind('{')));
  EXPECT_EQ(last.at("event"), "done");
  EXPECT_EQ(last.at("fetched_blocks"), 0);
  EXPECT_EQ(serve.stop(), 0);  // SIGTERM ends serve cleanly
}

TEST_F(exchangeCli, PullDrawsAProgressBarOnlyOnATerminal) {
  ServeProcess serve(sb.repo(), "127.0.0.1:0");
  // script(1) gives the pull a pseudo-terminal; what it drew lands in tty.out.
  std::string pull = std::string(CIDRUN_BINARY) + " --repo-dir " + shell_quote(sb.path("repo7")) +
                     " pull " + root + " --from " + serve.url();
  std::string cmd = "script -qec " + shell_quote(pull) + " /dev/null >" +
                    shell_quote(sb.path("tty.out")) + " 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  std::string tty = slurp(sb.path("tty.out"));
  EXPECT_NE(tty.find("\rpulling "), std::string::npos) << tty;
  EXPECT_NE(tty.find(" blocks, "), std::string::npos) << tty;
  EXPECT_NE(tty.find("B/s"), std::string::npos) << tty;
  // Not a terminal: no bar, only the summary.
  Result piped = sb.run("pull " + root + " --from " + serve.url(), sb.path("repo8"));
  ASSERT_EQ(piped.code, 0) << piped.err;
  EXPECT_EQ(piped.err.find("\rpulling"), std::string::npos) << piped.err;
}

TEST_F(exchangeCli, PushToCarFileAndPullFromIt) {
  std::string car = sb.path("dag.car");
  Result r = sb.run("push " + root + " --to car:" + shell_quote(car));
  ASSERT_EQ(r.code, 0) << r.err;
  std::string repo3 = sb.path("repo3");
  ASSERT_EQ(sb.run("pull -q " + root + " --from car:" + shell_quote(car), repo3).code, 0);
  EXPECT_TRUE(same_tree(repo3, sb.path("out3")));
}

TEST_F(exchangeCli, NoGoodSourceIsOneClearErrorNamingTheCid) {
  std::string repo4 = sb.path("repo4");
  Result none = sb.run("pull " + root, repo4);
  EXPECT_EQ(none.code, 1);
  EXPECT_NE(none.err.find("no block sources"), std::string::npos) << none.err;
  ::setenv("CIDRUN_STALL_TIMEOUT", "1", 1);
  Result dead =
      sb.run("pull " + root + " --from http://127.0.0.1:1 --from http://127.0.0.1:2", repo4);
  ::unsetenv("CIDRUN_STALL_TIMEOUT");
  EXPECT_EQ(dead.code, 1);
  EXPECT_NE(dead.err.find("cidrun: error: block " + root + " not found"), std::string::npos)
      << dead.err;
  // Retries and the CAR attempt fail too, but each dead source is reported once, then the error.
  for (const char* port : {":1: ", ":2: "}) {
    std::string warning = std::string("cidrun: warning: source failed: http://127.0.0.1") + port;
    size_t first = dead.err.find(warning);
    EXPECT_NE(first, std::string::npos) << dead.err;
    EXPECT_EQ(dead.err.find(warning, first + 1), std::string::npos) << dead.err;
  }
  EXPECT_EQ(std::count(dead.err.begin(), dead.err.end(), '\n'), 3) << dead.err;
  EXPECT_FALSE(fs::exists(repo4 + "/pins/recursive/" + root));
}

TEST_F(exchangeCli, ServeFromSourcesIsARecursiveGateway) {
  ServeProcess origin(sb.repo(), "127.0.0.1:0");
  // A relay with an empty store that fetches (and verifies) what it lacks from the origin.
  ServeProcess relay(sb.path("relay-repo"), "127.0.0.1:0", {"--from", origin.url()});
  std::string repo6 = sb.path("repo6");
  Result r = sb.run("pull -q " + root + " --from " + relay.url(), repo6);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(same_tree(repo6, sb.path("out6")));
}

TEST_F(exchangeCli, SourcesFromTheRepoConfigFile) {
  ServeProcess serve(sb.repo(), "127.0.0.1:0");
  std::string repo5 = sb.path("repo5");
  fs::create_directories(repo5);
  std::ofstream(repo5 + "/config.json") << R"({"sources": [")" << serve.url() << R"("]})";
  Result r = sb.run("pull -q " + root, repo5);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(same_tree(repo5, sb.path("out5")));
}

}  // namespace
}  // namespace cidrun::testing
