// A staging area for all-or-nothing imports (dag import, pulls): blocks are verified and written
// to <repo>/tmp/stage-<pid>-<random>/ (a flatfs store on the same filesystem) and only moved into
// the repo's store by commit(), each with one atomic rename. Dropping the area without commit
// removes it; an area left by a killed process is removed by `repo gc` once its pid is gone.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "store/flatfs.h"

namespace cidrun {

class Repo;

class StagingArea {
 public:
  explicit StagingArea(Repo& repo);
  ~StagingArea();
  StagingArea(const StagingArea&) = delete;
  StagingArea& operator=(const StagingArea&) = delete;

  BlockStore& store() { return *store_; }
  // Moves every staged block into the repo's store and makes them durable; returns the count.
  uint64_t commit();
  // The same for the blocks reachable from root only; the rest (content an import wrote and a
  // later layer deleted) is dropped with the area.
  uint64_t commit_reachable(const Cid& root);

  // Removes staging areas whose owning process is gone; returns how many.
  static size_t remove_stale(const Repo& repo);

 private:
  uint64_t move_in(const std::vector<Bytes>& keys);

  Repo& repo_;
  std::string dir_;
  std::unique_ptr<FlatfsStore> store_;
};

// rm -rf of dir/name, fd-relative and never following symlinks. Missing is fine. With
// `make_writable`, each directory is made 0700 before its entries go: trees holding read-only
// directories (a root filesystem's 0555 dirs) can then be removed without root.
void remove_tree(int dirfd, const std::string& name, bool make_writable = false);

}  // namespace cidrun
