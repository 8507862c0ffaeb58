// Fetches whole DAGs (and single blocks) into a block store, from a SourceSet.
//
// fetch_dag: a parallel walk from the root with up to `parallel` requests in flight. A missing
// root is fetched alone first; its links' cumulative sizes then choose the request pattern, all
// within the Trustless Gateway spec so that any gateway can answer it: a subtree of at most
// 16 MiB, or one whose links are small on average (a directory of small files), comes as one
// CAR stream (one request instead of one per block); a bigger node with big links (a big file,
// a directory of big files or of big subtrees) is split, each child asked for on its own, so
// that several CAR streams (up to `car_streams`) and raw block requests run at once and the
// hashing and writing use every core. Below a fetched node that links to blocks the store held
// before the pull (an update of a DAG the store holds), no CAR covers what is here: each link is
// walked or fetched on its own, so an update moves only what changed. Blocks already present are
// read, not fetched, and their missing descendants fetched block by block (so a pull resumes where
// it stopped). Every block is hash-checked before it is stored or decoded; a CAR may only deliver
// blocks that the blocks it delivered so far link to, and whatever a CAR lacked is fetched block by
// block. Memory is bounded by the blocks in flight plus one multihash per block of the DAG (for
// deduplication), never by the data.
#pragma once

#include <cstddef>
#include <cstdint>

#include "exchange/fetch_progress.h"
#include "exchange/source_set.h"
#include "store/blockstore.h"

namespace cidrun::exchange {

struct FetchOptions {
  size_t parallel = 32;    // requests in flight (workers)
  size_t car_streams = 4;  // of which CAR streams
  bool use_car = true;     // try one CAR stream first when the root is missing
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
  class Walk;
  BlockStore& store_;
  SourceSet& sources_;
  FetchOptions opts_;
};

}  // namespace cidrun::exchange
