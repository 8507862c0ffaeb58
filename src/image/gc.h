// `repo gc` for the image cache. A checkout stays while its root is pinned (it is the cache of an
// image the user keeps) or held by a live lease (a container runs from it); the others go, and
// staging trees of dead checkouts; after the blocks' gc, every per-file cache entry that no
// remaining checkout links to and no block reference names. Runs under the exclusive RepoLock;
// `run` takes its lease and checks out under the shared lock, so a checkout is never removed
// between its lease and its use.
#pragma once

#include <cstdint>

#include "image/file_cache.h"

namespace cidrun {
class Repo;
}

namespace cidrun::image {

struct ImageGcResult {
  uint64_t checkouts_removed = 0;
  uint64_t checkouts_kept = 0;
  uint64_t staging_removed = 0;
  FileCacheSweep files;
};

// Removes the checkouts that are neither pinned nor leased, and staging trees of dead checkouts.
ImageGcResult collect_images(Repo& repo, bool wait = true);

// Then, once the block store's own gc has run (it removes the references of blocks nothing
// needs): the per-file cache entries that no checkout links and no block reference names.
FileCacheSweep sweep_image_files(Repo& repo);

}  // namespace cidrun::image
