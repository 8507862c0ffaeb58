// Each attack of the issue's Security section, tried for real against the binary.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "integration/runtime_helpers.h"

using namespace rt_test;
using nlohmann::json;

TEST(RuntimeSecurity, MountDestinationSymlinksCannotLeaveTheRoot) {
  std::string root = make_root("evilroot");
  std::string outside = work_dir() + "/outside";
  sh("mkdir -p " + outside);
  // Absolute and relative symlinks that would point at `outside` if followed on the host, one of
  // them replacing /dev itself.
  sh("ln -s " + outside + " " + root + "/abs && ln -s ../../../../../../../../" + outside + " " +
     root + "/rel && rm -rf " + root + "/dev && ln -s " + outside + " " + root + "/dev");
  json c = default_config();
  c["root"]["readonly"] = false;
  c["mounts"].push_back({{"destination", "/abs/a"}, {"type", "tmpfs"}, {"source", "tmpfs"}});
  c["mounts"].push_back({{"destination", "/rel/b"}, {"type", "tmpfs"}, {"source", "tmpfs"}});
  std::string cfg = work_dir() + "/evil.json";
  write_file(cfg, c.dump());
  Result r = run_sh(
      "grep -c ' /tmp/cidrun-rt-[0-9]*/outside/[ab] ' /proc/self/mountinfo; "
      "ls /dev/null",
      "--config " + cfg, root);
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "2\n/dev/null\n") << r.err;
  // Nothing was created or mounted on the host side.
  EXPECT_EQ(sh("ls -A " + outside).out, "");
  EXPECT_EQ(sh("grep -c ' " + outside + "' /proc/self/mountinfo").out, "0\n");
  // Inside the root, the targets were made where the symlinks lead when the root is "/" (the
  // /dev tmpfs landed there too, so /abs/a and /rel/b lived in it and left with the container).
  EXPECT_EQ(sh("test -d " + root + outside).code, 0);
}

TEST(RuntimeSecurity, PivotRootLeavesNoPathToTheHost) {
  std::string marker = work_dir() + "/host-marker";
  write_file(marker, "x");
  Result r = run_sh("cd / && cd .. && cd .. && ls -a | tr '\\n' ' '; test -e " + marker +
                    " && echo LEAK; grep -c . /proc/self/mountinfo >/dev/null; "
                    "cat /proc/self/mountinfo | awk '$5 == \"/\"' | wc -l");
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out.find("LEAK"), std::string::npos);
  EXPECT_NE(r.out.find(". .. bin dev etc"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(" 1\n"), std::string::npos) << r.out;  // one mount at "/": ours
}

TEST(RuntimeSecurity, RuntimeBinaryCannotBeWrittenFromInside) {
  std::string before = sh("sha256sum " + std::string(CIDRUN_BINARY)).out;
  std::string b = work_dir() + "/exe-bundle";
  sh("mkdir -p " + b + " && cp -a " + busybox_root() + " " + b + "/rootfs");
  json c = default_config();
  c["process"]["args"] = {"true"};
  c["linux"]["cgroupsPath"] = "/cidrun-test/" + std::to_string(::getpid()) + "-exe";
  // Root with every capability: the strongest position an attacker inside could have.
  c["process"]["capabilities"] = json::parse(R"({"bounding":["CAP_SYS_ADMIN","CAP_SYS_PTRACE",
    "CAP_DAC_OVERRIDE"],"effective":["CAP_SYS_ADMIN","CAP_SYS_PTRACE","CAP_DAC_OVERRIDE"],
    "permitted":["CAP_SYS_ADMIN","CAP_SYS_PTRACE","CAP_DAC_OVERRIDE"]})");
  write_file(b + "/config.json", c.dump());
  // While created, the container's pid 1 is still the runtime (waiting for `start`).
  ASSERT_EQ(sh(cidrun() + " create -b " + b + " exe1").code, 0);
  Result r = sh(cidrun() +
                " exec exe1 /bin/sh -c 'echo PWNED >>/proc/1/exe && echo WROTE; "
                "echo PWNED >/proc/1/exe && echo WROTE'");
  EXPECT_EQ(r.out.find("WROTE"), std::string::npos) << r.out;
  EXPECT_NE(r.err.find("Read-only file system"), std::string::npos) << r.err;
  sh(cidrun() + " delete --force exe1");
  EXPECT_EQ(sh("sha256sum " + std::string(CIDRUN_BINARY)).out, before);
}

TEST(RuntimeSecurity, EntryPointProcSelfExeRunsOnlyTheSealedStub) {
  // CVE-2019-5736's trick: the container's program is "#!/proc/self/exe", so execve runs whatever
  // the exec'ing process runs, inside the container. With the default config `run` execs the
  // program through the sealed exec stub (runtime/self_protect.h): the stub is what runs, and it
  // refuses to act as an interpreter. Had the runtime exec'd the program itself, the interpreter
  // would be this (private, writable) copy of cidrun, which would answer with its own usage error.
  std::string root = make_root("shebang");
  write_file(root + "/evil", "#!/proc/self/exe\n");
  sh("chmod +x " + root + "/evil");
  std::string copy = work_dir() + "/cidrun-copy";
  ASSERT_EQ(sh("cp " + std::string(CIDRUN_BINARY) + " " + copy).code, 0);
  std::string before = sh("sha256sum " + copy).out;
  Result r = sh(copy + " --root " + work_dir() + "/state run --rm " + root + " -- /evil");
  EXPECT_EQ(r.code, 126) << r.err;
  EXPECT_NE(r.err.find("cidrun-exec: runs a container's program"), std::string::npos) << r.err;
  EXPECT_EQ(sh("sha256sum " + copy).out, before);
}

TEST(RuntimeSecurity, ProgramNotFoundThroughTheStubKeepsExecErrors) {
  // The stub's own execve failing (here: not an executable format) reports like the runtime.
  std::string root = make_root("badexec");
  write_file(root + "/garbage",
             "\x7f"
             "ELF not really\n");
  sh("chmod +x " + root + "/garbage");
  Result r = sh(cidrun() + " run --rm " + root + " -- /garbage");
  EXPECT_EQ(r.code, 126) << r.err;
  EXPECT_EQ(r.err, "cidrun: error: exec /garbage: Exec format error\n");
  r = sh(cidrun() + " run --rm " + root + " -- /nonexistent");
  EXPECT_EQ(r.code, 127) << r.err;
}

TEST(RuntimeSecurity, NoHostFdLeaksIntoTheContainer) {
  Result r = sh("exec 7</ 8>" + work_dir() + "/leak; " + cidrun() + " run --rm " + busybox_root() +
                " -- /bin/ls /proc/self/fd");
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "0\n1\n2\n3\n");  // 3: ls's own directory fd
}

TEST(RuntimeSecurity, WorkdirThroughFdMagicLinksIsRefused) {
  for (int fd = 3; fd <= 9; ++fd) {
    Result r = run_sh("ls ../../..", "-w /proc/self/fd/" + std::to_string(fd));
    EXPECT_NE(r.code, 0) << "fd " << fd << ": " << r.out;
  }
}

TEST(RuntimeSecurity, CapabilitiesReducedToTheConfigsSets) {
  json c = default_config();
  c["root"]["readonly"] = false;
  c["process"]["capabilities"] = {
      {"bounding", {"CAP_KILL"}}, {"effective", {"CAP_KILL"}}, {"permitted", {"CAP_KILL"}}};
  std::string cfg = work_dir() + "/caps.json";
  write_file(cfg, c.dump());
  Result r = run_sh("grep -E '^Cap(Eff|Bnd)' /proc/self/status; chown 1 /tmp", "--config " + cfg);
  EXPECT_NE(r.out.find("CapEff:\t0000000000000020"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("CapBnd:\t0000000000000020"), std::string::npos) << r.out;
  EXPECT_NE(r.err.find("Operation not permitted"), std::string::npos) << r.err;
}
