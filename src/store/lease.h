// Leases: roots that a running operation (a container run, a lazy mount, a pull) needs, so that
// `repo gc` keeps their blocks although nothing pins them. A lease is one file
// <repo>/leases/<pid>-<random> holding "<cid>\n<pid> <start-time>\n". The start time (field 22 of
// /proc/<pid>/stat) tells a live owner from a recycled pid; a lease whose owner is gone is stale,
// ignored by gc and removed by it.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "multiformats/cid.h"

namespace cidrun {

class Repo;

struct LeaseInfo {
  std::string file;  // path of the lease file
  Cid root;
  pid_t pid = 0;
  bool live = false;
};

class Lease {
 public:
  // Takes a lease on root owned by pid (default: this process). The lease ends when this object
  // is destroyed, unless detach() hands it to the owner pid for the rest of that pid's life.
  Lease(const Repo& repo, const Cid& root, pid_t owner = 0);
  ~Lease();
  Lease(const Lease&) = delete;
  Lease& operator=(const Lease&) = delete;

  // Keeps the lease file after this object goes away; gc drops it once the owner has exited.
  void detach() { path_.clear(); }
  const std::string& path() const { return path_; }

  // Every lease file with its owner's liveness; unreadable or malformed files are skipped.
  static std::vector<LeaseInfo> list(const Repo& repo);
  // Removes leases whose owner is gone; returns how many.
  static size_t remove_stale(const Repo& repo);
  // Removes the leases owned by pid (a detached lease handed to a container, at its delete).
  static size_t remove_owned_by(const Repo& repo, pid_t pid);

 private:
  std::string path_;
};

}  // namespace cidrun
