// cidrun mount [--lazy] ROOT DIR / cidrun umount DIR: a root (image or UnixFS tree) as a
// read-only filesystem for other tools (e.g. `podman run --rootfs DIR:O`), served by the lazy
// FUSE server; and the two internal commands that make a mount live on: fuse-holder (owns the
// connection, fuse/holder.h) and fuse-server (answers the kernel, fuse/server.h).
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_set>

#include "cli/command.h"
#include "cli/lazy.h"
#include "cli/roots.h"
#include "exchange/fetcher.h"
#include "exchange/fetching_store.h"
#include "fuse/holder.h"
#include "fuse/lazy_tree.h"
#include "fuse/server.h"
#include "image/image.h"
#include "image/meta_pack.h"
#include "store/lease.h"
#include "store/repo.h"
#include "store/staged_store.h"
#include "unixfs/reader.h"
#include "util/error.h"
#include "util/fd.h"
#include "util/log.h"
#include "util/quote.h"

namespace cidrun::cli {
namespace {

struct MountFlags {
  std::string root;
  std::string dir;
  std::vector<std::string> from;
  bool lazy = false;
  bool no_fill = false;
  // internal commands
  std::string state;
  std::string mountpoint;
  std::string exe;
  std::string repo;
  bool keep = false;
  bool restart = false;
  std::string record;  // fuse-server: append each block read to this file (cidrun trace)
  int fd = -1;
  int ready_fd = -1;
};

int mount_cmd(const MountFlags& f, const Globals& g) {
  auto repo = Repo::open(repo_path(g));
  Cid root = resolve_root(*repo, f.root);
  if (!f.lazy) {
    // Not lazy: everything first, then the mount serves from the local store.
    auto sources = exchange::SourceSet::open(exchange::configured_sources(*repo, f.from));
    exchange::Fetcher fetcher(repo->blocks(), *sources);
    fetcher.fetch_dag(root);
    repo->blocks().sync();
  }
  LazyMountRequest req;
  req.root = root;
  req.sources = f.from;
  req.fill = !f.no_fill;
  req.mountpoint = f.dir;
  if (req.mountpoint.empty() || req.mountpoint[0] != '/') {
    char* cwd = ::getcwd(nullptr, 0);
    req.mountpoint = std::string(cwd ? cwd : ".") + "/" + f.dir;
    std::free(cwd);
  }
  LazyMount m = ensure_lazy_mount(g, req);
  std::printf("%s\n", m.mountpoint.c_str());
  return 0;
}

int umount_cmd(const MountFlags& f, const Globals& g) {
  std::string state = explicit_mount_state(g, f.dir);
  if (!fuse::holder_ready(state)) throw Error(quote(f.dir) + " is not a cidrun mount");
  fuse::stop_holder(state, 5000);
  if (fuse::is_fuse_mount(f.dir)) {
    throw Error(quote(f.dir) + " is still mounted (its holder did not stop)");
  }
  return 0;
}

int holder_cmd(const MountFlags& f) {
  fuse::HolderSpec spec;
  spec.state_dir = f.state;
  spec.mountpoint = f.mountpoint;
  spec.server_exe = f.exe;
  spec.keep = f.keep;
  spec.server_args = {"--root", f.root, "--repo", f.repo};
  for (const auto& s : f.from) {
    spec.server_args.insert(spec.server_args.end(), {"--from", s});
  }
  if (f.no_fill) spec.server_args.emplace_back("--no-fill");
  if (!f.record.empty()) spec.server_args.insert(spec.server_args.end(), {"--record", f.record});
  fuse::run_holder(spec, f.ready_fd);
}

std::atomic<bool> g_stop_requested{false};

// For `cidrun trace`: a store that notes every block read through it, the first time, as a
// line "CID SIZE" appended to a file (written at once: the server may be killed, not stopped).
class ReadRecorder : public ForwardingStore {
 public:
  ReadRecorder(BlockStore& inner, const std::string& path) : ForwardingStore(inner) {
    fd_ = UniqueFd(::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600));
    if (!fd_.valid()) throw_errno("open " + path);
  }
  std::optional<Bytes> get(const Cid& cid) override {
    auto b = inner_.get(cid);
    if (b) note(cid, b->size());
    return b;
  }
  std::optional<BlockFile> open_block_file(const Cid& cid) override {
    auto f = inner_.open_block_file(cid);
    if (f) note(cid, f->size);
    return f;
  }

 private:
  void note(const Cid& cid, uint64_t size) {
    if (cid.is_identity()) return;
    std::lock_guard l(mu_);
    if (!seen_.insert(std::string(as_string(cid.multihash()))).second) return;
    std::string line = cid.str() + " " + std::to_string(size) + "\n";
    (void)!::write(fd_.get(), line.data(), line.size());
  }
  UniqueFd fd_;
  std::mutex mu_;
  std::unordered_set<std::string> seen_;
};

void on_term(int) {
  g_stop_requested = true;
  fuse::stop_server();
}

// What a lazy start needs before the first request: for an image, all of its metadata and
// structure (one CAR), and the blocks a recorded start read (another), fetched side by side.
// They are staged: served from memory at once, written to the repository behind the scenes
// (thousands of small files, and a new repository's shard directories, cost seconds on a cold
// disk that the first request should not wait for). Metadata already here is read from its pack
// (image/meta_pack.h) for the same reason; without one, a pack is written once it is all here.
void prefetch(const Repo& repo, StagedStore& staged, exchange::SourceSet& sources, unixfs::Dag& dag,
              const Cid& root) {
  Bytes block = dag.block(root);
  auto img = image::parse_image_root(root, block);
  if (!img) return;
  bool packed = false;
  try {
    packed = image::read_meta_pack(repo, img->meta,
                                   [&](const Cid& c, ByteView data) { staged.hold(c, data); });
  } catch (const Error& e) {
    log::warn(e.what());
  }
  std::vector<Cid> wanted;
  if (!staged.has(img->meta)) wanted.push_back(img->meta);
  if (img->startset && !staged.has(*img->startset)) wanted.push_back(*img->startset);
  std::vector<std::thread> streams;
  streams.reserve(wanted.size());
  for (const auto& c : wanted) {
    streams.emplace_back([&staged, &sources, c] {
      try {
        sources.stream_car(c, exchange::DagScope::kAll,
                           [&staged](const Cid& cid, ByteView data) { staged.stage(cid, data); });
      } catch (const Error& e) {
        // What did not arrive is fetched on demand.
        log::warn("prefetch of " + c.str() + ": " + e.what());
      }
    });
  }
  for (auto& t : streams) t.join();
  if (!packed) {
    // From the staged blocks, or the repository's files for metadata that was here before: a
    // cold walk that the first request should not wait for. The thread may be cut short by the
    // server's exit; a pack is written whole or not at all.
    Cid meta = img->meta;
    std::thread([&repo, &staged, meta] {
      try {
        image::write_meta_pack(repo, staged, meta);
      } catch (const Error& e) {
        log::warn(std::string("writing a metadata pack: ") + e.what());
      }
    }).detach();
  }
}

int server_cmd(const MountFlags& f) {
  auto report = [&](const std::string& line) {
    if (f.ready_fd < 0) return;
    std::string l = line + "\n";
    (void)!::write(f.ready_fd, l.data(), l.size());
    ::close(f.ready_fd);
  };
  try {
    struct sigaction sa {};
    sa.sa_handler = on_term;
    ::sigaction(SIGTERM, &sa, nullptr);
    ::sigaction(SIGINT, &sa, nullptr);
    auto repo = Repo::open(f.repo);
    Cid root = Cid::parse(f.root);
    Lease lease(*repo, root, ::getpid());
    auto sources = exchange::SourceSet::open(exchange::configured_sources(*repo, f.from));
    StagedStore staged(repo->blocks());
    exchange::FetchingStore store(staged, sources);
    // The tree says what its reads will want next; expanding every fetched node would pull
    // whole files when a page of them is read.
    store.set_auto_read_ahead(false);
    std::optional<ReadRecorder> recorder;
    if (!f.record.empty()) recorder.emplace(store, f.record);
    unixfs::Dag dag(recorder ? static_cast<BlockStore&>(*recorder) : store);
    if (!f.restart) prefetch(*repo, staged, *sources, dag, root);
    fuse::LazyTree tree(dag, root, fuse::journal_writer(f.state));
    tree.set_prefetch([&store](const std::vector<Cid>& cids) { store.prefetch(cids); });
    if (f.restart) tree.replay(fuse::read_journal(f.state));
    if (!f.no_fill && !sources->empty()) {
      // The rest of the root, at low priority, so that it ends up an ordinary local one.
      std::thread([&staged, &store, sources, root] {
        // The start first: the fill begins once reads have gone quiet for a moment (no new
        // fetch for 500 ms), or after 2 s at the latest, so it does not slow a container's
        // first output.
        uint64_t seen = store.fetches_started();
        for (int quiet = 0, waited = 0; quiet < 5 && waited < 20; ++waited) {
          std::this_thread::sleep_for(std::chrono::milliseconds(100));
          uint64_t now = store.fetches_started();
          quiet = now == seen ? quiet + 1 : 0;
          seen = now;
        }
        try {
          exchange::FetchOptions o;
          // Half a pull's requests, as many CAR streams: the link stays full, so reading
          // everything after a lazy start takes about a pull's time (measured: 30.8 s for all
          // of a Debian /usr where the pull takes 35.3 s, 20 Mbit/s), while a read's own fetch
          // still finds a connection.
          o.parallel = 16;
          o.car_streams = 4;
          exchange::Fetcher fill(staged, *sources, o);
          fill.fetch_dag(root);
          staged.sync();
          log::info("background fill of " + root.str() + " complete");
        } catch (const Error& e) {
          log::warn("background fill of " + root.str() + " stopped: " + e.what());
        }
      }).detach();
    }
    fuse::ServerOptions o;
    o.fuse_fd = f.fd;
    o.state_dir = f.state;
    o.restart = f.restart;
    o.on_ready = [&] { report("ok"); };
    int rc = fuse::serve(tree, o);
    try {
      staged.flush();  // what the start fetched stays in the repository
    } catch (const Error& e) {
      log::warn(std::string("writing fetched blocks: ") + e.what());
    }
    std::fflush(nullptr);
    // Threads (the fill, read-ahead) may still run: leave without waiting for them.
    ::_exit(g_stop_requested ? 3 : rc);
  } catch (const std::exception& e) {
    report(std::string("error: ") + e.what());
    throw;
  }
}

const Registrar reg("mount", [](Command& app, Globals& g) {
  auto f = std::make_shared<MountFlags>();
  auto m = app.add_subcommand("mount", "Mount ROOT (image or tree) read-only at DIR");
  m.add_flag("--lazy", f->lazy, "Mount at once; blocks come from the sources as they are read");
  m.add_option("--from", f->from, "Also fetch from this source (repeatable)").one_value_each();
  m.add_flag("--no-fill", f->no_fill, "With --lazy: do not fetch the rest in the background");
  m.add_option("root", f->root, "Image name or CID").required();
  m.add_option("dir", f->dir, "Mount point (an existing directory)").required();
  m.callback([f, &g] { g.exit_code = mount_cmd(*f, g); });

  auto u = app.add_subcommand("umount", "Unmount a cidrun mount (it goes once its users do)");
  u.add_option("dir", f->dir, "Mount point").required();
  u.callback([f, &g] { g.exit_code = umount_cmd(*f, g); });

  auto h = app.add_subcommand("fuse-holder", "internal: owns a lazy mount").hidden();
  h.add_option("--state", f->state, "").required();
  h.add_option("--mountpoint", f->mountpoint, "").required();
  h.add_option("--exe", f->exe, "").required();
  h.add_flag("--keep", f->keep, "");
  h.add_option("--root", f->root, "").required();
  h.add_option("--repo", f->repo, "").required();
  h.add_option("--from", f->from, "").one_value_each();
  h.add_flag("--no-fill", f->no_fill, "");
  h.add_option("--record", f->record, "");
  h.add_option("--ready-fd", f->ready_fd, "");
  h.callback([f, &g] { g.exit_code = holder_cmd(*f); });

  auto s = app.add_subcommand("fuse-server", "internal: serves a lazy mount").hidden();
  s.add_option("--state", f->state, "").required();
  s.add_option("--root", f->root, "").required();
  s.add_option("--repo", f->repo, "").required();
  s.add_option("--from", f->from, "").one_value_each();
  s.add_flag("--no-fill", f->no_fill, "");
  s.add_option("--record", f->record, "");
  s.add_option("--fd", f->fd, "").required();
  s.add_option("--ready-fd", f->ready_fd, "");
  s.add_flag("--restart", f->restart, "");
  s.callback([f] { server_cmd(*f); });
});

}  // namespace
}  // namespace cidrun::cli
