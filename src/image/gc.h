// `repo gc` for the image cache. A checkout stays while its root is pinned (it is the cache of an
// image the user keeps) or held by a live lease (a container runs from it); the others go, then
// every per-file cache entry no remaining checkout links to, then staging trees of dead
// checkouts. Runs under the exclusive RepoLock; `run` takes its lease and checks out under the
// shared lock, so a checkout is never removed between its lease and its use.
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

ImageGcResult collect_images(Repo& repo, bool wait = true);

}  // namespace cidrun::image
