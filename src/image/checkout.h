// The image cache: a CID's tree checked out once under <repo>/images/<cid>, shared read-only by
// every container started from it (each container writes to its own overlay upper layer). The
// files of a checkout are hard links into the per-file cache (file_cache.h) where the filesystem
// allows, so images that share files share their inodes.
#pragma once

#include <functional>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "store/repo.h"
#include "unixfs/reader.h"

namespace cidrun::image {

struct Checkout {
  std::string dir;         // the checked-out tree
  bool is_bundle = false;  // dir holds {rootfs/, config.json} rather than a bare root filesystem
  bool fresh = false;      // this call wrote it (false: it was in the cache)
  // The root was an image (docs/IMAGE-FORMAT.md): its OCI config, and dir is its root
  // filesystem with owners, xattrs, devices and hard links as the image says.
  std::optional<nlohmann::json> image_config;
  // With Durability::kDeferred and a fresh checkout: the step that waits until its files are on
  // disk and then lets the block store hold their leaves as references to them
  // (FileCache::finish). The caller runs it once, on any thread, while nothing else uses the
  // repository's block store object concurrently in a conflicting way (put_ref is safe beside
  // reads). Empty when there is nothing to do.
  std::function<void()> finish;
};

// When a fresh checkout waits for its files to reach the disk before the block store drops its
// own copies: before checkout() returns, or in Checkout::finish (`run` calls it once the
// container runs, so that its start never waits for the disk).
enum class Durability { kBeforeReturn, kDeferred };

// Returns the checkout of root (a UnixFS tree or an image), writing it first when absent. The tree
// is written into a private staging directory and renamed into place whole, so a crash or a hostile
// DAG never leaves a half-written image under the real name, and concurrent callers (racing runs of
// one CID) both end up with one complete copy.
Checkout checkout(Repo& repo, unixfs::Dag& dag, const Cid& root,
                  Durability durability = Durability::kBeforeReturn);

// The cache directory name of a CID: its CIDv1 text, so Qm... and bafy... of one DAG share it.
std::string cache_name(const Cid& root);

}  // namespace cidrun::image
