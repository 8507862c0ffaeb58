// The runc lifecycle on a bundle: create, start, state, exec, ps, list, pause, resume, kill,
// delete, and their errors.
#include <gtest/gtest.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <thread>

#include "integration/runtime_helpers.h"

using namespace rt_test;
using nlohmann::json;

TEST(RuntimeLifecycle, CreateStartStateExecKillDelete) {
  std::string b = make_bundle("b1", {"sleep", "30"});
  std::string pidfile = work_dir() + "/b1.pid";
  Result c = sh(cidrun() + " create --bundle " + b + " --pid-file=" + pidfile + " c1");
  ASSERT_EQ(c.code, 0) << c.err;
  EXPECT_EQ(status_of("c1"), "created");
  json st = json::parse(sh(cidrun() + " state c1").out);
  EXPECT_EQ(std::to_string(st["pid"].get<int>()), slurp(pidfile));
  EXPECT_EQ(st["bundle"], b);
  EXPECT_EQ(st["ociVersion"], "1.1.0");

  ASSERT_EQ(sh(cidrun() + " start c1").code, 0);
  EXPECT_EQ(status_of("c1"), "running");
  Result again = sh(cidrun() + " start c1");
  EXPECT_NE(again.code, 0);
  EXPECT_NE(again.err.find("not created"), std::string::npos) << again.err;

  Result e = sh(cidrun() + " exec c1 /bin/sh -c 'echo $$; cat /proc/1/cmdline | tr \"\\0\" \" \"'");
  EXPECT_EQ(e.code, 0) << e.err;
  EXPECT_NE(e.out.find("sleep 30"), std::string::npos) << e.out;
  EXPECT_EQ(sh(cidrun() + " exec c1 /bin/sh -c 'exit 5'").code, 5);
  EXPECT_EQ(sh(cidrun() + " exec c1 /nonexistent").code, 127);
  EXPECT_EQ(
      sh(cidrun() + " exec --env X=1 --cwd /tmp -u 7 c1 /bin/sh -c 'echo $X $(pwd) $(id -u)'").out,
      "1 /tmp 7\n");

  Result ps = sh(cidrun() + " ps --format json c1");
  EXPECT_EQ(ps.code, 0);
  EXPECT_EQ(json::parse(ps.out).size(), 1u) << ps.out;
  Result list = sh(cidrun() + " list --format=json");
  EXPECT_NE(list.out.find("\"c1\""), std::string::npos) << list.out;

  ASSERT_EQ(sh(cidrun() + " pause c1").code, 0);
  EXPECT_EQ(status_of("c1"), "paused");
  EXPECT_NE(sh(cidrun() + " pause c1").code, 0);
  ASSERT_EQ(sh(cidrun() + " resume c1").code, 0);
  EXPECT_EQ(status_of("c1"), "running");

  Result del = sh(cidrun() + " delete c1");
  EXPECT_NE(del.code, 0);
  EXPECT_NE(del.err.find("--force"), std::string::npos) << del.err;
  ASSERT_EQ(sh(cidrun() + " kill c1 KILL").code, 0);
  wait_status("c1", "stopped");
  EXPECT_EQ(status_of("c1"), "stopped");
  EXPECT_NE(sh(cidrun() + " kill c1 TERM").code, 0);
  EXPECT_EQ(sh(cidrun() + " delete c1").code, 0);
  EXPECT_NE(status_of("c1").find("does not exist"), std::string::npos);
}

TEST(RuntimeLifecycle, DeleteForceKillsRunning) {
  std::string b = make_bundle("b2", {"sleep", "30"});
  ASSERT_EQ(sh(cidrun() + " create -b " + b + " c2").code, 0);
  ASSERT_EQ(sh(cidrun() + " start c2").code, 0);
  EXPECT_EQ(sh(cidrun() + " delete --force c2").code, 0);
  EXPECT_EQ(sh(cidrun() + " delete --force c2").code, 0);  // gone already: fine with --force
  EXPECT_NE(sh(cidrun() + " delete c2").code, 0);
}

TEST(RuntimeLifecycle, KillSignalNamesAndNumbers) {
  std::string b =
      make_bundle("b3", {"/bin/sh", "-c", "trap 'exit 3' USR1; while :; do sleep 0.05; done"});
  ASSERT_EQ(sh(cidrun() + " create -b " + b + " c3").code, 0);
  ASSERT_EQ(sh(cidrun() + " start c3").code, 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_NE(sh(cidrun() + " kill c3 NOPE").code, 0);
  EXPECT_EQ(sh(cidrun() + " kill c3 SIGUSR1").code, 0);
  wait_status("c3", "stopped");
  EXPECT_EQ(status_of("c3"), "stopped");
  EXPECT_EQ(sh(cidrun() + " delete c3").code, 0);
}

TEST(RuntimeLifecycle, Errors) {
  EXPECT_NE(sh(cidrun() + " state nosuch").code, 0);
  EXPECT_NE(sh(cidrun() + " start nosuch").code, 0);
  Result bad = sh(cidrun() + " state ../etc");
  EXPECT_NE(bad.err.find("invalid container id"), std::string::npos) << bad.err;
  std::string b = make_bundle("b4", {"true"});
  ASSERT_EQ(sh(cidrun() + " create -b " + b + " dup").code, 0);
  Result dup = sh(cidrun() + " create -b " + b + " dup");
  EXPECT_NE(dup.err.find("already exists"), std::string::npos) << dup.err;
  EXPECT_EQ(sh(cidrun() + " delete dup").code, 0);  // created, not running: no --force needed
  write_file(b + "/config.json", "{not json");
  Result j = sh(cidrun() + " create -b " + b + " badjson");
  EXPECT_NE(j.err.find("invalid JSON"), std::string::npos) << j.err;
}

TEST(RuntimeLifecycle, HooksGetStateOnStdin) {
  std::string b = make_bundle("b5", {"true"});
  json c = json::parse(slurp(b + "/config.json"));
  std::string log = work_dir() + "/hooks.log";
  auto hook = [&](const std::string& name) {
    return json{{"path", "/bin/sh"},
                {"args", {"sh", "-c", "read s; echo " + name + " \"$s\" >>" + log}}};
  };
  // startContainer runs inside the container (after pivot_root): it logs into the rootfs.
  json start = {{"path", "/bin/sh"},
                {"args", {"sh", "-c", "read s; echo startContainer \"$s\" >/start.log"}}};
  c["root"]["readonly"] = false;
  c["hooks"] = {{"prestart", {hook("prestart")}},
                {"createRuntime", {hook("createRuntime")}},
                {"createContainer", {hook("createContainer")}},
                {"startContainer", {start}},
                {"poststart", {hook("poststart")}},
                {"poststop", {hook("poststop")}}};
  write_file(b + "/config.json", c.dump());
  ASSERT_EQ(sh(cidrun() + " create -b " + b + " h1").code, 0);
  ASSERT_EQ(sh(cidrun() + " start h1").code, 0);
  wait_status("h1", "stopped");
  ASSERT_EQ(sh(cidrun() + " delete h1").code, 0);
  std::string text = slurp(log);
  EXPECT_NE(text.find("prestart {"), std::string::npos) << text;
  EXPECT_NE(text.find("createRuntime {"), std::string::npos) << text;
  EXPECT_NE(text.find("poststart {"), std::string::npos) << text;
  EXPECT_NE(text.find("poststop {"), std::string::npos) << text;
  EXPECT_NE(text.find("createContainer {"), std::string::npos) << text;
  EXPECT_NE(text.find("\"id\":\"h1\""), std::string::npos) << text;
  EXPECT_NE(slurp(b + "/rootfs/start.log").find("startContainer {"), std::string::npos);
}

TEST(RuntimeLifecycle, HookTimeoutAbortsCreate) {
  std::string b = make_bundle("b8", {"true"});
  json c = json::parse(slurp(b + "/config.json"));
  c["hooks"] = {
      {"createRuntime", {{{"path", "/bin/sleep"}, {"args", {"sleep", "5"}}, {"timeout", 1}}}}};
  write_file(b + "/config.json", c.dump());
  Result r = sh(cidrun() + " create -b " + b + " h3");
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.err.find("createRuntime hook /bin/sleep timed out after 1s"), std::string::npos)
      << r.err;
  EXPECT_NE(status_of("h3").find("does not exist"), std::string::npos);
}

TEST(RuntimeLifecycle, FailingHookAbortsCreate) {
  std::string b = make_bundle("b6", {"true"});
  json c = json::parse(slurp(b + "/config.json"));
  c["hooks"] = {{"prestart", {{{"path", "/bin/false"}}}}};
  write_file(b + "/config.json", c.dump());
  Result r = sh(cidrun() + " create -b " + b + " h2");
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.err.find("prestart hook /bin/false exited with status 1"), std::string::npos)
      << r.err;
  // One error line (issue 15: the failure was reported two or three times).
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_NE(status_of("h2").find("does not exist"), std::string::npos);
}

// A state larger than a pipe's buffer (64 KiB; annotations can be that big) reaches a hook whole.
TEST(RuntimeLifecycle, HooksGetTheWholeStateBeyondThePipeBuffer) {
  std::string b = make_bundle("b9", {"true"});
  json c = json::parse(slurp(b + "/config.json"));
  std::string got = work_dir() + "/big-state.json";
  c["annotations"] = {{"big", std::string(200000, 'x')}};
  c["hooks"] = {{"createRuntime", {{{"path", "/bin/sh"}, {"args", {"sh", "-c", "cat >" + got}}}}}};
  write_file(b + "/config.json", c.dump());
  Result r = sh(cidrun() + " create -b " + b + " h4");
  ASSERT_EQ(r.code, 0) << r.err;
  sh(cidrun() + " delete --force h4");
  json state = json::parse(slurp(got), nullptr, false);
  ASSERT_FALSE(state.is_discarded()) << "the hook got a truncated state";
  EXPECT_EQ(state["id"], "h4");
  EXPECT_EQ(state["annotations"]["big"].get<std::string>().size(), 200000u);
}

// A hook that closes its stdin before reading it all: our writes fail with EPIPE (the SIGPIPE
// they raise must not kill cidrun), and the hook's exit status is the error.
TEST(RuntimeLifecycle, HookThatStopsReadingFailsCleanly) {
  std::string b = make_bundle("b10", {"true"});
  json c = json::parse(slurp(b + "/config.json"));
  c["annotations"] = {{"big", std::string(200000, 'x')}};
  c["hooks"] = {{"prestart",
                 {{{"path", "/bin/sh"}, {"args", {"sh", "-c", "exec 0<&-; sleep 0.2; exit 3"}}}}}};
  write_file(b + "/config.json", c.dump());
  Result r = sh(cidrun() + " create -b " + b + " h5");
  EXPECT_EQ(r.code, 1) << r.err;
  EXPECT_NE(r.err.find("prestart hook /bin/sh exited with status 3"), std::string::npos) << r.err;
  EXPECT_NE(status_of("h5").find("does not exist"), std::string::npos);
}

TEST(RuntimeLifecycle, ConsoleSocketReceivesPtyMaster) {
  // A tiny console-socket receiver: python is not in the image, so use the host's.
  std::string b = make_bundle("b7", {"/bin/sh", "-c", "tty"});
  json c = json::parse(slurp(b + "/config.json"));
  c["process"]["terminal"] = true;
  write_file(b + "/config.json", c.dump());
  std::string sock = work_dir() + "/console.sock";
  std::string py =
      "import socket,array,os,sys\n"
      "s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.listen(1)\n"
      "c,_=s.accept(); msg,anc,_,_=c.recvmsg(64, socket.CMSG_SPACE(4))\n"
      "fd=array.array('i', anc[0][2])[0]\n"
      "out=b''\n"
      "while True:\n"
      "  try: d=os.read(fd, 1024)\n"
      "  except OSError: break\n"
      "  if not d: break\n"
      "  out+=d\n"
      "print(msg.decode(), out.decode().strip())\n";
  write_file(work_dir() + "/console.py", py);
  Result r =
      sh("python3 " + work_dir() + "/console.py " + sock + " > " + work_dir() +
         "/console.out & for i in $(seq 50); do [ -S " + sock + " ] && break; sleep 0.05; done; " +
         cidrun() + " create -b " + b + " --console-socket " + sock + " t1 && " + cidrun() +
         " start t1; wait; " + cidrun() + " delete --force t1");
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(slurp(work_dir() + "/console.out"), "/dev/ptmx /dev/pts/0\n");
}

TEST(RuntimeLifecycle, FeaturesAndSpec) {
  Result f = sh(std::string(CIDRUN_BINARY) + " features");
  ASSERT_EQ(f.code, 0);
  json j = json::parse(f.out);
  EXPECT_EQ(j["ociVersionMax"], "1.1.0");
  EXPECT_TRUE(j["linux"]["seccomp"]["enabled"].get<bool>());
  std::string d = work_dir() + "/specdir";
  sh("mkdir -p " + d);
  EXPECT_EQ(sh("cd " + d + " && " + CIDRUN_BINARY + " spec").code, 0);
  EXPECT_NE(sh("cd " + d + " && " + CIDRUN_BINARY + " spec").code, 0);  // exists
  EXPECT_EQ(json::parse(slurp(d + "/config.json"))["root"]["path"], "rootfs");
}
