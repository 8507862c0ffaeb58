// Fetches whole DAGs (and single blocks) into a block store, from a SourceSet.
//
// fetch_dag: when the root is missing, first one CAR stream of the whole DAG from a source that
// can send one (one request, no round trips); then a parallel walk from the root that reads the
// blocks already present (so a pull resumes where it stopped) and fetches every missing one with
// up to `parallel` requests in flight. Every block is hash-checked before it is stored or decoded;
// a CAR may only deliver blocks that the DAG received so far links to. Memory is bounded by the
// in-flight blocks plus one CID per block of the DAG (for deduplication), never by the data.
#pragma once

#include <cstddef>
#include <cstdint>

#include "exchange/fetch_progress.h"
#include "exchange/source_set.h"
#include "store/blockstore.h"

namespace cidrun::exchange {

struct FetchOptions {
  size_t parallel = 32;  // block requests in flight
  bool use_car = true;   // try one CAR stream first when the root is missing
  FetchProgress* progress = nullptr;
};

struct FetchResult {
  uint64_t blocks = 0;          // blocks in the DAG
  uint64_t fetched_blocks = 0;  // of which fetched now
  uint64_t fetched_bytes = 0;
};

class Fetcher {
 public:
  Fetcher(BlockStore& store, SourceSet& sources, FetchOptions opts = {});

  // Makes root and every block below it present. Throws NotFound naming a CID that no source
  // had, or Error for a malformed node.
  FetchResult fetch_dag(const Cid& root);

  // The block from the store, or fetched, verified and stored.
  Bytes fetch_block(const Cid& cid);

 private:
  BlockStore& store_;
  SourceSet& sources_;
  FetchOptions opts_;
};

}  // namespace cidrun::exchange
