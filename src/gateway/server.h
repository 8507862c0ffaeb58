// `cidrun serve`: an IPFS Trustless Gateway over a block store.
// Spec: https://specs.ipfs.tech/http-gateways/trustless-gateway/
//
// HTTP comes from net::HttpServer (our own HTTP/1.1 server: cidrun links statically, and a
// gateway response is a loop of disk reads and socket writes, which its blocking handlers on a
// bounded worker pool express directly).
#pragma once

#include <memory>
#include <string>

#include "store/blockstore.h"

namespace cidrun::gateway {

struct ServeOptions {
  std::string listen = "127.0.0.1:8080";  // HOST:PORT; port 0 picks a free one
  size_t threads = 64;                    // requests served at the same time
  bool quiet = false;                     // no per-request log lines
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

}  // namespace cidrun::gateway
