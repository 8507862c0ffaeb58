// The network of a container that `run` starts, as podman users know it: `--network bridge` (the
// default for a CID or a root directory) puts the container in a network namespace of its own on
// a bridge with outbound NAT, through a CNI network list (cni.h); `-p` publishes its ports on the
// host, `--dns` chooses its nameservers, and /etc/hosts and /etc/resolv.conf are files of ours
// bound over the image's. `--network slirp4netns` (the default without root) gives outbound
// traffic through slirp4netns in user mode. `none` and `host` are the runtime's own.
// CIDRUN_NETWORK in the environment replaces the default (the test suite sets none).
//
// The runtime only joins the namespace by path (the OCI spec's way): everything else happens here,
// before the container starts and after it is gone. What is needed to undo it is kept beside the
// runtime state, in <state root>/@network/<id>/ ('@' cannot start a container id):
//   lock          held (flock) by the owner for as long as the container runs: `run`, or the
//                 monitor that `run -d` leaves behind
//   netns         the namespace, pinned by a bind mount (cli/netns.h)
//   network.json  the network list used, the plugins' result, the helper processes
//   hosts, resolv.conf
// An entry whose lock nobody holds and whose container is no longer running was left by an owner
// that died (kill -9): the next `run` or the container's `delete` undoes it.
#pragma once

#include <sys/types.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cli/cni.h"
#include "cli/command.h"
#include "runtime/run_options.h"
#include "util/fd.h"

namespace cidrun::cli {

struct NetworkFlags {
  std::string network;               // --network
  std::vector<std::string> publish;  // -p/--publish [IP:]HOST:CONTAINER[/PROTO]
  std::vector<std::string> dns;      // --dns
  std::string config_dir;            // --network-config-dir
};

// Registers --network, -p/--publish, --dns and --network-config-dir on `run`.
void add_network_flags(Command& sub, NetworkFlags& f);

enum class NetworkKind {
  kConfig,  // the config's own namespaces (a bundle or --config without --network)
  kNone,    // a namespace of its own with only loopback (the runtime's)
  kHost,    // the host's namespace (the runtime's)
  kCni,     // a CNI network list: "bridge" or one named in the config directory
  kSlirp4netns,
};

// What the flags ask for, checked whole before anything is made.
struct NetworkPlan {
  NetworkKind kind = NetworkKind::kConfig;
  cni::NetworkList cni;                                    // kCni
  std::vector<std::string> plugin_dirs;                    // kCni
  nlohmann::json port_mappings = nlohmann::json::array();  // CNI's portMappings objects
  std::vector<std::string> dns;
};

// own_config: ROOT is a bundle or --config was given; its namespaces stay unless --network says
// otherwise. Sets o.network for none and host, which the runtime applies. Throws cidrun::Error
// for a bad flag, an unknown network, a network list that cannot work or a missing plugin.
NetworkPlan plan_network(const NetworkFlags& f, bool own_config, runtime::RunOverrides& o);

// "[IP:]HOST:CONTAINER[/tcp|udp|sctp]" (IPv6 in brackets) -> a CNI portMappings object.
nlohmann::json parse_publish(const std::string& spec);

// One container's network while the container may run. Made by attach(); torn down by teardown()
// or, failing that, by the destructor, unless hand_over() passed it to another process.
class ContainerNetwork {
 public:
  // Sets up the plan's network for container `id` and points `config` at it: the network
  // namespace joined by path, /etc/hosts and /etc/resolv.conf bound from our files. Returns null
  // for kinds with nothing to set up. On failure nothing is left.
  static std::unique_ptr<ContainerNetwork> attach(const NetworkPlan& plan,
                                                  const std::string& state_root,
                                                  const std::string& id, nlohmann::json& config);
  ~ContainerNetwork();
  ContainerNetwork(const ContainerNetwork&) = delete;
  ContainerNetwork& operator=(const ContainerNetwork&) = delete;

  // Undoes everything; throws when a plugin cannot (the record then stays for a later retry).
  void teardown();
  // This process no longer tears it down: a child it forked owns it now (the lock and any helper
  // descriptors are shared with that child until the child closes them).
  void hand_over() { owned_ = false; }
  // The container has joined its namespaces: the process that held them (rootless) can go.
  void container_started();

 private:
  ContainerNetwork() = default;
  std::string dir_;
  UniqueFd lock_;
  UniqueFd slirp_exit_;  // slirp4netns runs until this end closes
  UniqueFd holder_;      // rootless: the process holding the namespaces lives until this closes
  std::vector<UniqueFd> host_ports_;  // -p's host ports, bound so that nobody else takes them
  pid_t holder_pid_ = 0;
  bool owned_ = true;
  friend struct NetworkEntry;
};

// Undoes the networks of this state root that owners which died left behind (nobody holds their
// lock and their container is no longer running). `run` calls it before setting up its own.
void reap_stale_networks(const std::string& state_root);

// `delete ID`: waits for a live owner to finish its own teardown, then undoes whatever is left
// of ID's network.
void release_network(const std::string& state_root, const std::string& id);

}  // namespace cidrun::cli
