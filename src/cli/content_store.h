// The block store that content commands (get, cat, ls, run) read through.
#pragma once

#include <memory>

#include "exchange/fetching_store.h"
#include "store/repo.h"

namespace cidrun::cli {

// The repo's own store when no block source is configured (so readers keep their direct flatfs
// fast paths), else the repo's store wrapped in a FetchingStore that fetches, verifies and keeps
// whatever is missing. holder owns the wrapper.
inline BlockStore& content_store(Repo& repo, std::unique_ptr<exchange::FetchingStore>& holder) {
  if (exchange::configured_sources(repo, {}).empty()) return repo.blocks();
  holder = exchange::open_store_with_sources(repo, {});
  return *holder;
}

}  // namespace cidrun::cli
