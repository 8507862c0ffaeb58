// The repository-wide lock that keeps `repo gc` from racing writers. Every operation that puts
// blocks it will later pin or lease (add, dag import, pull, pin add) holds the lock shared for
// its whole run; gc holds it exclusive, so it only ever sees a store with no half-finished
// writer whose new blocks are not yet pinned. flock(2) on <repo>/repo.lock: released by the
// kernel when the process dies, so a kill -9 never leaves the repo locked.
#pragma once

#include "util/fd.h"

namespace cidrun {

class Repo;

class RepoLock {
 public:
  enum class Mode { kShared, kExclusive };

  // Waits for the lock when wait is true; otherwise throws Error when another process holds
  // it in a conflicting mode.
  RepoLock(const Repo& repo, Mode mode, bool wait = true);
  RepoLock(RepoLock&&) = default;
  RepoLock& operator=(RepoLock&&) = default;
  ~RepoLock() = default;  // closing the descriptor releases the lock

  Mode mode() const { return mode_; }

 private:
  UniqueFd fd_;
  Mode mode_;
};

}  // namespace cidrun
