#include "store/gc.h"

#include "store/lease.h"
#include "store/reachable.h"
#include "store/repo.h"
#include "store/repo_lock.h"
#include "store/staging.h"
#include "util/error.h"
#include "util/log.h"

namespace cidrun {

GcResult collect_garbage(Repo& repo, const std::function<void(const Cid&)>& on_removed, bool wait) {
  RepoLock lock(repo, RepoLock::Mode::kExclusive, wait);
  GcResult result;
  FlatfsStore& store = repo.blocks();

  // Mark: the multihashes (store keys) that must stay.
  KeySet keep;
  KeySet seen;
  auto mark = [&](const Cid& cid, ByteView) {
    auto mh = cid.multihash();
    keep.emplace(mh.begin(), mh.end());
    return true;
  };
  // Not a structured binding: the lambda below captures the root, which clang before 16 (and
  // so clang-tidy) refuses for bindings.
  for (const auto& pin : repo.pins()) {
    const Cid& root = pin.first;
    if (pin.second == PinType::kDirect) {
      mark(root, {});
      continue;
    }
    walk_reachable(store, root, seen, IfMissing::kThrow, mark, [&](const Cid& missing) {
      throw Error("pinned DAG " + root.str() + " is incomplete (block " + missing.str() +
                  " is missing); nothing removed. Re-fetch it or unpin it first");
    });
  }
  // Image names keep their images as recursive pins do.
  for (const auto& named : repo.names()) {
    const Cid& root = named.second;
    const std::string& name = named.first;
    walk_reachable(store, root, seen, IfMissing::kThrow, mark, [&](const Cid& missing) {
      throw Error("image " + name + " (" + root.str() + ") is incomplete (block " + missing.str() +
                  " is missing); nothing removed. Re-fetch it or remove the name");
    });
  }
  result.stale_leases_removed = Lease::remove_stale(repo);
  for (const auto& lease : Lease::list(repo)) {
    if (!lease.live) continue;
    // A lease may cover a DAG that is still being fetched (lazy runs): keep what is here.
    walk_reachable(store, lease.root, seen, IfMissing::kSkip, mark);
  }

  // Sweep. Keys are collected first so the directory scan never races our own unlinks.
  std::vector<Bytes> doomed;
  store.for_each([&](ByteView mh) {
    Bytes key(mh.begin(), mh.end());
    if (keep.count(key)) {
      ++result.blocks_kept;
    } else {
      doomed.push_back(std::move(key));
    }
  });
  for (const auto& mh : doomed) {
    Cid cid;
    try {
      cid = cid_of_multihash(mh);
    } catch (const Error& e) {
      log::warn("repo gc: skipping " + std::string(e.what()));
      continue;
    }
    uint64_t size = store.size(cid).value_or(0);
    if (store.remove(cid)) {
      ++result.blocks_removed;
      result.bytes_removed += size;
      if (on_removed) on_removed(cid);
    }
  }
  result.staging_areas_removed = StagingArea::remove_stale(repo);
  store.sync();
  return result;
}

}  // namespace cidrun
