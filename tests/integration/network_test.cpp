// `cidrun run`'s networks with Debian's real CNI plugins and slirp4netns, as root: the default
// bridge with outbound NAT, published ports, /etc/hosts and resolv.conf, -d, two containers on
// one bridge, teardown (also after kill -9 of cidrun), and bad input.
//
// Every test runs in a network and mount namespace of its own (entered once per test process),
// so the bridge, addresses, iptables/nftables rules and namespace mounts it makes never touch the
// host's and vanish with the test process even when it fails. Traffic goes only to loopback, to
// the test's containers, and to a second namespace the test made ("outside": the world beyond
// the NAT). The network list is a test-only one: bridge cidrun-t0, subnet 10.213.7.0/24, its
// address reservations under the test's work directory.
#include <gtest/gtest.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <string>

#include "integration/runtime_helpers.h"

using namespace rt_test;
using nlohmann::json;

namespace {

constexpr const char* kNetwork = "cidrun-test";
constexpr const char* kBridge = "cidrun-t0";
constexpr const char* kSubnetPrefix = "10.213.7.";
constexpr const char* kOutsideAddress = "10.214.0.2";  // the outside namespace's server
constexpr const char* kOurOutsideAddress = "10.214.0.1";

// Enters a private network and mount namespace (once per process) with loopback up.
void enter_private_namespaces() {
  static const bool entered = [] {
    if (::unshare(CLONE_NEWNET | CLONE_NEWNS) != 0) return false;
    if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) return false;
    return sh("ip link set lo up").code == 0;
  }();
  ASSERT_TRUE(entered) << "cannot make a private network namespace";
}

std::string config_dir() {
  return work_dir() + "/networks";
}
std::string ipam_dir() {
  return work_dir() + "/ipam";
}

std::string bridge_list(const std::string& name, const std::string& extra_plugin = "") {
  json ipam = {{"type", "host-local"},
               {"dataDir", ipam_dir()},
               {"routes", {{{"dst", "0.0.0.0/0"}}}},
               {"ranges", {{{{"subnet", std::string(kSubnetPrefix) + "0/24"}}}}}};
  json plugins = {{{"type", "bridge"},
                   {"bridge", kBridge},
                   {"isGateway", true},
                   {"ipMasq", true},
                   {"hairpinMode", true},
                   {"ipam", ipam}},
                  {{"type", "portmap"}, {"capabilities", {{"portMappings", true}}}},
                  {{"type", "firewall"}}};
  if (!extra_plugin.empty()) plugins.push_back(json::parse(extra_plugin));
  return json{{"cniVersion", "1.0.0"}, {"name", name}, {"plugins", plugins}}.dump(2);
}

// The test's network lists: cidrun-test, bridge (so that the default network is the test's),
// and cidrun-bad, whose last plugin fails after the bridge plugin has done its work.
void write_networks() {
  sh("mkdir -p " + config_dir());
  write_file(config_dir() + "/" + kNetwork + ".conflist", bridge_list(kNetwork));
  write_file(config_dir() + "/bridge.conflist", bridge_list(kNetwork));
  write_file(config_dir() + "/cidrun-bad.conflist",
             bridge_list("cidrun-bad",
                         R"({"type":"tuning","sysctl":{"net.ipv4.conf.eth0.no_such_knob":"1"}})"));
}

// A busybox root with a web page and a CGI script that answers with the client's address.
const std::string& web_root() {
  static const std::string root = [] {
    std::string r = make_root("webroot");
    sh("mkdir -p " + r + "/www/cgi-bin && echo 'hello from the container' > " + r +
       "/www/index.html");
    // httpd listens on IPv6 too and reports an IPv4 client as [::ffff:A.B.C.D].
    write_file(r + "/www/cgi-bin/ip",
               "#!/bin/sh\necho 'Content-Type: text/plain'\necho\n"
               "echo \"$REMOTE_ADDR\" | sed -e 's/^\\[::ffff://' -e 's/\\]$//'\n");
    sh("chmod 755 " + r + "/www/cgi-bin/ip");
    return r;
  }();
  return root;
}

// cidrun with the test's network lists, the default network not forced to none.
std::string net_cidrun() {
  return "env -u CIDRUN_NETWORK " + cidrun() + " ";
}
std::string run_opts() {
  return " --network-config-dir " + config_dir() + " ";
}

json record_of(const std::string& id) {
  return json::parse(slurp(work_dir() + "/state/@network/" + id + "/network.json"));
}

std::string address_of(const std::string& id) {
  std::string a = record_of(id)["cni"]["result"]["ips"][0]["address"].get<std::string>();
  return a.substr(0, a.find('/'));
}

// What a container's network leaves on the host, described; "" when nothing is left.
std::string leftovers(const std::string& cni_id, const std::string& address) {
  std::string found;
  auto check = [&](const std::string& what, const std::string& cmd) {
    Result r = sh(cmd);
    if (!r.out.empty()) found += what + ": " + r.out;
  };
  check("veth on the bridge", std::string("ip -o link show master ") + kBridge + " 2>/dev/null");
  check("address reservation", "ls " + ipam_dir() + "/" + kNetwork +
                                   " 2>/dev/null | grep -v -e '^lock$' -e '^last_reserved'");
  check("iptables rule", "iptables-save | grep -e " + shell_quote(cni_id) + " -e " +
                             shell_quote(address + "/") + " -e " + shell_quote(address + ":"));
  check("nft rule", "nft list ruleset | grep -e " + shell_quote(cni_id) + " -e " +
                        shell_quote(address + " ") + " -e " + shell_quote(address + ":"));
  check("namespace mount", "grep @network /proc/self/mountinfo");
  check("network state", "ls -A " + work_dir() + "/state/@network 2>/dev/null");
  return found;
}

// The outside: a namespace beyond the NAT, on a veth pair with ours, where busybox httpd answers
// on port 8000 with the address a client came from. Removed with the test process.
void make_outside() {
  static const bool made = [] {
    static const std::string ns = work_dir() + "/outside-ns";
    static pid_t server = 0;
    std::string www = web_root() + "/www";
    if (sh("touch " + ns + " && unshare --net=" + ns + " true").code != 0) return false;
    std::atexit([] {
      if (server > 0) {
        ::kill(server, SIGKILL);
        wait_exit(server);
      }
      sh("umount " + ns);
    });
    server = spawn_sh("nsenter --net=" + ns + " /bin/busybox httpd -f -p 8000 -h " + www,
                      work_dir() + "/outside-httpd.log");
    // The server's pid names the outside namespace to `ip link` once nsenter has entered it.
    std::string inode = "stat -L -c %i ";
    bool entered = eventually([&] {
      return sh(inode + ns).out == sh(inode + "/proc/" + std::to_string(server) + "/ns/net").out;
    });
    Result r =
        sh("ip link add vout0 type veth peer name vout1 netns " + std::to_string(server) +
           " && ip addr add " + kOurOutsideAddress + "/24 dev vout0 && ip link set vout0 up" +
           " && nsenter --net=" + ns + " sh -c 'ip link set lo up && ip addr add " +
           kOutsideAddress + "/24 dev vout1 && ip link set vout1 up'");
    if (!entered || r.code != 0) return false;
    return eventually([&] {
      return sh("/bin/busybox wget -q -O- http://" + std::string(kOutsideAddress) + ":8000/")
                 .code == 0;
    });
  }();
  ASSERT_TRUE(made) << "cannot make the outside namespace";
}

bool listening(int port) {
  return !sh("ss -Hltn 'sport = :" + std::to_string(port) + "'").out.empty();
}

class Network : public ::testing::Test {
 protected:
  void SetUp() override {
    enter_private_namespaces();
    write_networks();
  }
};

TEST_F(Network, DefaultIsABridgeWithOutboundNatHostsAndResolvConf) {
  make_outside();
  // The outside sees our address: the container's was masqueraded on the way out.
  Result r = sh(net_cidrun() + "run --rm --name web1 --hostname box" + run_opts() + web_root() +
                " -- sh -c 'ip -o -4 addr show eth0; wget -q -O- http://" + kOutsideAddress +
                ":8000/cgi-bin/ip; cat /etc/hosts /etc/resolv.conf'");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find(std::string("inet ") + kSubnetPrefix), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(std::string("\n") + kOurOutsideAddress + "\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\tbox web1\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(std::string(kSubnetPrefix) + "1\thost.containers.internal"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("127.0.0.1\tlocalhost"), std::string::npos) << r.out;
  // The host's nameservers (none of them loopback here) reach the container.
  std::string host_ns = chomp(sh("grep ^nameserver /etc/resolv.conf | head -1").out);
  EXPECT_NE(r.out.find(host_ns), std::string::npos) << r.out;
  size_t at = r.out.find(std::string("inet ") + kSubnetPrefix);
  std::string address = at == std::string::npos ? "none" : r.out.substr(at + 5);
  address = address.substr(0, address.find('/'));
  EXPECT_EQ(leftovers("web1", address), "");
  // The image's own files stay as they were: ours were bound over them, never written in.
  EXPECT_FALSE(sh("test -s " + web_root() + "/etc/hosts").code == 0);
}

TEST_F(Network, DnsFlagSetsTheNameservers) {
  Result r = sh(net_cidrun() + "run --rm --dns 192.0.2.53 --dns 2001:db8::53" + run_opts() +
                busybox_root() + " -- cat /etc/resolv.conf");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out.find("nameserver 192.0.2.53\nnameserver 2001:db8::53\n"), 0U) << r.out;
}

TEST_F(Network, PublishedPortReachesHttpdInADetachedContainer) {
  Result d = sh(net_cidrun() + "run -d --name web2 -p 127.0.0.1:18080:80" + run_opts() +
                web_root() + " -- httpd -f -p 80 -h /www");
  ASSERT_EQ(d.code, 0) << d.err;
  EXPECT_EQ(d.out, "web2\n");
  EXPECT_TRUE(wait_status("web2", "running"));
  std::string cni_id = record_of("web2")["cni"]["container_id"].get<std::string>();
  std::string address = address_of("web2");
  bool answered = eventually([] {
    return sh("/bin/busybox wget -q -O- http://127.0.0.1:18080/").out ==
           "hello from the container\n";
  });
  EXPECT_TRUE(answered) << sh("/bin/busybox wget -O- http://127.0.0.1:18080/ 2>&1").out;
  EXPECT_NE(leftovers(cni_id, address), "");
  // Killed, the container goes; its monitor tears the network down without being asked.
  EXPECT_EQ(sh(cidrun() + " kill web2 KILL").code, 0);
  EXPECT_TRUE(wait_status("web2", "stopped"));
  EXPECT_TRUE(eventually([&] { return leftovers(cni_id, address).empty(); }))
      << leftovers(cni_id, address);
  EXPECT_EQ(sh(cidrun() + " delete web2").code, 0);
}

TEST_F(Network, PublishedPortInUseIsRefusedAndFreedWhenTheContainerGoes) {
  Result d = sh(net_cidrun() + "run -d --name web3 -p 127.0.0.1:18082:80" + run_opts() +
                web_root() + " -- httpd -f -p 80 -h /www");
  ASSERT_EQ(d.code, 0) << d.err;
  // A second container, or a server of the host, cannot take the port while web3 has it.
  Result again = sh(net_cidrun() + "run --rm --name bad -p 18082:80" + run_opts() + busybox_root() +
                    " -- true");
  EXPECT_NE(again.code, 0);
  EXPECT_EQ(again.err, "cidrun: error: -p *:18082/tcp: the host port is already in use\n");
  EXPECT_EQ(sh("ls -A " + work_dir() + "/state/@network").out, "web3\n");
  EXPECT_NE(sh(cidrun() + " state bad").code, 0);
  // (httpd exits 1 when it cannot bind; bound, it would serve until the timeout.)
  Result host = sh("timeout 2 /bin/busybox httpd -f -p 127.0.0.1:18082 -h " + web_root() + "/www");
  EXPECT_EQ(host.code, 1);
  EXPECT_NE(host.err.find("Address already in use"), std::string::npos) << host.err;
  // A server of the host that has the port first keeps it.
  pid_t server = spawn_sh("/bin/busybox httpd -f -p 127.0.0.1:18083 -h " + web_root() + "/www",
                          work_dir() + "/host-httpd.log");
  EXPECT_TRUE(eventually([] { return listening(18083); }));
  Result taken = sh(net_cidrun() + "run --rm --name bad -p 127.0.0.1:18083:80/tcp" + run_opts() +
                    busybox_root() + " -- true");
  EXPECT_EQ(taken.err, "cidrun: error: -p 127.0.0.1:18083/tcp: the host port is already in use\n");
  ::kill(server, SIGKILL);
  wait_exit(server);
  // The port is free again once web3 is gone.
  EXPECT_EQ(sh(cidrun() + " delete --force web3").code, 0);
  EXPECT_EQ(sh("ls -A " + work_dir() + "/state/@network").out, "");
  Result after = sh("timeout 1 /bin/busybox httpd -f -p 127.0.0.1:18082 -h " + web_root() + "/www");
  EXPECT_EQ(after.code, 124) << after.err;  // served until the timeout ended it
}

TEST_F(Network, DetachedWithRmIsDeletedWhenItExits) {
  Result d =
      sh(net_cidrun() + "run -d --rm --name gone" + run_opts() + busybox_root() + " -- sleep 1");
  ASSERT_EQ(d.code, 0) << d.err;
  EXPECT_TRUE(eventually([] { return sh(cidrun() + " state gone").code != 0; }));
  EXPECT_TRUE(eventually([] { return leftovers("gone", "none").empty(); }))
      << leftovers("gone", "none");
}

TEST_F(Network, TwoContainersOnOneBridgeReachEachOther) {
  ASSERT_EQ(sh(net_cidrun() + "run -d --name peer1 --network " + kNetwork + run_opts() +
               web_root() + " -- httpd -f -p 80 -h /www")
                .code,
            0);
  std::string address = address_of("peer1");
  Result r;
  bool answered = eventually([&] {
    r = sh(net_cidrun() + "run --rm --name peer2 --network " + kNetwork + run_opts() +
           busybox_root() + " -- wget -q -O- http://" + address + "/");
    return r.out == "hello from the container\n";
  });
  EXPECT_TRUE(answered) << r.out << r.err;
  EXPECT_EQ(sh(cidrun() + " delete --force peer1").code, 0);
  EXPECT_TRUE(eventually([] { return leftovers("peer1", "none").empty(); }))
      << leftovers("peer1", "none");
}

TEST_F(Network, KillNineOfCidrunThenDeleteCleansUp) {
  pid_t run =
      spawn_sh(net_cidrun() + "run --name k9" + run_opts() + busybox_root() + " -- sleep 1000",
               work_dir() + "/k9.log");
  ASSERT_TRUE(wait_status("k9", "running")) << slurp(work_dir() + "/k9.log");
  std::string cni_id = record_of("k9")["cni"]["container_id"].get<std::string>();
  std::string address = address_of("k9");
  ::kill(run, SIGKILL);
  wait_exit(run);
  // The container dies with its runtime; its network stays until someone cleans up.
  EXPECT_TRUE(wait_status("k9", "stopped"));
  EXPECT_NE(leftovers(cni_id, address), "");
  Result del = sh(cidrun() + " delete k9");
  EXPECT_EQ(del.code, 0) << del.err;
  EXPECT_EQ(leftovers(cni_id, address), "");
}

TEST_F(Network, KillNineOfCidrunThenTheNextRunCleansUp) {
  pid_t run = spawn_sh(
      net_cidrun() + "run --rm --name k9b" + run_opts() + busybox_root() + " -- sleep 1000",
      work_dir() + "/k9b.log");
  ASSERT_TRUE(wait_status("k9b", "running")) << slurp(work_dir() + "/k9b.log");
  std::string cni_id = record_of("k9b")["cni"]["container_id"].get<std::string>();
  std::string address = address_of("k9b");
  ::kill(run, SIGKILL);
  wait_exit(run);
  EXPECT_TRUE(wait_status("k9b", "stopped"));
  EXPECT_EQ(sh(net_cidrun() + "run --rm --network none " + busybox_root() + " -- true").code, 0);
  EXPECT_EQ(leftovers(cni_id, address), "");
  EXPECT_EQ(sh(cidrun() + " delete k9b").code, 0);
}

TEST_F(Network, BadInputIsOneLineAndLeavesNothing) {
  struct Case {
    std::string opts;
    std::string env;
    std::string error;
  };
  std::string empty_dir = work_dir() + "/no-plugins";
  sh("mkdir -p " + empty_dir);
  const Case cases[] = {
      {"-p 99999:80", "", "cidrun: error: -p 99999:80: port 99999 is not in 1-65535\n"},
      {"-p 80", "", "cidrun: error: -p 80: want [IP:]HOST:CONTAINER[/tcp|udp]\n"},
      {"-p 8080:80/icmp", "",
       "cidrun: error: -p 8080:80/icmp: protocol \"icmp\" is not tcp, udp or sctp\n"},
      {"-p 999.1.1.1:8080:80", "",
       "cidrun: error: -p 999.1.1.1:8080:80: \"999.1.1.1\" is not an IP address\n"},
      {"-p 192.0.2.7:8080:80", "",
       "cidrun: error: -p 192.0.2.7:8080/tcp: the address is not one of this host's\n"},
      {"--dns nameserver", "", "cidrun: error: --dns nameserver: not an IP address\n"},
      {"--network nosuch", "",
       "cidrun: error: --network nosuch: no such network (no nosuch.conflist in " + config_dir() +
           ")\n"},
      {"--network none -p 8080:80", "",
       "cidrun: error: -p needs a network of the container's own, not --network none\n"},
      {"--network cidrun-test", "CNI_PATH=" + empty_dir,
       "cidrun: error: network cidrun-test: plugin bridge not found in " + empty_dir + "\n"},
      {"--network cidrun-bad", "",
       "cidrun: error: network cidrun-bad: plugin tuning ADD: open "
       "/proc/sys/net/ipv4/conf/eth0/no_such_knob: no such file or directory\n"},
  };
  for (const auto& c : cases) {
    Result r = sh("env -u CIDRUN_NETWORK " + c.env + " " + cidrun() + " run --rm --name bad " +
                  c.opts + run_opts() + busybox_root() + " -- true");
    EXPECT_NE(r.code, 0) << c.opts;
    EXPECT_EQ(r.err, c.error) << c.opts;
    EXPECT_EQ(leftovers("bad", "none"), "") << c.opts;
    EXPECT_NE(sh(cidrun() + " state bad").code, 0) << c.opts;
  }
}

TEST_F(Network, BundlesKeepTheirConfigsNetwork) {
  std::string b = make_bundle("netbundle", {"/bin/sh", "-c", "ls /sys/class/net"});
  Result r = sh(net_cidrun() + "run --rm" + run_opts() + b);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "lo\n");
}

TEST_F(Network, RootlessSlirp4netnsReachesTheOutside) {
  make_outside();
  // slirp4netns opens /dev/net/tun as the user: Debian's udev makes it 0666, this machine's is
  // 0600. A node of our own, bound over it in the test's mount namespace, is what Debian gives.
  if (sh("stat -c %a /dev/net/tun").out != "666\n") {
    ASSERT_EQ(sh("mknod -m 666 " + work_dir() + "/tun c 10 200 && mount --bind " + work_dir() +
                 "/tun /dev/net/tun")
                  .code,
              0);
  }
  // nobody's own root, state and home (the rootless tests' way).
  std::string home = work_dir() + "/nobody";
  sh("install -d -o 65534 -g 65534 " + home + " && cp -a " + web_root() + " " + home +
     "/root && chown -R 65534:65534 " + home + "/root");
  std::string as_nobody =
      "setpriv --reuid=65534 --regid=65534 --clear-groups env -i "
      "PATH=/usr/sbin:/usr/bin:/sbin:/bin "
      "HOME=" +
      home + " " + CIDRUN_BINARY + " --root " + home + "/state ";
  Result r = sh(as_nobody + "run --rm " + home + "/root -- sh -c 'wget -q -O- http://" +
                kOutsideAddress + ":8000/cgi-bin/ip; cat /etc/resolv.conf'");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out.find(std::string(kOurOutsideAddress) + "\nnameserver 10.0.2.3\n"), 0U) << r.out;
  // Published on loopback through slirp4netns's port forwarding.
  Result d = sh(as_nobody + "run -d --name rl -p 127.0.0.1:18081:80 " + home +
                "/root -- httpd -f -p 80 -h /www");
  ASSERT_EQ(d.code, 0) << d.err;
  bool answered = eventually([] {
    return sh("/bin/busybox wget -q -O- http://127.0.0.1:18081/").out ==
           "hello from the container\n";
  });
  EXPECT_TRUE(answered);
  Result taken = sh(as_nobody + "run -d --name rl2 -p 127.0.0.1:18081:80 " + home +
                    "/root -- httpd -f -p 80 -h /www");
  EXPECT_EQ(taken.err, "cidrun: error: -p 127.0.0.1:18081/tcp: the host port is already in use\n");
  EXPECT_EQ(sh("ls -A " + home + "/state/@network").out, "rl\n");
  json rec = json::parse(slurp(home + "/state/@network/rl/network.json"));
  std::string slirp_pid = std::to_string(rec["slirp4netns"]["pid"].get<int>());
  EXPECT_EQ(sh(as_nobody + "delete --force rl").code, 0);
  EXPECT_TRUE(eventually(
      [&] { return sh("grep -qs slirp4netns /proc/" + slirp_pid + "/cmdline").code != 0; }));
  EXPECT_EQ(sh("ls -A " + home + "/state/@network").out, "");
}

}  // namespace
