// cidrun serve: a Trustless Gateway over the repo's block store (raw blocks and CAR streams).
// Binds 127.0.0.1 unless told otherwise: serving content to a network is an explicit choice.
#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>

#include <malloc.h>

#include <cstdio>
#include <thread>

#include "cli/command.h"
#include "exchange/bitswap.h"
#include "exchange/fetching_store.h"
#include "gateway/routing.h"
#include "gateway/server.h"
#include "net/http_server.h"
#include "p2p/host.h"
#include "store/repo.h"
#include "util/error.h"

namespace cidrun::cli {
namespace {

struct ServeFlags {
  net::HttpServerOptions http;
  std::vector<std::string> from;
  std::string p2p_listen;
  std::vector<std::string> routing_peers;
  bool quiet = false;
};

int run_serve(const ServeFlags& f, const Globals& g) {
  // Blocks are up to 2 MiB and every one is a fresh buffer: with glibc's defaults each is an
  // mmap + page faults + zeroing + munmap (measured: most of serve's CPU). Keep them on the heap.
  ::mallopt(M_MMAP_THRESHOLD, 8 << 20);
  ::mallopt(M_TRIM_THRESHOLD, 256 << 20);
  // Every client connection is a descriptor: take the whole hard limit (the soft one is often
  // 1024).
  rlimit nofile{};
  if (::getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
    nofile.rlim_cur = nofile.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &nofile);
  }
  // Both TLS files or neither, checked before anything else is opened.
  if (f.http.tls_cert.empty() != f.http.tls_key.empty()) {
    throw Error(f.http.tls_cert.empty() ? "--tls-key needs --tls-cert"
                                        : "--tls-cert needs --tls-key");
  }
  auto repo = Repo::open(repo_path(g));
  // With --from the gateway is recursive: blocks it lacks are fetched (and verified) first.
  std::unique_ptr<BlockStore> fetching;
  BlockStore* store = &repo->blocks();
  if (!f.from.empty()) {
    fetching = std::make_unique<exchange::FetchingStore>(repo->blocks(),
                                                         exchange::SourceSet::open(f.from));
    store = fetching.get();
  }
  // Loads the TLS certificate and key (a bad one is an error here, before anything listens).
  gateway::Server server(*store, f.http, f.quiet);
  // Bitswap over libp2p beside the gateway, under the repo's persistent peer identity.
  std::unique_ptr<p2p::Host> host;
  std::unique_ptr<exchange::BitswapNode> bitswap;
  std::string p2p_addr;
  if (!f.p2p_listen.empty()) {
    p2p::Multiaddr listen = p2p::Multiaddr::parse(f.p2p_listen);
    if (listen.peer)
      throw Error("--p2p-listen takes an address without /p2p (" + f.p2p_listen + ")");
    p2p::HostOptions opts;
    opts.agent_version = std::string("cidrun/") + CIDRUN_VERSION;
    host =
        std::make_unique<p2p::Host>(p2p::load_or_create_identity(repo->path() + "/peer.key"), opts);
    bitswap = std::make_unique<exchange::BitswapNode>(*host, store);
    p2p_addr = host->listen(listen).str();
  }
  // /routing/v1/providers: this node for what it holds, and the configured peers for anything.
  gateway::RoutingService routing(*store);
  for (const auto& peer : f.routing_peers) {
    p2p::Multiaddr m = p2p::Multiaddr::parse(peer);
    if (!m.peer || !m.has_tcp)
      throw Error("--routing-peer needs /ip4|ip6|dns*/HOST/tcp/PORT/p2p/ID, not " + peer);
    std::string id = m.peer->str();
    m.peer.reset();
    routing.add_peer({id, {m.str()}, {std::string(exchange::routing::kTransportBitswap)}});
  }
  server.set_routing(&routing);

  // SIGINT/SIGTERM end the server cleanly: they are blocked in every thread and taken by one.
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);
  int port = server.bind();
  {
    exchange::routing::Provider self;
    self.id = host ? host->id().str()
                   : p2p::PeerId::from_public_key(
                         p2p::load_or_create_identity(repo->path() + "/peer.key").public_key)
                         .str();
    if (host) {
      p2p::Multiaddr m = p2p::Multiaddr::parse(p2p_addr);
      m.peer.reset();
      self.addrs.push_back(m.str());
      self.protocols.emplace_back(exchange::routing::kTransportBitswap);
    }
    std::string gw = net::parse_listen(f.http.listen).first;
    p2p::Multiaddr http;
    (gw.find(':') != std::string::npos ? http.ip6 : http.ip4) = gw;
    http.has_tcp = true;
    http.port = static_cast<uint16_t>(port);
    self.addrs.push_back(http.str() + (f.http.tls_cert.empty() ? "/http" : "/https"));
    self.protocols.emplace_back(exchange::routing::kTransportGateway);
    routing.set_self(self);
  }
  std::string gw_host = net::parse_listen(f.http.listen).first;
  if (gw_host.find(':') != std::string::npos) gw_host = "[" + gw_host + "]";
  const char* scheme = f.http.tls_cert.empty() ? "http" : "https";
  std::string p2p_json;
  if (host) p2p_json = ",\"p2p\":\"" + p2p_addr + "\",\"peer_id\":\"" + host->id().str() + "\"";
  std::printf("{\"gateway\":\"%s://%s:%d\"%s}\n", scheme, gw_host.c_str(), port, p2p_json.c_str());
  std::fflush(stdout);
  std::thread waiter([&] {
    int sig = 0;
    sigwait(&sigs, &sig);
    server.stop();
  });
  server.run();
  // run() also returns if the listener failed; wake the waiter so it can be joined. SIGTERM is
  // blocked in every thread and the waiter takes it with sigwait: this wakes the thread, it
  // cannot terminate it (what bugprone-bad-signal-to-kill-thread guards against).
  pthread_kill(waiter.native_handle(), SIGTERM);  // NOLINT(bugprone-bad-signal-to-kill-thread)
  waiter.join();
  bitswap.reset();
  if (host) host->stop();
  return 0;
}

const Registrar reg("serve", [](Command& app, Globals& g) {
  auto f = std::make_shared<ServeFlags>();
  auto cmd = app.add_subcommand(
      "serve", "Serve the block store as an IPFS Trustless Gateway (and a bitswap peer)");
  cmd.add_option("--listen", f->http.listen,
                 "HOST:PORT to listen on (default 127.0.0.1:8080; port 0 = any)");
  cmd.add_option("--threads", f->http.threads, "Concurrent requests served (default 64)");
  cmd.add_option("--tls-cert", f->http.tls_cert,
                 "Serve https with this PEM certificate chain (leaf first; needs --tls-key)");
  cmd.add_option("--tls-key", f->http.tls_key, "The PEM private key of --tls-cert");
  cmd.add_option("--from", f->from, "Fetch missing blocks from these sources (recursive gateway)");
  cmd.add_option("--routing-peer", f->routing_peers,
                 "Name this peer (/ip4/H/tcp/P/p2p/ID) as a provider of every CID on "
                 "/routing/v1/providers (repeatable)");
  cmd.add_option("--p2p-listen", f->p2p_listen,
                 "Also serve bitswap over libp2p on this multiaddr (e.g. /ip4/127.0.0.1/tcp/4001)");
  cmd.add_flag("-q,--quiet", f->quiet, "Do not log each request");
  cmd.callback([f, &g] { g.exit_code = run_serve(*f, g); });
});

}  // namespace
}  // namespace cidrun::cli
