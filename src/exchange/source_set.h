// Several block sources used as one: healthy sources take turns being asked first (so parallel
// requests spread over all of them), the first verified answer wins. A source that fails is backed
// off (exponentially, so a dead gateway stops costing a timeout per block) and one that sends wrong
// bytes is marked bad for much longer; both remain a last resort, because one bad answer can be a
// transient fault.
#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "exchange/block_source.h"

namespace cidrun::exchange {

class SourceSet {
 public:
  explicit SourceSet(std::vector<std::unique_ptr<BlockSource>> sources, int retries = 2);

  // Opens every URL (duplicates dropped, order kept); throws Error for an unusable one.
  static std::shared_ptr<SourceSet> open(const std::vector<std::string>& urls);

  bool empty() const { return entries_.empty(); }
  std::vector<std::string> urls() const;

  // The verified block from the first source that has it. Throws NotFound naming the CID (and
  // what each source said) when none does after the retries.
  Bytes get(const Cid& cid);
  // The same, in scratch (BlockSource::get_into): the view is valid until the next call with
  // scratch.
  ByteView get_into(const Cid& cid, Bytes& scratch);

  // Streams root's DAG in `scope` from the healthiest CAR-capable source, trying the next on
  // failure. Returns true when one stream ran to its end; false when no source could (failures
  // are logged and the sources backed off). Blocks delivered before a failure stay delivered.
  bool stream_car(const Cid& root, DagScope scope, const CarBlockHandler& on_block);

  // Reports a failure found by the caller (e.g. a CAR that lacked blocks or added strangers).
  void penalize(const std::string& url, const std::string& why, bool lied);

 private:
  struct Entry {
    std::unique_ptr<BlockSource> source;
    int failures = 0;
    std::chrono::steady_clock::time_point retry_after{};
  };
  // Indexes in the order to try: sources not backing off first (rotated), then the others by
  // the time their back-off ends.
  std::vector<size_t> order();
  void record(size_t i, bool ok, bool lied, const std::string& why);

  std::vector<Entry> entries_;
  int retries_;
  size_t next_ = 0;  // rotation among healthy sources (under mu_)
  std::mutex mu_;
};

}  // namespace cidrun::exchange
