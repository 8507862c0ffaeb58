// `cidrun serve`: an IPFS Trustless Gateway over a block store.
// Spec: https://specs.ipfs.tech/http-gateways/trustless-gateway/
//
// HTTP comes from net::HttpServer (our own HTTP/1.1 server: cidrun links statically, and a
// gateway response is a loop of disk reads and socket writes, which its blocking handlers on a
// bounded worker pool express directly).
#pragma once

#include <memory>
#include <string>

#include "net/http_server.h"
#include "store/blockstore.h"

namespace cidrun::gateway {

class RoutingService;

class Server {
 public:
  // http: where and how to serve (listen address, threads, limits, TLS: net/http_server.h).
  // Unless quiet, each response is logged (the gateway sets http.on_response for that).
  // Throws Error when http cannot be used (e.g. a TLS certificate that does not load).
  Server(BlockStore& store, net::HttpServerOptions http, bool quiet = false);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Also answers /routing/v1/ with this service (set before run(); it must outlive the server).
  void set_routing(RoutingService* routing);

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
