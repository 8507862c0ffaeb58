#include "exchange/source_set.h"

#include <algorithm>
#include <thread>

#include "util/log.h"

namespace cidrun::exchange {
namespace {

using Clock = std::chrono::steady_clock;

std::chrono::milliseconds backoff(int failures, bool lied) {
  if (lied) return std::chrono::minutes(5);
  int shift = std::min(failures, 8);
  return std::chrono::milliseconds(250L << shift);  // 0.5 s ... ~1 min
}

}  // namespace

SourceSet::SourceSet(std::vector<std::unique_ptr<BlockSource>> sources, int retries)
    : retries_(retries) {
  for (auto& s : sources) entries_.push_back(Entry{std::move(s)});
}

std::shared_ptr<SourceSet> SourceSet::open(const std::vector<std::string>& urls) {
  std::vector<std::unique_ptr<BlockSource>> sources;
  std::vector<std::string> seen;
  for (const auto& u : urls) {
    if (u.empty() || std::find(seen.begin(), seen.end(), u) != seen.end()) continue;
    seen.push_back(u);
    sources.push_back(open_source(u));
  }
  return std::make_shared<SourceSet>(std::move(sources));
}

std::vector<std::string> SourceSet::urls() const {
  std::vector<std::string> out;
  for (const auto& e : entries_) out.push_back(e.source->url());
  return out;
}

std::vector<size_t> SourceSet::order() {
  std::lock_guard l(mu_);
  auto now = Clock::now();
  std::vector<size_t> ready, waiting;
  for (size_t i = 0; i < entries_.size(); ++i) {
    (entries_[i].retry_after <= now ? ready : waiting).push_back(i);
  }
  std::stable_sort(waiting.begin(), waiting.end(), [&](size_t a, size_t b) {
    return entries_[a].retry_after < entries_[b].retry_after;
  });
  // Healthy sources take turns being asked first, so a parallel fetch spreads over all of them.
  if (ready.size() > 1) {
    std::rotate(ready.begin(), ready.begin() + static_cast<std::ptrdiff_t>(next_++ % ready.size()),
                ready.end());
  }
  ready.insert(ready.end(), waiting.begin(), waiting.end());
  return ready;
}

void SourceSet::record(size_t i, bool ok, bool lied, const std::string& why) {
  std::lock_guard l(mu_);
  Entry& e = entries_[i];
  if (ok) {
    e.failures = 0;
    e.retry_after = {};
    return;
  }
  ++e.failures;
  e.retry_after = Clock::now() + backoff(e.failures, lied);
  // A dead source fails every retry and every parallel request: say so once per run of failures
  // (the final error lists what each source said). Wrong bytes are always worth a line.
  if (lied || e.failures == 1) {
    log::warn(std::string(lied ? "bad source: " : "source failed: ") + why);
  } else {
    log::debug("source failed again (" + std::to_string(e.failures) + " in a row): " + why);
  }
}

void SourceSet::penalize(const std::string& url, const std::string& why, bool lied) {
  for (size_t i = 0; i < entries_.size(); ++i) {
    if (entries_[i].source->url() == url) record(i, false, lied, why);
  }
}

// A SourceError whose message says the bytes were wrong is a lie, not a hiccup.
static bool is_lie(const SourceError& e) {
  std::string_view m = e.what();
  return m.find("do not hash") != std::string_view::npos ||
         m.find("block limit") != std::string_view::npos ||
         m.find("larger than") != std::string_view::npos;
}

Bytes SourceSet::get(const Cid& cid) {
  Bytes b;
  ByteView v = get_into(cid, b);
  if (v.data() != b.data()) return Bytes(v.begin(), v.end());
  b.resize(v.size());
  return b;
}

ByteView SourceSet::get_into(const Cid& cid, Bytes& scratch) {
  if (cid.is_identity()) return cid.digest();
  std::string reasons;
  for (int round = 0; round <= retries_; ++round) {
    reasons.clear();
    bool transient = false;
    for (size_t i : order()) {
      BlockSource& s = *entries_[i].source;
      try {
        if (auto data = s.get_into(cid, scratch)) {
          record(i, true, false, "");
          return *data;
        }
        reasons += "; " + s.url() + ": not found";
      } catch (const SourceError& e) {
        bool lie = is_lie(e);
        record(i, false, lie, e.what());
        reasons += "; " + std::string(e.what());
        transient |= !lie;  // asking a liar again for the same block cannot help
      }
    }
    if (!transient) break;  // every source honestly said "don't have it": retrying won't help
    std::this_thread::sleep_for(std::chrono::milliseconds(200 << round));
  }
  if (entries_.empty())
    reasons = "; no block sources configured (--from, CIDRUN_SOURCES or config.json)";
  throw NotFound("block " + cid.str() + " not found" +
                 (reasons.empty() ? "" : " (" + reasons.substr(2) + ")"));
}

bool SourceSet::stream_car(const Cid& root, DagScope scope, const CarBlockHandler& on_block) {
  for (size_t i : order()) {
    BlockSource& s = *entries_[i].source;
    if (!s.can_stream_car()) continue;
    try {
      if (s.get_car(root, scope, on_block)) {
        record(i, true, false, "");
        return true;
      }
    } catch (const SourceError& e) {
      record(i, false, is_lie(e), e.what());
    }
  }
  return false;
}

}  // namespace cidrun::exchange
