// User-mode networking for a container: slirp4netns (a Debian package) connects a network
// namespace to the host's through a tap device it serves from the host side, with NAT, a DNS
// forwarder at 10.0.2.3 and port forwards asked for over its API socket. It needs no privilege,
// which is why rootless containers use it. Without root, the namespace is made here together
// with the user namespace that owns it, held by a small process until the container has joined
// both.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "util/fd.h"

namespace cidrun::cli::slirp {

// The addresses slirp4netns gives the namespace (its defaults with 10.0.2.0/24).
inline constexpr const char* kGuestAddress = "10.0.2.100";
inline constexpr const char* kNameserver = "10.0.2.3";

// A process in a new user namespace (mapping our uid/gid to root) and a new network namespace
// with loopback up, which lives until `release` closes (or this process dies).
struct Holder {
  pid_t pid = 0;
  UniqueFd release;
};
Holder spawn_namespace_holder();

struct Process {
  pid_t pid = 0;
  uint64_t start_time = 0;
  UniqueFd exit_fd;  // slirp4netns exits when this (its --exit-fd's other end) closes
};

// Starts slirp4netns for the namespace of `target_pid` (its user and network namespaces), or,
// with target_pid 0, for the network namespace pinned at `netns_path`; waits until the tap device
// is configured. Its log goes to `log_path`, its API socket to `api_socket`. Throws with the
// reason slirp4netns gives.
Process start(pid_t target_pid, const std::string& netns_path, const std::string& api_socket,
              const std::string& log_path);

// Forwards a host port into the namespace (a CNI portMappings object) through the API socket.
void add_port_forward(const std::string& api_socket, const nlohmann::json& mapping);

// Ends slirp4netns when `pid` is still the process started at `start_time`.
void stop(pid_t pid, uint64_t start_time);

}  // namespace cidrun::cli::slirp
