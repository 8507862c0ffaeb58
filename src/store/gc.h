// `repo gc`: removes every block that no pin and no live lease can reach. Recursive pins keep
// their whole DAG, direct pins the one block, live leases whatever of their DAG is present.
// Runs under the exclusive RepoLock, so no add or import can be between writing blocks and
// pinning them. A recursive pin whose DAG has a hole (or an undecodable node) stops gc before
// anything is removed: below the hole we cannot know what the pin needs.
#pragma once

#include <cstdint>
#include <functional>

#include "multiformats/cid.h"

namespace cidrun {

class Repo;

struct GcResult {
  uint64_t blocks_removed = 0;
  uint64_t bytes_removed = 0;
  uint64_t blocks_kept = 0;
  size_t stale_leases_removed = 0;
  size_t staging_areas_removed = 0;
};

// on_removed is called for each removed block (kubo prints "removed <cid>"). wait=false fails
// at once when another process holds the repo lock.
GcResult collect_garbage(Repo& repo, const std::function<void(const Cid&)>& on_removed,
                         bool wait = true);

}  // namespace cidrun
