#include "image/checkout.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <memory>

#include "image/file_cache.h"
#include "image/reader.h"
#include "image/unpack.h"
#include "store/flatfs.h"
#include "store/repo.h"
#include "store/staging.h"
#include "unixfs/exporter.h"
#include "util/error.h"
#include "util/fd.h"
#include "util/log.h"
#include "util/random.h"

namespace cidrun::image {
namespace {

bool is_dir(const std::string& p) {
  struct stat st {};
  return ::lstat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

bool is_file(const std::string& p) {
  struct stat st {};
  return ::lstat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

Checkout describe(const std::string& dir, bool fresh) {
  Checkout c;
  c.dir = dir;
  c.fresh = fresh;
  c.is_bundle = is_file(dir + "/config.json") && is_dir(dir + "/rootfs");
  return c;
}

void remove_dir(const std::string& path) {
  UniqueFd parent(::open((path + "/..").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!parent.valid()) return;
  auto slash = path.rfind('/');
  remove_tree(parent.get(), path.substr(slash + 1), /*make_writable=*/true);
}

void log_checkout(const Cid& root, uint64_t files, uint64_t linked, const FileCache::Stats& s) {
  log::debug(
      "checkout of " + root.str() + ": " + std::to_string(files) + " files, " +
      std::to_string(linked) + " linked from the file cache, " + std::to_string(s.blocks_claimed) +
      " made of their block's inode; " + std::to_string(s.leaves_referenced) + " leaves (" +
      std::to_string(s.bytes_referenced) + " bytes) now held by the block store as " +
      "references to cached files, in " +
      std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(s.finish_time).count()) +
      " ms");
}

// The per-file cache of a checkout. A deferred finish may outlive everything of the caller's
// (it runs on another thread, possibly while the process exits), so the cache then has a block
// store object of its own over the same directory.
struct CacheOf {
  std::shared_ptr<FlatfsStore> own_store;
  std::shared_ptr<FileCache> cache;
};
CacheOf make_cache(const std::string& images, Repo& repo, Durability durability) {
  CacheOf c;
  BlockStore* store = &repo.blocks();
  if (durability == Durability::kDeferred) {
    c.own_store = std::make_shared<FlatfsStore>(repo.blocks().dir(), /*create=*/false);
    store = c.own_store.get();
  }
  c.cache = std::make_shared<FileCache>(images + "/files", store);
  return c;
}

// Runs the cache's finish now, or hands it to the caller in c.finish.
void finish_or_defer(Checkout& c, const CacheOf& files, const Cid& root, uint64_t count,
                     uint64_t linked, Durability durability) {
  auto step = [files, root, count, linked] {
    files.cache->finish();
    log_checkout(root, count, linked, files.cache->stats());
  };
  if (durability == Durability::kDeferred) {
    c.finish = step;
  } else {
    step();
  }
}

// An image: unpacked with everything it holds (image/unpack.h), its files shared through the
// per-file cache like those of a tree. Without root, owners are the caller's (a rootless
// container maps them to its root) and device nodes are left out.
Checkout checkout_image(const std::string& images, const std::string& target, ImageReader& image,
                        Repo& repo, Durability durability) {
  std::string staging =
      images + "/.staging-" + std::to_string(::getpid()) + "-" + std::to_string(random_u64());
  make_dirs(staging, 0700);
  CacheOf files = make_cache(images, repo, durability);
  UnpackStats stats;
  try {
    UnpackOptions opts;
    opts.linker = files.cache.get();
    opts.ownership = ::geteuid() == 0 ? Ownership::kKeep : Ownership::kAsCaller;
    stats = unpack_image(image, staging + "/tree", opts);
    if (::rename((staging + "/tree").c_str(), target.c_str()) != 0) {
      if (errno != EEXIST && errno != ENOTEMPTY) throw_errno("rename checkout into " + target);
      log::debug("checkout of " + image.cid().str() + " raced another one; using the first");
    }
  } catch (...) {
    remove_dir(staging);
    throw;
  }
  remove_dir(staging);
  Checkout c = describe(target, true);
  c.is_bundle = false;
  c.image_config = image.config();
  finish_or_defer(c, files, image.cid(), stats.files, stats.files_linked, durability);
  return c;
}

}  // namespace

std::string cache_name(const Cid& root) {
  return root.to_v1().str();
}

Checkout checkout(Repo& repo, unixfs::Dag& dag, const Cid& root, Durability durability) {
  std::string images = repo.dir("images");
  make_dirs(images, 0700);
  std::string target = images + "/" + cache_name(root);
  std::optional<ImageReader> image;
  if (load_image_root(dag, root)) image.emplace(dag, root);
  if (is_dir(target)) {
    Checkout c = describe(target, false);
    if (image) {
      c.is_bundle = false;
      c.image_config = image->config();
    }
    return c;
  }
  if (image) return checkout_image(images, target, *image, repo, durability);

  unixfs::NodeStat st = dag.stat(root);
  if (st.kind != unixfs::NodeKind::kDirectory) {
    throw Error(root.str() + " is not a directory: a root filesystem or bundle must be one");
  }
  std::string staging =
      images + "/.staging-" + std::to_string(::getpid()) + "-" + std::to_string(random_u64());
  make_dirs(staging, 0700);
  CacheOf files = make_cache(images, repo, durability);
  unixfs::ExportStats stats;
  try {
    unixfs::ExportOptions opts;
    opts.guess_executables = true;
    opts.linker = files.cache.get();
    stats = unixfs::export_tree(dag, root, staging + "/tree", cache_name(root), opts);
    // The staged tree's own mode came from the DAG; the cache entry is renamed into place whole.
    if (::rename((staging + "/tree").c_str(), target.c_str()) != 0) {
      if (errno != EEXIST && errno != ENOTEMPTY) throw_errno("rename checkout into " + target);
      log::debug("checkout of " + root.str() + " raced another one; using the first");
    }
  } catch (...) {
    remove_dir(staging);
    throw;
  }
  remove_dir(staging);
  Checkout c = describe(target, true);
  finish_or_defer(c, files, root, stats.files, stats.files_linked, durability);
  return c;
}

}  // namespace cidrun::image
