// Items of the issue's lists that no other test observed, each seen from inside the container
// (or, for the command line, through the binary's own behaviour).
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <sstream>

#include "integration/runtime_helpers.h"

using namespace rt_test;
using nlohmann::json;

namespace {

void make_writable(json& c) {
  c["root"]["readonly"] = false;
}

json writable_config() {
  json c = default_config();
  make_writable(c);
  return c;
}

std::string write_config(const std::string& name, const json& c) {
  std::string path = work_dir() + "/" + name + ".json";
  write_file(path, c.dump());
  return path;
}

std::string bin() {
  return CIDRUN_BINARY;
}

}  // namespace

TEST(RuntimeCli, GlobalOptionsTakeBothForms) {
  std::string st = work_dir() + "/state-forms";
  Result made = sh(bin() + " --root=" + st + " run --name=g1 " + busybox_root() + " -- /bin/true");
  ASSERT_EQ(made.code, 0) << made.err;
  Result listed = sh(bin() + " --root " + st + " list --quiet");
  EXPECT_EQ(listed.out, "g1\n") << listed.err;
  EXPECT_EQ(sh(bin() + " --systemd-cgroup --root=" + st + " delete g1").code, 0);
  EXPECT_EQ(sh(bin() + " --root " + st + " list -q").out, "");

  // --debug with --log/--log-format (both spellings): a debug message lands in the file, as
  // JSON or as logrus-style text; without --debug it does not.
  std::string prof = work_dir() + "/unknown-syscall.json";
  write_file(prof, R"({"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["no_such_call_x"],)"
                   R"("action":"SCMP_ACT_ERRNO"}]})");
  std::string jlog = work_dir() + "/log.json", tlog = work_dir() + "/log.txt",
              quiet = work_dir() + "/log.quiet";
  std::string run = " run --rm --seccomp " + prof + " " + busybox_root() + " -- /bin/true";
  ASSERT_EQ(
      sh(bin() + " --root=" + st + " --log=" + jlog + " --log-format=json --debug" + run).code, 0);
  ASSERT_EQ(
      sh(bin() + " --root " + st + " --log " + tlog + " --log-format text --debug" + run).code, 0);
  ASSERT_EQ(sh(bin() + " --root " + st + " --log " + quiet + run).code, 0);
  bool found = false;
  std::istringstream lines(slurp(jlog));
  for (std::string line; std::getline(lines, line);) {
    json j = json::parse(line);  // every line is one JSON object
    if (j["msg"].get<std::string>().find("no_such_call_x") != std::string::npos) {
      EXPECT_EQ(j["level"], "debug");
      found = true;
    }
  }
  EXPECT_TRUE(found) << slurp(jlog);
  EXPECT_NE(
      slurp(tlog).find(" level=debug msg=\"seccomp: skipping unknown syscall no_such_call_x\""),
      std::string::npos)
      << slurp(tlog);
  EXPECT_EQ(slurp(quiet).find("no_such_call_x"), std::string::npos);

  Result v = sh(bin() + " --version");
  EXPECT_EQ(v.code, 0);
  EXPECT_EQ(v.out.rfind("cidrun version ", 0), 0u) << v.out;
  EXPECT_NE(v.out.find("spec: 1.1.0"), std::string::npos) << v.out;
}

TEST(RuntimeCli, SubcommandOptionsTakeBothForms) {
  std::string b = make_bundle("forms-bundle", {"sleep", "30"}, make_writable);
  std::string pid1 = work_dir() + "/f1.pid", pid2 = work_dir() + "/f2.pid";
  ASSERT_EQ(sh(cidrun() + " create --bundle=" + b + " --pid-file " + pid1 + " f1").code, 0);
  ASSERT_EQ(sh(cidrun() + " create --bundle " + b + " --pid-file=" + pid2 + " f2").code, 0);
  EXPECT_FALSE(slurp(pid1).empty());
  EXPECT_FALSE(slurp(pid2).empty());
  ASSERT_EQ(sh(cidrun() + " start f1").code, 0);
  Result e = sh(cidrun() +
                " exec --cwd=/tmp --env=A=1 --user=7:8 f1 /bin/sh -c 'echo $A $(pwd) "
                "$(id -u):$(id -g)'");
  EXPECT_EQ(e.out, "1 /tmp 7:8\n") << e.err;
  Result e2 = sh(cidrun() +
                 " exec --cwd /tmp --env A=2 --user 9 f1 /bin/sh -c 'echo $A $(pwd) "
                 "$(id -u):$(id -g)'");
  EXPECT_EQ(e2.out, "2 /tmp 9:9\n") << e2.err;
  Result ps = sh(cidrun() + " ps --format=json f1");
  EXPECT_NE(ps.out.find(slurp(pid1)), std::string::npos) << ps.out << ps.err;
  EXPECT_EQ(sh(cidrun() + " list --format json").code, 0);
  EXPECT_EQ(sh(cidrun() + " delete --force f1").code, 0);
  EXPECT_EQ(sh(cidrun() + " delete --force=true f2").code, 0);
}

TEST(RuntimeCli, ExecProcessFileDetachAndPidFile) {
  std::string b = make_bundle("exec-bundle", {"sleep", "30"}, make_writable);
  ASSERT_EQ(sh(cidrun() + " create -b " + b + " x1").code, 0);
  ASSERT_EQ(sh(cidrun() + " start x1").code, 0);
  json p = json::parse(slurp(b + "/config.json"))["process"];
  p["args"] = {"/bin/sh", "-c", "echo from process.json; id -u; echo $WHO; pwd"};
  p["env"] = {"PATH=/bin", "WHO=file"};
  p["cwd"] = "/etc";
  p["user"] = {{"uid", 3}, {"gid", 3}};
  std::string pf = write_config("process", p);
  Result r = sh(cidrun() + " exec --process=" + pf + " x1");
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "from process.json\n3\nfile\n/etc\n");
  std::string pidfile = work_dir() + "/exec.pid";
  Result d = sh(cidrun() + " exec --detach --pid-file " + pidfile +
                " x1 /bin/sh -c 'echo $$ >/tmp/detached; sleep 1'");
  EXPECT_EQ(d.code, 0) << d.err;
  std::string hostpid = slurp(pidfile);
  ASSERT_FALSE(hostpid.empty());
  // The pid file holds the host's pid of the exec'd process, which is alive after exec returned.
  EXPECT_EQ(::kill(std::stoi(hostpid), 0), 0);
  EXPECT_EQ(sh(cidrun() + " delete --force x1").code, 0);
}

TEST(RuntimeCli, ConfigRootlessTtyAndArgs) {
  Result r = sh(bin() + " config --rootless --tty -- /bin/echo a b");
  ASSERT_EQ(r.code, 0) << r.err;
  json c = json::parse(r.out);
  EXPECT_TRUE(c["process"]["terminal"].get<bool>());
  EXPECT_EQ(c["process"]["args"], json({"/bin/echo", "a", "b"}));
  bool user = false, net = false;
  for (const auto& ns : c["linux"]["namespaces"]) {
    user |= ns["type"] == "user";
    net |= ns["type"] == "network";
  }
  EXPECT_TRUE(user);
  EXPECT_FALSE(net);  // runc spec --rootless keeps the host network
  EXPECT_EQ(c["linux"]["uidMappings"][0]["hostID"], ::geteuid());
  EXPECT_EQ(c["linux"]["uidMappings"][0]["size"], 1);
  EXPECT_FALSE(c["linux"].contains("resources"));
  Result spec = sh(bin() + " spec --rootless --bundle " + work_dir());
  EXPECT_EQ(spec.code, 0) << spec.err;
  EXPECT_EQ(json::parse(slurp(work_dir() + "/config.json"))["linux"]["uidMappings"].size(), 1u);
}

TEST(RuntimeRunMore, RmLeavesNoStateAndNoCgroupModeUsesNone) {
  std::string st = work_dir() + "/state-rm";
  Result r =
      sh(bin() + " --root " + st + " run --rm --name gone " + busybox_root() + " -- /bin/true");
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(sh("ls -A " + st).out, "");
  // Without a cgroup namespace the container's cgroup path shows as the host sees it: its own
  // /cidrun/<id>, or with --no-cgroup ours.
  json c = writable_config();
  json nss = json::array();
  for (const auto& ns : c["linux"]["namespaces"])
    if (ns["type"] != "cgroup") nss.push_back(ns);
  c["linux"]["namespaces"] = nss;
  std::string cfg = write_config("nocgns", c);
  std::string ours = sh("grep ':memory:' /proc/self/cgroup").out;
  Result none = run_sh("grep ':memory:' /proc/self/cgroup", "--no-cgroup --config " + cfg);
  EXPECT_EQ(none.code, 0) << none.err;
  EXPECT_EQ(none.out, ours);
  std::string id = "cg" + std::to_string(::getpid());
  Result own = run_sh("grep ':memory:' /proc/self/cgroup", "--name " + id + " --config " + cfg);
  EXPECT_NE(own.out.find(":memory:/cidrun/" + id + "\n"), std::string::npos) << own.out << own.err;
  // Limits cannot be honoured without a cgroup: an error, not a silent drop.
  Result limited = run_sh("true", "--no-cgroup --memory 32m");
  EXPECT_EQ(limited.code, 1);
  EXPECT_NE(limited.err.find("without a cgroup"), std::string::npos) << limited.err;
  EXPECT_EQ(std::count(limited.err.begin(), limited.err.end(), '\n'), 1) << limited.err;
}

TEST(RuntimeRunMore, NetworkHostSeesTheHostsInterfaces) {
  std::string host = sh("ls /sys/class/net | sort").out;
  Result r = run_sh("ls /sys/class/net | sort; readlink /proc/self/ns/net", "--network host");
  EXPECT_EQ(r.code, 0) << r.err;
  std::string ns = sh("readlink /proc/self/ns/net").out;
  EXPECT_EQ(r.out, host + ns);
  Result none = run_sh("readlink /proc/self/ns/net", "--network none");
  EXPECT_NE(none.out, ns);
}

TEST(RuntimeRunMore, TerminalSizeIsForwardedAndModeRestored) {
  // cidrun runs on a 33x111 pty; inside, `stty size` shows it; after a resize (the kernel sends
  // SIGWINCH) the container sees the new size; at exit the terminal's settings are as before.
  const std::string& wd = work_dir();
  write_file(wd + "/tty.sh", "stty -g >" + wd + "/stty.before\n" + cidrun() + " run --rm -t " +
                                 busybox_root() +
                                 " -- /bin/sh -c 'echo size1 $(stty size); read x; "
                                 "echo size2 $(stty size)'\nrc=$?\nstty -g >" +
                                 wd + "/stty.after\nexit $rc\n");
  write_file(wd + "/winsize.py",
             "import os,pty,sys,termios,struct,fcntl,select\n"
             "pid,fd=pty.fork()\n"
             "if pid==0:\n"
             "  fcntl.ioctl(0,termios.TIOCSWINSZ,struct.pack('HHHH',33,111,0,0))\n"
             "  os.execvp('sh',['sh',sys.argv[1]])\n"
             "out=b''\n"
             "resized=False\n"
             "while True:\n"
             "  r,_,_=select.select([fd],[],[],20)\n"
             "  if not r: break\n"
             "  try: d=os.read(fd,1024)\n"
             "  except OSError: break\n"
             "  if not d: break\n"
             "  out+=d\n"
             "  if b'size1' in out and b'\\n' in out.split(b'size1',1)[1] and not resized:\n"
             "    fcntl.ioctl(fd,termios.TIOCSWINSZ,struct.pack('HHHH',44,122,0,0))\n"
             "    resized=True\n"
             "    os.write(fd,b'go\\n')\n"
             "_,st=os.waitpid(pid,0)\n"
             "print(out.decode().replace('\\r',''))\n"
             "print('status',os.WEXITSTATUS(st))\n");
  Result r = sh("python3 " + wd + "/winsize.py " + wd + "/tty.sh");
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("size1 33 111"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("size2 44 122"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("status 0"), std::string::npos) << r.out;
  EXPECT_FALSE(slurp(wd + "/stty.before").empty());
  EXPECT_EQ(slurp(wd + "/stty.before"), slurp(wd + "/stty.after"));
}

TEST(RuntimeOci, MountTypesAndOptions) {
  json c = writable_config();
  std::string src = work_dir() + "/bindsrc";
  sh("mkdir -p " + src + " && echo hi >" + src + "/f && printf '#!/bin/sh\\necho ran\\n' >" + src +
     "/x && chmod +x " + src + "/x");
  c["mounts"].push_back({{"destination", "/b-noexec"},
                         {"type", "bind"},
                         {"source", src},
                         {"options", {"rbind", "ro", "nosuid", "nodev", "noexec"}}});
  c["mounts"].push_back({{"destination", "/b-exec"},
                         {"type", "bind"},
                         {"source", src},
                         {"options", {"bind", "rprivate"}}});
  c["mounts"].push_back({{"destination", "/b-shared"},
                         {"type", "bind"},
                         {"source", src},
                         {"options", {"rbind", "rshared"}}});
  c["mounts"].push_back({{"destination", "/t"},
                         {"type", "tmpfs"},
                         {"source", "tmpfs"},
                         {"options", {"size=1m", "mode=0711", "noexec"}}});
  std::string cfg = write_config("mounts", c);
  Result r = run_sh(
      "m() { awk -v d=\"$1\" '$5 == d { for (i = 7; $i != \"-\"; i++) {}; "
      "print $5, $6, ($7 ~ /shared:/ ? \"shared\" : \"private\"), $(i + 1) }' "
      "/proc/self/mountinfo; }; "
      "m /proc; m /sys; m /dev/mqueue; m /dev/pts; m /dev/shm; m /sys/fs/cgroup/memory; "
      "m /b-noexec; m /b-exec; m /b-shared; m /t; stat -c %a /t; "
      "/b-exec/x; /b-noexec/x || echo noexec refused; cat /b-noexec/f",
      "--config " + cfg);
  EXPECT_EQ(r.code, 0) << r.err;
  auto has = [&](const std::string& line) {
    EXPECT_NE(r.out.find(line), std::string::npos) << "missing: " << line << "\n" << r.out;
  };
  has("/proc rw,relatime private proc\n");  // runc spec's proc has no options
  has("/sys ro,nosuid,nodev,noexec,relatime private sysfs\n");
  has("/dev/mqueue rw,nosuid,nodev,noexec,relatime private mqueue\n");
  has("/dev/pts rw,nosuid,noexec,relatime private devpts\n");
  has("/dev/shm rw,nosuid,nodev,noexec,relatime private tmpfs\n");
  has("/sys/fs/cgroup/memory ro,nosuid,nodev,noexec,relatime private cgroup\n");
  has("/b-noexec ro,nosuid,nodev,noexec,relatime private");
  has("/b-exec rw,relatime private");
  has("/b-shared rw,relatime shared");
  has("/t rw,noexec,relatime private tmpfs\n711\n");
  has("ran\n");
  has("noexec refused\nhi\n");
}

TEST(RuntimeOci, NamespacesAreNewOrJoinedByPath) {
  // A process in its own network and UTS namespaces for the container to join.
  std::string out = work_dir() + "/ns.out";
  pid_t holder = ::fork();
  if (holder == 0) {
    ::execl("/usr/bin/unshare", "unshare", "--net", "--uts", "sh", "-c",
            ("hostname joined-uts; echo ready >" + out + "; exec sleep 30").c_str(), nullptr);
    ::_exit(99);
  }
  eventually([&] { return !slurp(out).empty(); });
  std::string p = "/proc/" + std::to_string(holder) + "/ns/";
  auto ns_link = [](const std::string& path) {
    std::string s = sh("readlink " + path).out;
    return s.substr(0, s.size() - 1);
  };
  std::string holder_net = ns_link(p + "net"), holder_uts = ns_link(p + "uts");
  json c = writable_config();
  for (auto& ns : c["linux"]["namespaces"]) {
    if (ns["type"] == "network") ns["path"] = p + "net";
    if (ns["type"] == "uts") ns["path"] = p + "uts";
  }
  c.erase("hostname");  // a joined UTS namespace keeps its own
  Result r = run_sh(
      "hostname; for n in net uts ipc pid mnt cgroup user; do readlink /proc/self/ns/$n; done",
      "--config " + write_config("joinns", c));
  ::kill(holder, SIGKILL);
  ::waitpid(holder, nullptr, 0);
  ASSERT_EQ(r.code, 0) << r.err;
  std::istringstream in(r.out);
  std::string hostname, net, uts, ipc, pid, mnt, cgroup, user;
  in >> hostname >> net >> uts >> ipc >> pid >> mnt >> cgroup >> user;
  EXPECT_EQ(hostname, "joined-uts");
  EXPECT_EQ(net, holder_net);
  EXPECT_EQ(uts, holder_uts);
  std::string self = "/proc/self/ns/";
  std::vector<std::pair<std::string, std::string>> fresh = {
      {"ipc", ipc}, {"pid", pid}, {"mnt", mnt}, {"cgroup", cgroup}};
  for (const auto& [name, seen] : fresh)
    EXPECT_NE(seen, ns_link(self + name)) << name << " is not a new namespace";
  EXPECT_EQ(user, ns_link(self + "user"));  // not asked for: the host's
}

TEST(RuntimeOci, ConfigDevicesAreCreated) {
  json c = writable_config();
  c["linux"]["devices"] = {{{"path", "/dev/loop-control"},
                            {"type", "c"},
                            {"major", 10},
                            {"minor", 237},
                            {"fileMode", 0620},
                            {"uid", 0},
                            {"gid", 6}},
                           {{"path", "/dev/sub/fifo"}, {"type", "p"}, {"fileMode", 0600}}};
  Result r = run_sh(
      "stat -c '%n %F %t:%T %a %g' /dev/loop-control; stat -c '%n %F %a' "
      "/dev/sub/fifo",
      "--config " + write_config("devices", c));
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "/dev/loop-control character special file a:ed 620 6\n/dev/sub/fifo fifo 600\n");
}

TEST(RuntimeOci, AmbientCapabilitiesReachANonRootUser) {
  json c = writable_config();
  c["process"]["user"] = {{"uid", 1000}, {"gid", 1000}};
  c["process"]["noNewPrivileges"] = true;
  json set = {"CAP_NET_BIND_SERVICE", "CAP_KILL"};
  c["process"]["capabilities"] = {{"bounding", set},
                                  {"effective", set},
                                  {"permitted", set},
                                  {"inheritable", set},
                                  {"ambient", set}};
  Result r = run_sh("grep -E '^Cap(Inh|Prm|Eff|Bnd|Amb)' /proc/self/status; id -u",
                    "--config " + write_config("ambient", c));
  EXPECT_EQ(r.code, 0) << r.err;
  // CAP_KILL (5) and CAP_NET_BIND_SERVICE (10): 0x420 in every set, for uid 1000 through execve.
  EXPECT_EQ(r.out,
            "CapInh:\t0000000000000420\nCapPrm:\t0000000000000420\nCapEff:\t0000000000000420\n"
            "CapBnd:\t0000000000000420\nCapAmb:\t0000000000000420\n1000\n");
}

TEST(RuntimeOci, SeccompProfileWithArgumentFilterAndErrnoRet) {
  // kill(pid, SIGUSR1 = 10) is refused with ENOTTY (25); kill(pid, 0) passes the filter;
  // sethostname gets the default errno, EPERM.
  json prof = {{"defaultAction", "SCMP_ACT_ALLOW"},
               {"syscalls",
                {{{"names", {"kill"}},
                  {"action", "SCMP_ACT_ERRNO"},
                  {"errnoRet", 25},
                  {"args", {{{"index", 1}, {"value", 10}, {"op", "SCMP_CMP_EQ"}}}}},
                 {{"names", {"sethostname"}}, {"action", "SCMP_ACT_ERRNO"}}}}};
  std::string pf = write_config("seccomp-args", prof);
  Result r = run_sh(
      "trap \"\" USR1; kill -USR1 $$ && echo usr1 sent; kill -0 $$ && echo probe ok; "
      "hostname x && echo renamed; grep Seccomp: /proc/self/status",
      "--seccomp " + pf);
  EXPECT_TRUE(r.err.find("Inappropriate ioctl for device") != std::string::npos ||
              r.err.find("Not a tty") != std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("Operation not permitted"), std::string::npos) << r.err;
  EXPECT_EQ(r.out, "probe ok\nSeccomp:\t2\n") << r.err;
}

TEST(RuntimeOci, CgroupCpuSharesCpusetAndDeviceRules) {
  json c = writable_config();
  c["linux"]["resources"]["cpu"] = {{"shares", 512}, {"cpus", "0"}, {"mems", "0"}};
  c["linux"]["resources"]["devices"] = {
      {{"allow", false}, {"access", "rwm"}},
      {{"allow", true}, {"type", "c"}, {"major", 1}, {"minor", 3}, {"access", "rw"}}};
  c["linux"]["devices"] = {{{"path", "/dev/loop-control"},
                            {"type", "c"},
                            {"major", 10},
                            {"minor", 237},
                            {"fileMode", 0600}}};
  c["linux"]["cgroupsPath"] = "/cidrun-test/" + std::to_string(::getpid()) + "-cpu";
  Result r = run_sh(
      "cat /sys/fs/cgroup/cpu/cpu.shares /sys/fs/cgroup/cpuset/cpuset.cpus "
      "/sys/fs/cgroup/cpuset/cpuset.mems; echo x >/dev/null && echo null ok; "
      "cat /dev/loop-control 2>&1 | grep -c 'Operation not permitted'",
      "--config " + write_config("cpu", c));
  EXPECT_EQ(r.out, "512\n0\n0\nnull ok\n1\n") << r.err;
}

TEST(RuntimeOci, AnnotationsAreKeptInTheState) {
  const json annotations = {{"org.example.key", "value"}, {"other", "2"}};
  std::string b = make_bundle("ann-bundle", {"sleep", "30"}, [&](json& c) {
    make_writable(c);
    c["annotations"] = annotations;
  });
  ASSERT_EQ(sh(cidrun() + " create -b " + b + " ann1").code, 0);
  json st = json::parse(sh(cidrun() + " state ann1").out);
  EXPECT_EQ(st["annotations"], annotations);
  EXPECT_EQ(sh(cidrun() + " delete --force ann1").code, 0);
}

TEST(RuntimeDemo, MakeRunPrintsTheGreetingFromACid) {
  // The README's first command, with the seed's variables; -o build: the binary is built.
  std::string repo = work_dir() + "/demo-repo", rootfs = work_dir() + "/demo-rootfs";
  std::string make =
      "make --no-print-directory -o build -C " + std::string(CIDRUN_SOURCE_DIR) +
      " BUILD=" + std::string(CIDRUN_BINARY).substr(0, std::string(CIDRUN_BINARY).rfind('/')) +
      " CIDRUN_PATH=" + repo + " ROOT_FILESYSTEM_LOCAL_PATH=" + rootfs;
  Result r = sh(make + " run");
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("hello from your container!\n"), std::string::npos) << r.out;
  std::string cid = r.out.substr(r.out.find("root filesystem: ") + 17);
  cid = cid.substr(0, cid.find('\n'));
  Result by_id = sh(make + " run ROOT_FILESYSTEM_ID=" + cid + " COMMAND='/bin/busybox echo by id'");
  EXPECT_EQ(by_id.code, 0) << by_id.err;
  EXPECT_NE(by_id.out.find("by id\n"), std::string::npos) << by_id.out;
}

TEST(RuntimeRunMore, UserNamesComeFromTheContainersOwnFiles) {
  std::string root = make_root("users");
  write_file(root + "/etc/passwd",
             "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1001:App:/home/app:/bin/sh\n");
  write_file(root + "/etc/group", "root:x:0:\napps:x:1001:\nwheel:x:10:root,app\naudio:x:29:app\n");
  Result r = run_sh("id -u; id -g; id -G; echo $HOME", "-u app", root);
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "1000\n1001\n1001 10 29\n/home/app\n");
  r = run_sh("id -u; id -g; id -G", "--user app:wheel --group-add 7", root);
  EXPECT_EQ(r.out, "1000\n10\n10 7 29\n") << r.err;  // the kernel keeps groups sorted
  // The host's users mean nothing inside: a name only the host knows is unknown.
  std::string host_only = sh("getent passwd | cut -d: -f1 | grep -vx -e root -e app | head -1").out;
  host_only.pop_back();
  r = run_sh("id", "-u " + host_only, root);
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, "cidrun: error: --user " + host_only + ": no user named '" + host_only +
                       "' in the container's /etc/passwd\n");
  r = run_sh("id", "-u app:nogroup", root);
  EXPECT_EQ(r.err,
            "cidrun: error: --user app:nogroup: no group named 'nogroup' in the "
            "container's /etc/group\n");

  // exec looks names up in the running container's root, as it is now.
  std::string b = work_dir() + "/users-bundle";
  sh("mkdir -p " + b + " && cp -a " + root + " " + b + "/rootfs");
  json c = writable_config();
  c["process"]["args"] = {"sleep", "30"};
  c["linux"]["cgroupsPath"] = "/cidrun-test/" + std::to_string(::getpid()) + "-users";
  write_file(b + "/config.json", c.dump());
  ASSERT_EQ(sh(cidrun() + " create -b " + b + " u1").code, 0);
  ASSERT_EQ(sh(cidrun() + " start u1").code, 0);
  Result e = sh(cidrun() + " exec -u app u1 /bin/sh -c 'id -u; id -G'");
  EXPECT_EQ(e.out, "1000\n1001 10 29\n") << e.err;
  ASSERT_EQ(
      sh(cidrun() + " exec u1 /bin/sh -c 'echo late:x:2000:2000::/:/bin/sh >>/etc/passwd'").code,
      0);
  EXPECT_EQ(sh(cidrun() + " exec --user late u1 /bin/id -u").out, "2000\n");
  Result bad = sh(cidrun() + " exec --user ghost u1 /bin/id");
  EXPECT_EQ(bad.code, 1);
  EXPECT_NE(bad.err.find("no user named 'ghost'"), std::string::npos) << bad.err;
  EXPECT_EQ(sh(cidrun() + " delete --force u1").code, 0);
}
