// `cidrun serve`: an IPFS Trustless Gateway over a block store.
// Spec: https://specs.ipfs.tech/http-gateways/trustless-gateway/
//
// Built on cpp-httplib (Debian's libcpp-httplib-dev): a small, packaged, blocking server with a
// thread pool. A gateway response is a loop of disk reads and socket writes, which maps directly
// onto one thread per active request; a 64-thread pool serves many concurrent clients on a LAN
// without the callback plumbing an async server (Boost.Beast) would need for the same streaming.
#pragma once

#include <memory>
#include <string>

#include "store/blockstore.h"

namespace cidrun::gateway {

struct ServeOptions {
  std::string listen = "127.0.0.1:8080";  // HOST:PORT; port 0 picks a free one
  size_t threads = 64;
  bool quiet = false;  // no per-request log lines
};

class Server {
 public:
  Server(BlockStore& store, ServeOptions opts);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds the socket; returns the port (useful with port 0). Throws Error when it cannot.
  int bind();
  // Serves until stop() (from another thread or a signal handler thread).
  void run();
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// "HOST:PORT", "[V6]:PORT", ":PORT" or "PORT" -> host and port (host defaults to 127.0.0.1).
std::pair<std::string, int> parse_listen(const std::string& listen);

}  // namespace cidrun::gateway
