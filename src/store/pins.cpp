#include "store/pins.h"

#include <algorithm>

#include "store/reachable.h"
#include "util/error.h"

namespace cidrun {
namespace {

bool same_block(const Cid& a, const Cid& b) {
  auto x = a.multihash();
  auto y = b.multihash();
  return std::equal(x.begin(), x.end(), y.begin(), y.end());
}

bool has_pin(Repo& repo, const Cid& cid, PinType type) {
  for (const auto& [c, t] : repo.pins()) {
    if (t == type && c == cid) return true;
  }
  return false;
}

}  // namespace

void pin_checked(Repo& repo, const Cid& cid, PinType type) {
  if (type == PinType::kDirect) {
    if (has_pin(repo, cid, PinType::kRecursive)) {
      throw Error(cid.str() + " is already pinned recursively");
    }
    if (!repo.blocks().has(cid))
      throw Error("cannot pin " + cid.str() + ": block not in the local store");
    repo.pin(cid, PinType::kDirect);
    return;
  }
  if (auto missing = first_missing(repo.blocks(), cid)) {
    throw Error("cannot pin " + cid.str() + ": the DAG is incomplete, block " + missing->str() +
                " is not in the local store");
  }
  repo.pin(cid, PinType::kRecursive);
  repo.unpin(cid, PinType::kDirect);
}

PinType unpin_checked(Repo& repo, const Cid& cid) {
  if (repo.unpin(cid, PinType::kRecursive)) return PinType::kRecursive;
  if (repo.unpin(cid, PinType::kDirect)) return PinType::kDirect;
  throw Error(cid.str() + " is not pinned");
}

std::optional<PinHolder> find_pin_holding(Repo& repo, const Cid& block) {
  auto pins = repo.pins();
  for (const auto& [root, type] : pins) {
    if (same_block(root, block)) return PinHolder{root, type, false};
  }
  KeySet seen;
  for (const auto& [root, type] : pins) {
    if (type != PinType::kRecursive) continue;
    bool found = false;
    try {
      // Once found, nothing more is descended into: the walk winds down.
      walk_reachable(repo.blocks(), root, seen, IfMissing::kSkip, [&](const Cid& c, ByteView) {
        if (same_block(c, block)) found = true;
        return !found;
      });
    } catch (const Error&) {
      // An undecodable node stops this walk; the caller still sees the other pins.
    }
    if (found) return PinHolder{root, type, true};
  }
  return std::nullopt;
}

void for_each_indirect(Repo& repo, const std::function<void(const Cid&)>& fn) {
  KeySet seen;
  auto pins = repo.pins();
  for (const auto& pin : pins) {
    // Not a structured binding: clang before 16 (and so clang-tidy) cannot capture one.
    const Cid& root = pin.first;
    if (pin.second != PinType::kRecursive) continue;
    walk_reachable(repo.blocks(), root, seen, IfMissing::kSkip, [&](const Cid& c, ByteView) {
      if (!(c == root)) fn(c);
      return true;
    });
  }
}

}  // namespace cidrun
