// `run CID`: resolve the CID (a bare root filesystem or a bundle) to a checkout in the image
// cache, and hold a lease on it for as long as this process runs the container, so that
// `repo gc` never collects an image in use.
#include "cli/image_root.h"

#include <unistd.h>

#include <filesystem>
#include <functional>
#include <memory>
#include <thread>
#include <utility>

#include "cli/content_store.h"
#include "cli/lazy.h"
#include "cli/roots.h"
#include "fuse/holder.h"
#include "image/checkout.h"
#include "image/reader.h"
#include "store/lease.h"
#include "store/reachable.h"
#include "store/repo.h"
#include "store/repo_lock.h"
#include "unixfs/reader.h"
#include "util/error.h"
#include "util/log.h"

namespace cidrun::cli {

namespace {

std::unique_ptr<Repo> repo;
std::unique_ptr<Lease> lease;
std::function<void()> pending_finish;  // of a fresh checkout (image::Checkout::finish)
// Never destroyed: a process that exits while the step runs just ends it (each reference it
// makes is atomic), where destroying a running std::thread would abort the process.
std::thread* finisher = nullptr;
Cid leased_root;
// Blocks missing locally come from the configured sources (kubo daemon, gateways, peers).
std::unique_ptr<exchange::FetchingStore> fetching;
std::string lazy_state;  // the lazy mount this process uses
std::string lazy_ref;

// ROOT as a CID and a path below it; a ROOT that is none of run's forms is one error naming them.
std::pair<Cid, std::string> split_run_root(const Repo& r, const std::string& root) {
  try {
    return split_root(r, root);
  } catch (const Error&) {
    throw Error("ROOT '" + root + "' is neither a directory, an image name nor a CID");
  }
}

}  // namespace

std::string resolve_lazy_root(const Globals& g, const std::string& root, bool fill,
                              std::optional<nlohmann::json>& image_config,
                              const std::string& record, MountWhen when) {
  repo = Repo::open(repo_path(g));
  auto [cid, path] = split_run_root(*repo, root);
  if (!path.empty()) throw Error("a mounted root is a root, not a path below one");
  if (record.empty() && when == MountWhen::kIfMissing && !first_missing(repo->blocks(), cid))
    return "";
  lease = std::make_unique<Lease>(*repo, cid, ::getpid());
  LazyMountRequest req;
  req.root = cid;
  req.fill = fill;
  req.ref = "run-" + std::to_string(::getpid());
  req.ref_pid = ::getpid();
  req.record = record;
  LazyMount m = ensure_lazy_mount(g, req);
  lazy_state = m.state_dir;
  lazy_ref = req.ref;
  unixfs::Dag dag(content_store(*repo, fetching));
  if (image::load_image_root(dag, cid)) image_config = image::ImageReader(dag, cid).config();
  return m.mountpoint;
}

void release_lazy_root(bool stop) {
  if (lazy_state.empty()) return;
  fuse::drop_ref(lazy_state, lazy_ref);
  if (stop) {
    fuse::stop_holder(lazy_state, 10'000);
    std::error_code ec;
    std::filesystem::remove_all(lazy_state, ec);
  }
  lazy_state.clear();
}

std::string resolve_image_root(const Globals& g, const std::string& root, bool& is_bundle,
                               std::optional<nlohmann::json>& image_config) {
  repo = Repo::open(repo_path(g));
  auto [cid, path] = split_run_root(*repo, root);
  unixfs::Dag dag(content_store(*repo, fetching));
  if (!path.empty()) cid = dag.resolve(cid, path);
  // Shared with other runs, exclusive with `repo gc`: gc either finishes before the lease exists
  // or sees it, so it never removes the checkout (or blocks) between here and the container.
  RepoLock lock(*repo, RepoLock::Mode::kShared);
  lease = std::make_unique<Lease>(*repo, cid, ::getpid());
  leased_root = cid;
  image::Checkout c = image::checkout(*repo, dag, cid, image::Durability::kDeferred);
  pending_finish = std::move(c.finish);
  is_bundle = c.is_bundle;
  image_config = c.image_config;
  return c.dir;
}

void hand_image_root_to(pid_t pid) {
  if (!repo || !lease) return;
  Lease(*repo, leased_root, pid).detach();
}

namespace {

void run_finish(const std::function<void()>& step) {
  try {
    step();
  } catch (const std::exception& e) {
    // The blocks keep their own copies: costs disk, never content.
    log::warn(std::string("image cache: ") + e.what());
  }
}

}  // namespace

void finish_image_root_in_background() {
  if (!pending_finish || finisher != nullptr) return;
  finisher = new std::thread(run_finish, std::move(pending_finish));
  pending_finish = nullptr;
}

void finish_image_root() {
  if (finisher != nullptr && finisher->joinable()) finisher->join();
  if (pending_finish) {
    run_finish(pending_finish);
    pending_finish = nullptr;
  }
}

void release_image_root() {
  // Before the lease goes: the step writes references to the leased root's files.
  finish_image_root();
  lease.reset();
  fetching.reset();
  repo.reset();
}

}  // namespace cidrun::cli
