// Pin rules on top of Repo's pin files: pinning checks that the DAG is complete locally (kubo's
// offline pin semantics), a recursive pin replaces a direct one, and lookups tell whether a
// block is held by a pin (for `block rm` and `pin ls --type=indirect`).
#pragma once

#include <functional>
#include <optional>

#include "store/repo.h"

namespace cidrun {

// Pins cid. Recursive: throws Error naming the first block of the DAG that is not in the store.
// Direct: the block itself must be present. Pinning directly what is pinned recursively is an
// error (as in kubo); pinning recursively what is pinned directly upgrades the pin.
void pin_checked(Repo& repo, const Cid& cid, PinType type);

// Removes the pin of cid (recursive first, else direct); throws Error when cid is not pinned.
PinType unpin_checked(Repo& repo, const Cid& cid);

struct PinHolder {
  Cid root;
  PinType type;
  bool indirect = false;  // held because it lies below root, not because root == the block
};
// The pin that keeps this block (same multihash), if any.
std::optional<PinHolder> find_pin_holding(Repo& repo, const Cid& block);

// Calls fn for every block below a recursive pin (the pin roots themselves excluded), once.
void for_each_indirect(Repo& repo, const std::function<void(const Cid&)>& fn);

}  // namespace cidrun
