// cidrun serve: a Trustless Gateway over the repo's block store (raw blocks and CAR streams).
// Binds 127.0.0.1 unless told otherwise: serving content to a network is an explicit choice.
#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>

#include <malloc.h>

#include <cstdio>
#include <thread>

#include "cli/command.h"
#include "exchange/fetching_store.h"
#include "gateway/server.h"
#include "net/http_server.h"
#include "store/repo.h"
#include "util/error.h"

namespace cidrun::cli {
namespace {

struct ServeFlags {
  net::HttpServerOptions http;
  std::vector<std::string> from;
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

  // SIGINT/SIGTERM end the server cleanly: they are blocked in every thread and taken by one.
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);
  int port = server.bind();
  std::string host = net::parse_listen(f.http.listen).first;
  if (host.find(':') != std::string::npos) host = "[" + host + "]";
  const char* scheme = f.http.tls_cert.empty() ? "http" : "https";
  std::printf("{\"gateway\":\"%s://%s:%d\"}\n", scheme, host.c_str(), port);
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
  return 0;
}

const Registrar reg("serve", [](Command& app, Globals& g) {
  auto f = std::make_shared<ServeFlags>();
  auto cmd = app.add_subcommand("serve", "Serve the block store as an IPFS Trustless Gateway");
  cmd.add_option("--listen", f->http.listen,
                 "HOST:PORT to listen on (default 127.0.0.1:8080; port 0 = any)");
  cmd.add_option("--threads", f->http.threads, "Concurrent requests served (default 64)");
  cmd.add_option("--tls-cert", f->http.tls_cert,
                 "Serve https with this PEM certificate chain (leaf first; needs --tls-key)");
  cmd.add_option("--tls-key", f->http.tls_key, "The PEM private key of --tls-cert");
  cmd.add_option("--from", f->from, "Fetch missing blocks from these sources (recursive gateway)");
  cmd.add_flag("-q,--quiet", f->quiet, "Do not log each request");
  cmd.callback([f, &g] { g.exit_code = run_serve(*f, g); });
});

}  // namespace
}  // namespace cidrun::cli
