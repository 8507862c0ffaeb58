// `repo verify`: rehashes every stored block and checks that every pinned DAG is complete.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "multiformats/cid.h"

namespace cidrun {

class Repo;

struct VerifyResult {
  uint64_t blocks = 0;
  uint64_t bytes = 0;
  std::vector<Cid> corrupt;     // bytes do not hash to the block's name
  std::vector<Cid> unreadable;  // I/O error, or a hash function we cannot check
  std::vector<Cid> missing;     // below a pin, absent from the store
  uint64_t removed = 0;         // corrupt blocks removed by repair
  bool ok() const { return corrupt.empty() && unreadable.empty() && missing.empty(); }
};

// With repair, corrupt blocks are removed (under the exclusive repo lock), so that a later add or
// fetch can store good copies. report receives one line per problem found.
VerifyResult verify_repo(Repo& repo, bool repair,
                         const std::function<void(const std::string&)>& report);

}  // namespace cidrun
