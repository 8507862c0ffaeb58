// The runtime side of the Container Network Interface (CNI spec 1.0): a network is a list of
// plugins (a .conflist), each an executable found in CNI_PATH that is given the container's
// network namespace and its own configuration on stdin. ADD runs the plugins in order, each
// receiving the previous one's result; DEL runs them in reverse with the cached final result.
// cidrun writes no netlink or firewall code of its own: the plugins (Debian's
// containernetworking-plugins: bridge, host-local, portmap, firewall, tuning...) do that work.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace cidrun::cli::cni {

struct NetworkList {
  std::string name;
  std::string cni_version;
  nlohmann::json plugins;  // array of plugin objects, each with a "type"
  std::string source;      // where it came from, for messages
};

// Parses and checks a .conflist text (name, cniVersion, a non-empty plugins array, each plugin
// a "type" naming a file, no path). Throws cidrun::Error naming `source`.
NetworkList parse_network_list(const std::string& text, const std::string& source);

// Whether any plugin declares the capability (e.g. "portMappings") in its "capabilities" map.
bool has_capability(const NetworkList& net, const std::string& capability);

// What every plugin call of one attachment shares.
struct Attachment {
  std::string container_id;  // unique on the host: plugins name chains and leases after it
  std::string netns;         // path of the network namespace
  std::string ifname;        // interface inside it
  // Capability arguments (portMappings, dns...); each plugin gets those it declares.
  nlohmann::json runtime_config = nlohmann::json::object();
  std::vector<std::string> plugin_dirs;  // CNI_PATH
};

// CNI_PATH from the environment, else Debian's and upstream's plugin directories.
std::vector<std::string> default_plugin_dirs();

// Checks that every plugin's executable exists, so a missing one is reported before anything is
// set up. Throws "network N: plugin T not found in DIRS".
void check_plugins(const NetworkList& net, const std::vector<std::string>& dirs);

// ADD through the whole list; returns the final result. Throws the first plugin's failure; the
// caller then owes a DEL through the whole list (with no result), which every plugin must accept
// for what it never made.
nlohmann::json add(const NetworkList& net, const Attachment& a);

// DEL through the list in reverse, every plugin tried; `prev_result` is ADD's result (null when
// ADD never finished). Throws the first failure after trying them all.
void del(const NetworkList& net, const Attachment& a, const nlohmann::json& prev_result);

}  // namespace cidrun::cli::cni
