// cidrun pull: fetch a whole DAG into the block store from the configured sources (and --from),
// verifying every block, and pin its root.
#include <malloc.h>

#include <cstdio>

#include "cli/command.h"
#include "exchange/fetcher.h"
#include "exchange/fetching_store.h"
#include "image/meta_pack.h"
#include "store/repo.h"
#include "store/repo_lock.h"
#include "util/error.h"
#include "util/progress.h"
#include "util/units.h"

namespace cidrun::cli {
namespace {

struct PullFlags {
  std::string cid;
  std::vector<std::string> from;
  size_t parallel = 32;
  bool json = false;
  bool quiet = false;
  bool no_car = false;
  bool pin = true;
};

int run_pull(const PullFlags& f, const Globals& g) {
  // Blocks are up to 2 MiB and every one is a fresh buffer: with glibc's defaults each is an
  // mmap + page faults + zeroing + munmap (measured: most of serve's CPU). Keep them on the heap.
  ::mallopt(M_MMAP_THRESHOLD, 8 << 20);
  ::mallopt(M_TRIM_THRESHOLD, 256 << 20);
  Cid root = Cid::parse(f.cid);
  auto repo = Repo::open(repo_path(g));
  // Shared with other writers, exclusive against `repo gc`, until the root is pinned.
  RepoLock lock(*repo, RepoLock::Mode::kShared);
  auto sources = exchange::SourceSet::open(exchange::configured_sources(*repo, f.from));
  if (sources->empty()) {
    throw Error("no block sources: give --from URL, set CIDRUN_SOURCES, or list \"sources\" in " +
                repo->path() + "/config.json");
  }
  using Mode = exchange::FetchProgress::Mode;
  Mode mode = f.json                                    ? Mode::kJson
              : (!f.quiet && Progress::stderr_is_tty()) ? Mode::kTerminal
                                                        : Mode::kNone;
  exchange::FetchProgress progress("pulling", mode);
  exchange::Fetcher fetcher(repo->blocks(), *sources,
                            {.parallel = f.parallel, .use_car = !f.no_car, .progress = &progress});
  exchange::FetchResult r = fetcher.fetch_dag(root);
  repo->blocks().sync();
  image::write_image_pack(*repo, repo->blocks(), root);
  if (f.pin) repo->pin(root, PinType::kRecursive);
  progress.finish();
  if (!f.json && !f.quiet) {
    double secs = progress.seconds();
    std::printf("pulled %s: %llu blocks, %llu fetched (%s) in %.2fs\n", root.str().c_str(),
                static_cast<unsigned long long>(r.blocks),
                static_cast<unsigned long long>(r.fetched_blocks),
                format_bytes(static_cast<double>(r.fetched_bytes)).c_str(), secs);
  }
  return 0;
}

const Registrar reg("pull", [](Command& app, Globals& g) {
  auto f = std::make_shared<PullFlags>();
  auto cmd = app.add_subcommand("pull", "Fetch a whole DAG into the block store and pin it");
  cmd.add_option("cid", f->cid, "Root CID").required();
  cmd.add_option("--from", f->from,
                 "Block source URL (repeatable, used together): kubo+http://HOST:PORT, "
                 "http(s)://GATEWAY, /ip4/H/tcp/P/p2p/PEER (bitswap), routing+http://ROUTER, "
                 "car:PATH, flatfs:DIR, kubo");
  cmd.add_option("-j,--parallel", f->parallel, "Block requests in flight (default 32)");
  cmd.add_flag("--json", f->json, "Print progress as JSON lines on stdout");
  cmd.add_flag("-q,--quiet", f->quiet, "No progress bar and no summary");
  cmd.add_flag("--no-car", f->no_car, "Fetch block by block only (no CAR stream)");
  cmd.add_flag("--pin,!--no-pin", f->pin, "Pin the root (default)");
  cmd.callback([f, &g] { g.exit_code = run_pull(*f, g); });
});

}  // namespace
}  // namespace cidrun::cli
