#include "cli/network.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <functional>
#include <memory>
#include <thread>

#include "cli/netns.h"
#include "cli/slirp.h"
#include "runtime/state.h"
#include "util/error.h"
#include "util/log.h"
#include "util/proc.h"
#include "util/random.h"

namespace cidrun::cli {

using nlohmann::json;

namespace {

constexpr const char* kDefaultConfigDir = "/etc/cidrun/networks";
constexpr const char* kEntriesDir = "@network";
constexpr const char* kTempPrefix = "tmp~";  // '~' cannot appear in a container id
constexpr const char* kInterface = "eth0";
// How long `delete` waits for a live owner to finish its own teardown.
constexpr auto kOwnerWait = std::chrono::seconds(30);

// `--network bridge` when the configuration directory has no bridge.conflist: podman's default
// network list (bridge with NAT, host-local addresses, published ports, forwarding allowed past
// a FORWARD policy of DROP) on a bridge and subnet of cidrun's own.
constexpr const char* kDefaultBridge = R"({
  "cniVersion": "1.0.0",
  "name": "cidrun",
  "plugins": [
    {"type": "bridge", "bridge": "cidrun0", "isGateway": true, "ipMasq": true,
     "hairpinMode": true,
     "ipam": {"type": "host-local", "routes": [{"dst": "0.0.0.0/0"}],
              "ranges": [[{"subnet": "10.87.0.0/16", "gateway": "10.87.0.1"}]]}},
    {"type": "portmap", "capabilities": {"portMappings": true}},
    {"type": "firewall"}
  ]
})";

bool file_exists(const std::string& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0;
}

bool valid_address(const std::string& s) {
  in6_addr a{};
  return ::inet_pton(AF_INET, s.c_str(), &a) == 1 || ::inet_pton(AF_INET6, s.c_str(), &a) == 1;
}

int parse_port(const std::string& spec, const std::string& s) {
  if (s.empty() || s.size() > 5 || s.find_first_not_of("0123456789") != std::string::npos)
    throw Error("-p " + spec + ": port \"" + s + "\" is not a number");
  int port = std::stoi(s);
  if (port < 1 || port > 65535) throw Error("-p " + spec + ": port " + s + " is not in 1-65535");
  return port;
}

std::string hex_id() {
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (int word = 0; word < 2; ++word)
    for (uint64_t r = random_u64(), i = 0; i < 16; ++i, r >>= 4) out += hex[r % 16];
  return out;
}

void write_text(const std::string& path, const std::string& text, int mode = 0644) {
  write_file_atomic(path, as_bytes(text), /*durable=*/false, mode);
}

// The nameserver lines the container gets: --dns, else the host's (loopback ones dropped: they
// name a resolver in the host's namespace, which the container cannot reach), else, on a host
// whose resolv.conf names only systemd-resolved's stub, the servers behind it.
std::string resolv_conf(const std::vector<std::string>& dns, const char* nameserver_override) {
  auto host_lines = [](const std::string& path) {
    std::vector<std::string> lines;
    try {
      std::string text = read_text_file(path);
      size_t start = 0;
      while (start < text.size()) {
        size_t end = text.find('\n', start);
        if (end == std::string::npos) end = text.size();
        lines.push_back(text.substr(start, end - start));
        start = end + 1;
      }
    } catch (const Error&) {
    }
    return lines;
  };
  auto nameserver_of = [](const std::string& line) -> std::string {
    if (line.rfind("nameserver", 0) != 0) return "";
    size_t b = line.find_first_not_of(" \t", 10);
    if (b == std::string::npos || b == 10) return "";
    size_t e = line.find_first_of(" \t#", b);
    return line.substr(b, e == std::string::npos ? std::string::npos : e - b);
  };
  auto loopback = [](const std::string& a) {
    return a.rfind("127.", 0) == 0 || a == "::1" || a == "0.0.0.0";
  };
  std::string out, servers;
  bool host_had_loopback = false;
  for (const auto& line : host_lines("/etc/resolv.conf")) {
    std::string ns = nameserver_of(line);
    if (ns.empty()) {
      if (!line.empty() && line[0] != '#') out += line + "\n";
      continue;
    }
    if (loopback(ns)) {
      host_had_loopback = true;
    } else {
      servers += "nameserver " + ns + "\n";
    }
  }
  if (!dns.empty()) {
    servers.clear();
    for (const auto& d : dns) servers += "nameserver " + d + "\n";
  } else if (nameserver_override) {
    servers = std::string("nameserver ") + nameserver_override + "\n";
  } else if (servers.empty() && host_had_loopback) {
    for (const auto& line : host_lines("/run/systemd/resolve/resolv.conf")) {
      std::string ns = nameserver_of(line);
      if (!ns.empty() && !loopback(ns)) servers += "nameserver " + ns + "\n";
    }
  }
  if (servers.empty())
    log::warn("the container gets no nameserver (the host's are all loopback): give --dns");
  return servers + out;
}

std::string hosts_file(const std::vector<std::string>& addresses, const std::string& gateway,
                       const std::string& hostname, const std::string& id) {
  std::string names = hostname;
  if (id != hostname) names += (names.empty() ? "" : " ") + id;
  std::string out = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n";
  for (const auto& a : addresses) out.append(a).append("\t").append(names).append("\n");
  // podman's name for the host as the container reaches it.
  if (!gateway.empty()) out += gateway + "\thost.containers.internal\n";
  return out;
}

// Points the config's network namespace at `netns` (and, rootless, its user namespace at the
// holder's) and binds our /etc/hosts and /etc/resolv.conf unless the config mounts its own.
void point_config_at(json& config, const std::string& netns, const std::string& userns,
                     const std::string& dir) {
  json& lx = config["linux"];
  json nss = json::array();
  for (const auto& ns : lx.value("namespaces", json::array())) {
    std::string type = ns.value("type", "");
    if (type != "network" && (userns.empty() || type != "user")) nss.push_back(ns);
  }
  nss.push_back({{"type", "network"}, {"path", netns}});
  if (!userns.empty()) {
    nss.push_back({{"type", "user"}, {"path", userns}});
    // The joined namespace has its mappings already.
    lx.erase("uidMappings");
    lx.erase("gidMappings");
  }
  lx["namespaces"] = nss;
  if (!config.contains("mounts") || !config["mounts"].is_array()) config["mounts"] = json::array();
  for (const char* file : {"hosts", "resolv.conf"}) {
    std::string dst = std::string("/etc/") + file;
    bool taken = false;
    for (const auto& m : config["mounts"]) taken = taken || m.value("destination", "") == dst;
    if (taken) continue;
    config["mounts"].push_back({{"destination", dst},
                                {"type", "bind"},
                                {"source", dir + "/" + file},
                                {"options", {"bind", "nosuid", "nodev", "noexec"}}});
  }
}

// The host ports that -p publishes, bound (not listened on) by the container's owner for as long
// as the container runs, as podman's conmon does: the portmap plugin only adds DNAT rules, which
// neither fail when a port is taken nor stop a later server or container from taking it, so
// that traffic silently goes to whichever rule or socket comes first. Packets to a published
// port are rewritten before a socket is looked up, so these never see any. Without SO_REUSEADDR
// on ours, a server's bind conflicts whether or not it sets it.
std::vector<UniqueFd> reserve_host_ports(const json& mappings) {
  std::vector<UniqueFd> held;
  for (const auto& m : mappings) {
    const std::string ip = m.value("hostIP", "");
    const std::string proto = m.value("protocol", "tcp");
    const int port = m.at("hostPort").get<int>();
    const bool v6 = ip.find(':') != std::string::npos;
    const int type = proto == "udp" ? SOCK_DGRAM : SOCK_STREAM;
    const int protocol = proto == "sctp" ? IPPROTO_SCTP : 0;
    std::string where = ip.empty() ? std::string("*") : v6 ? "[" + ip + "]" : ip;
    where.append(":").append(std::to_string(port)).append("/").append(proto);
    UniqueFd fd(::socket(v6 ? AF_INET6 : AF_INET, type | SOCK_CLOEXEC, protocol));
    if (!fd.valid()) {
      // No SCTP in this kernel: nothing else can take the port either.
      if (proto == "sctp" && (errno == EPROTONOSUPPORT || errno == ESOCKTNOSUPPORT)) continue;
      throw_errno("-p " + where + ": socket");
    }
    int rc = 0;
    if (v6) {
      sockaddr_in6 a{};
      a.sin6_family = AF_INET6;
      a.sin6_port = htons(static_cast<uint16_t>(port));
      ::inet_pton(AF_INET6, ip.c_str(), &a.sin6_addr);
      const int only = 1;
      ::setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &only, sizeof only);
      rc = ::bind(fd.get(), reinterpret_cast<const sockaddr*>(&a), sizeof a);
    } else {
      sockaddr_in a{};
      a.sin_family = AF_INET;
      a.sin_port = htons(static_cast<uint16_t>(port));
      a.sin_addr.s_addr = htonl(INADDR_ANY);
      if (!ip.empty()) ::inet_pton(AF_INET, ip.c_str(), &a.sin_addr);
      rc = ::bind(fd.get(), reinterpret_cast<const sockaddr*>(&a), sizeof a);
    }
    if (rc < 0) {
      if (errno == EADDRINUSE) throw Error("-p " + where + ": the host port is already in use");
      if (errno == EADDRNOTAVAIL)
        throw Error("-p " + where + ": the address is not one of this host's");
      throw_errno("-p " + where + ": bind");
    }
    held.push_back(std::move(fd));
  }
  return held;
}

cni::NetworkList load_network(const std::string& name, const std::string& config_dir) {
  // A name is a file name in the configuration directory, never a path.
  if (name.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") !=
          std::string::npos ||
      name[0] == '.')
    throw Error("--network " + name + ": not a network name (letters, digits, '_', '.', '-')");
  std::string dir = config_dir.empty() ? kDefaultConfigDir : config_dir;
  std::string path = dir + "/" + name + ".conflist";
  if (file_exists(path)) return cni::parse_network_list(read_text_file(path), path);
  if (name == "bridge")
    return cni::parse_network_list(kDefaultBridge, "the default bridge network");
  throw Error("--network " + name + ": no such network (no " + name + ".conflist in " + dir + ")");
}

}  // namespace

// One entry under <state root>/@network, and the lock that says who owns it.
struct NetworkEntry {
  static std::string base(const std::string& state_root) { return state_root + "/" + kEntriesDir; }

  // Takes the entry's lock; `wait` polls until the deadline (a live owner tearing it down), else
  // gives up at once. Returns an invalid fd when the entry is gone or the lock is held.
  static UniqueFd lock(const std::string& dir, std::chrono::milliseconds wait) {
    const auto deadline = std::chrono::steady_clock::now() + wait;
    for (;;) {
      UniqueFd fd(::open((dir + "/lock").c_str(), O_RDWR | O_CLOEXEC | O_NOFOLLOW));
      if (!fd.valid()) return fd;
      if (::flock(fd.get(), LOCK_EX | LOCK_NB) == 0) {
        // Removed (and maybe made again) while we waited: what we hold is not that entry's lock.
        struct stat held, now;
        if (::fstat(fd.get(), &held) == 0 && ::stat((dir + "/lock").c_str(), &now) == 0 &&
            held.st_ino == now.st_ino && held.st_dev == now.st_dev) {
          return fd;
        }
        continue;
      }
      if (errno != EWOULDBLOCK) throw_errno("lock " + dir + "/lock");
      if (std::chrono::steady_clock::now() >= deadline) return UniqueFd();
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }

  // Makes <base>/<id> with its lock held: built under a temporary name, then renamed, so that an
  // entry is never seen without its owner's lock. An entry of that id that a dead owner left
  // is undone first.
  static UniqueFd create(const std::string& state_root, const std::string& id, std::string& dir) {
    std::string b = base(state_root);
    make_dirs(b, 0700);
    std::string tmp = b + "/" + kTempPrefix + std::to_string(random_u64());
    if (::mkdir(tmp.c_str(), 0700) < 0) throw_errno("mkdir " + tmp);
    UniqueFd fd(::open((tmp + "/lock").c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
    if (!fd.valid() || ::flock(fd.get(), LOCK_EX) < 0) {
      int err = errno;
      ::unlink((tmp + "/lock").c_str());
      ::rmdir(tmp.c_str());
      throw_errno("lock " + tmp, err);
    }
    dir = b + "/" + id;
    if (::rename(tmp.c_str(), dir.c_str()) == 0) return fd;
    int err = errno;
    if ((err == ENOTEMPTY || err == EEXIST) && reap(state_root, id)) {
      if (::rename(tmp.c_str(), dir.c_str()) == 0) return fd;
      err = errno;
    }
    ::unlink((tmp + "/lock").c_str());
    ::rmdir(tmp.c_str());
    if (err == ENOTEMPTY || err == EEXIST)
      throw Error("the network of container \"" + id + "\" is still in use");
    throw_errno("rename " + tmp + " to " + dir, err);
  }

  // Undoes the entry's record; its lock is held. Throws when a plugin cannot undo its part
  // (the entry then stays, to be tried again). `undone` runs once the plugins have undone
  // theirs, before the entry (and its lock, which `delete` waits for) goes.
  static void undo(const std::string& dir, const std::function<void()>& undone = {}) {
    json rec;
    try {
      rec = json::parse(read_text_file(dir + "/network.json"));
    } catch (const std::exception&) {
      rec = json::object();  // never written, or cut short: only files to remove
    }
    std::string first_error;
    if (rec.contains("cni")) {
      const json& c = rec["cni"];
      try {
        cni::NetworkList net =
            cni::parse_network_list(c.at("network").dump(), c.value("source", "network.json"));
        cni::Attachment a;
        a.container_id = c.at("container_id").get<std::string>();
        a.netns = rec.value("netns", "");
        a.ifname = c.value("ifname", kInterface);
        a.runtime_config = c.value("runtime_config", json::object());
        a.plugin_dirs = c.value("plugin_dirs", cni::default_plugin_dirs());
        cni::del(net, a, c.value("result", json()));
      } catch (const std::exception& e) {
        first_error = e.what();
      }
    }
    if (!first_error.empty()) throw Error(first_error);
    if (undone) undone();
    for (const char* helper : {"slirp4netns", "holder"}) {
      if (rec.contains(helper)) {
        slirp::stop(rec[helper].value("pid", 0), rec[helper].value("start_time", uint64_t{0}));
      }
    }
    remove_pinned_netns(dir + "/netns");
    for (const char* f :
         {"network.json", "hosts", "resolv.conf", "slirp4netns.sock", "slirp4netns.log", "lock"}) {
      if (::unlink((dir + "/" + f).c_str()) < 0 && errno != ENOENT)
        throw_errno("remove " + dir + "/" + f);
    }
    if (::rmdir(dir.c_str()) < 0 && errno != ENOENT) throw_errno("remove " + dir);
  }

  // Undoes <base>/<id> if a dead owner left it: nobody holds its lock and its container is not
  // running. Returns whether it was undone.
  static bool reap(const std::string& state_root, const std::string& id) {
    std::string dir = base(state_root) + "/" + id;
    if (id.rfind(kTempPrefix, 0) == 0) {
      // Between its lock file's creation and its flock a new entry looks unowned: only one
      // that has stayed unnamed for a minute was left by a dead owner.
      struct stat st;
      if (::stat(dir.c_str(), &st) < 0 || ::time(nullptr) - st.st_mtime < 60) return false;
    }
    UniqueFd lk = lock(dir, std::chrono::milliseconds(0));
    if (!lk.valid()) return false;
    if (id.rfind(kTempPrefix, 0) != 0) {
      runtime::StateStore store(state_root);
      try {
        if (store.exists(id) && runtime::container_status(store, store.load(id)) != "stopped")
          return false;  // a detached container whose monitor died: its `delete` undoes it
      } catch (const Error&) {
      }
    }
    undo(dir);
    return true;
  }
};

void add_network_flags(Command& sub, NetworkFlags& f) {
  sub.add_option("--network", f.network,
                 "bridge (default as root), slirp4netns (default rootless), none, host, or a "
                 "network named in the network config directory");
  sub.add_option("-p,--publish", f.publish, "Publish a port: [IP:]HOST:CONTAINER[/tcp|udp]")
      .one_value_each();
  sub.add_option("--dns", f.dns, "Nameserver for the container's resolv.conf").one_value_each();
  sub.add_option("--network-config-dir", f.config_dir,
                 "Where NAME.conflist files are (default /etc/cidrun/networks)");
}

json parse_publish(const std::string& spec) {
  std::string rest = spec;
  std::string proto = "tcp";
  if (size_t slash = rest.rfind('/'); slash != std::string::npos) {
    proto = rest.substr(slash + 1);
    rest.resize(slash);
    if (proto != "tcp" && proto != "udp" && proto != "sctp")
      throw Error("-p " + spec + ": protocol \"" + proto + "\" is not tcp, udp or sctp");
  }
  std::string ip;
  if (!rest.empty() && rest[0] == '[') {
    size_t close = rest.find(']');
    if (close == std::string::npos || close + 1 >= rest.size() || rest[close + 1] != ':')
      throw Error("-p " + spec + ": want [IP:]HOST:CONTAINER[/tcp|udp]");
    ip = rest.substr(1, close - 1);
    rest = rest.substr(close + 2);
  }
  std::vector<std::string> parts;
  size_t start = 0;
  for (;;) {
    size_t colon = rest.find(':', start);
    parts.push_back(rest.substr(start, colon - start));
    if (colon == std::string::npos) break;
    start = colon + 1;
  }
  if (ip.empty() && parts.size() == 3) {
    ip = parts[0];
    parts.erase(parts.begin());
  }
  if (parts.size() != 2) throw Error("-p " + spec + ": want [IP:]HOST:CONTAINER[/tcp|udp]");
  json m = {{"hostPort", parse_port(spec, parts[0])},
            {"containerPort", parse_port(spec, parts[1])},
            {"protocol", proto}};
  if (!ip.empty()) {
    if (!valid_address(ip)) throw Error("-p " + spec + ": \"" + ip + "\" is not an IP address");
    m["hostIP"] = ip;
  }
  return m;
}

NetworkPlan plan_network(const NetworkFlags& f, bool own_config, runtime::RunOverrides& o) {
  NetworkPlan plan;
  std::string name = f.network;
  if (name.empty() && !own_config) {
    const char* env = std::getenv("CIDRUN_NETWORK");
    name = env && *env ? env : ::geteuid() == 0 ? "bridge" : "slirp4netns";
  }
  for (const auto& p : f.publish) plan.port_mappings.push_back(parse_publish(p));
  for (const auto& d : f.dns) {
    if (!valid_address(d)) throw Error("--dns " + d + ": not an IP address");
    plan.dns.push_back(d);
  }
  if (name.empty() || name == "none" || name == "host") {
    plan.kind = name.empty()     ? NetworkKind::kConfig
                : name == "none" ? NetworkKind::kNone
                                 : NetworkKind::kHost;
    const char* what = name.empty() ? "the config's own network" : nullptr;
    std::string where = what ? what : "--network " + name;
    if (!f.publish.empty()) throw Error("-p needs a network of the container's own, not " + where);
    if (!f.dns.empty()) throw Error("--dns needs a network of the container's own, not " + where);
    o.network = name;
    return plan;
  }
  if (name == "slirp4netns") {
    plan.kind = NetworkKind::kSlirp4netns;
    for (const auto& m : plan.port_mappings) {
      std::string ip = m.value("hostIP", "");
      if (!ip.empty() && ip.find(':') != std::string::npos)
        throw Error("-p " + m.dump() + ": slirp4netns publishes on IPv4 addresses only");
      if (m.value("protocol", "") == "sctp") throw Error("-p: slirp4netns has no sctp");
    }
    return plan;
  }
  if (::geteuid() != 0) {
    throw Error("--network " + name +
                " needs root (a rootless container gets --network slirp4netns)");
  }
  plan.kind = NetworkKind::kCni;
  plan.cni = load_network(name, f.config_dir);
  plan.plugin_dirs = cni::default_plugin_dirs();
  cni::check_plugins(plan.cni, plan.plugin_dirs);
  if (!plan.port_mappings.empty() && !cni::has_capability(plan.cni, "portMappings")) {
    throw Error("-p: network " + plan.cni.name +
                " has no plugin that publishes ports (capability portMappings)");
  }
  return plan;
}

std::unique_ptr<ContainerNetwork> ContainerNetwork::attach(const NetworkPlan& plan,
                                                           const std::string& state_root,
                                                           const std::string& id, json& config) {
  reap_stale_networks(state_root);
  if (plan.kind != NetworkKind::kCni && plan.kind != NetworkKind::kSlirp4netns) return nullptr;
  runtime::validate_container_id(id);
  if (runtime::StateStore(state_root).exists(id))
    throw Error("container \"" + id + "\" already exists");

  std::unique_ptr<ContainerNetwork> net(new ContainerNetwork());
  // Before anything is made: a port in use leaves nothing behind. slirp4netns binds its own
  // later, so ours only check then (let go before the helpers it forks could inherit them), for
  // the same one-line error as with a CNI network.
  net->host_ports_ = reserve_host_ports(plan.port_mappings);
  if (plan.kind == NetworkKind::kSlirp4netns) net->host_ports_.clear();
  net->lock_ = NetworkEntry::create(state_root, id, net->dir_);
  const std::string& dir = net->dir_;
  try {
    json rec = {{"id", id}};
    std::vector<std::string> addresses;
    std::string gateway, userns;
    const std::string netns = dir + "/netns";
    const bool rootless = ::geteuid() != 0;
    std::string netns_ref = netns;  // what the container joins
    if (plan.kind == NetworkKind::kCni) {
      create_pinned_netns(netns);
      rec["netns"] = netns;
      cni::Attachment a;
      a.container_id = hex_id();
      a.netns = netns;
      a.ifname = kInterface;
      a.plugin_dirs = plan.plugin_dirs;
      if (!plan.port_mappings.empty()) a.runtime_config["portMappings"] = plan.port_mappings;
      rec["cni"] = {{"network",
                     {{"cniVersion", plan.cni.cni_version},
                      {"name", plan.cni.name},
                      {"plugins", plan.cni.plugins}}},
                    {"source", plan.cni.source},
                    {"container_id", a.container_id},
                    {"ifname", a.ifname},
                    {"plugin_dirs", a.plugin_dirs},
                    {"runtime_config", a.runtime_config},
                    {"result", nullptr}};
      // Written before ADD: a setup cut short by kill -9 is undone from it.
      write_text(dir + "/network.json", rec.dump(), 0600);
      json result = cni::add(plan.cni, a);
      rec["cni"]["result"] = result;
      write_text(dir + "/network.json", rec.dump(), 0600);
      for (const auto& ip : result.value("ips", json::array())) {
        std::string addr = ip.value("address", "");
        addresses.push_back(addr.substr(0, addr.find('/')));
        if (gateway.empty()) gateway = ip.value("gateway", "");
      }
    } else {
      slirp::Holder holder;
      pid_t target = 0;
      if (rootless) {
        holder = slirp::spawn_namespace_holder();
        target = holder.pid;
        rec["holder"] = {{"pid", holder.pid}, {"start_time", process_start_time(holder.pid)}};
        netns_ref = "/proc/" + std::to_string(holder.pid) + "/ns/net";
        userns = "/proc/" + std::to_string(holder.pid) + "/ns/user";
        net->holder_ = std::move(holder.release);
        net->holder_pid_ = holder.pid;
      } else {
        create_pinned_netns(netns);
        rec["netns"] = netns;
      }
      write_text(dir + "/network.json", rec.dump(), 0600);
      slirp::Process p =
          slirp::start(target, netns, dir + "/slirp4netns.sock", dir + "/slirp4netns.log");
      rec["slirp4netns"] = {{"pid", p.pid}, {"start_time", p.start_time}};
      net->slirp_exit_ = std::move(p.exit_fd);
      write_text(dir + "/network.json", rec.dump(), 0600);
      for (const auto& m : plan.port_mappings)
        slirp::add_port_forward(dir + "/slirp4netns.sock", m);
      addresses.emplace_back(slirp::kGuestAddress);
    }
    write_text(dir + "/hosts",
               hosts_file(addresses, gateway, config.value("hostname", std::string()), id));
    write_text(dir + "/resolv.conf",
               resolv_conf(plan.dns, plan.kind == NetworkKind::kSlirp4netns && plan.dns.empty()
                                         ? slirp::kNameserver
                                         : nullptr));
    point_config_at(config, netns_ref, userns, dir);
  } catch (...) {
    try {
      net->teardown();
    } catch (const Error& e) {
      log::warn("undoing a failed network setup: " + std::string(e.what()));
    }
    throw;
  }
  return net;
}

void ContainerNetwork::container_started() {
  if (holder_pid_ == 0) return;
  holder_.reset();
  while (::waitpid(holder_pid_, nullptr, 0) < 0 && errno == EINTR) {
  }
  holder_pid_ = 0;
}

void ContainerNetwork::teardown() {
  if (!owned_ || dir_.empty()) return;
  // slirp4netns and the namespace holder end once their descriptors close.
  slirp_exit_.reset();
  container_started();
  // The host ports are free once nothing forwards them, and before `delete` returns.
  NetworkEntry::undo(dir_, [this] { host_ports_.clear(); });
  dir_.clear();
  lock_.reset();
}

ContainerNetwork::~ContainerNetwork() {
  try {
    teardown();
  } catch (const Error& e) {
    log::warn("network teardown: " + std::string(e.what()));
  }
}

void reap_stale_networks(const std::string& state_root) {
  std::string b = NetworkEntry::base(state_root);
  std::unique_ptr<DIR, int (*)(DIR*)> d(::opendir(b.c_str()), ::closedir);
  if (!d) return;
  std::vector<std::string> names;
  while (dirent* e = ::readdir(d.get())) {
    std::string n = e->d_name;
    if (n != "." && n != "..") names.push_back(n);
  }
  for (const auto& n : names) {
    try {
      NetworkEntry::reap(state_root, n);
    } catch (const Error& e) {
      log::warn("network of container " + n + " left by a dead owner: " + e.what());
    }
  }
}

void release_network(const std::string& state_root, const std::string& id) {
  std::string dir = NetworkEntry::base(state_root) + "/" + id;
  if (!file_exists(dir)) return;
  UniqueFd lk = NetworkEntry::lock(dir, kOwnerWait);
  if (!lk.valid()) {
    if (!file_exists(dir + "/lock")) return;  // its owner finished meanwhile
    throw Error("the network of container \"" + id + "\" is still held by its owner");
  }
  NetworkEntry::undo(dir);
}

}  // namespace cidrun::cli
