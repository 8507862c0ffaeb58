#include "store/verify.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <optional>

#include "store/reachable.h"
#include "store/repo.h"
#include "store/repo_lock.h"
#include "util/error.h"
#include "util/fd.h"
#include "util/sha256.h"

namespace cidrun {
namespace {

// Hashes a block file in pieces, so a huge file under a block's name costs no memory.
// Returns the digest and the size, or throws Error on I/O failure.
std::pair<Sha256Digest, uint64_t> hash_file(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  if (!fd.valid()) throw_errno("open " + path);
  Sha256 h;
  uint64_t total = 0;
  uint8_t buf[1 << 16];
  for (;;) {
    size_t n = read_full(fd.get(), buf, sizeof buf, path);
    h.update(ByteView(buf, n));
    total += n;
    if (n < sizeof buf) break;
  }
  return {h.finish(), total};
}

}  // namespace

VerifyResult verify_repo(Repo& repo, bool repair,
                         const std::function<void(const std::string&)>& report) {
  // Shared is enough to read; repair removes blocks, which only gc's exclusive mode may do.
  RepoLock lock(repo, repair ? RepoLock::Mode::kExclusive : RepoLock::Mode::kShared);
  VerifyResult r;
  FlatfsStore& store = repo.blocks();
  std::vector<Bytes> keys;
  store.for_each([&](ByteView mh) { keys.emplace_back(mh.begin(), mh.end()); });
  std::sort(keys.begin(), keys.end());  // stable report order across runs
  for (const auto& mh : keys) {
    Cid cid;
    try {
      cid = cid_of_multihash(mh);
    } catch (const Error& e) {
      r.unreadable.emplace_back();
      report(std::string("unreadable block key: ") + e.what());
      continue;
    }
    ++r.blocks;
    if (cid.hash_code() != kHashSha256) {
      r.unreadable.push_back(cid);
      report("unverifiable block " + cid.str() + ": unsupported hash function");
      continue;
    }
    std::string path = store.path_of(mh);
    try {
      auto [digest, size] = hash_file(path);
      r.bytes += size;
      auto want = cid.digest();
      if (!std::equal(want.begin(), want.end(), digest.begin(), digest.end())) {
        r.corrupt.push_back(cid);
        report("corrupt block " + cid.str() + ": content does not match its hash (" + path + ")");
        if (repair && store.remove(cid)) {
          ++r.removed;
          report("removed corrupt block " + cid.str());
        }
      }
    } catch (const Error& e) {
      if (!store.has(cid)) continue;  // removed concurrently: not a fault of the store
      r.unreadable.push_back(cid);
      report("unreadable block " + cid.str() + ": " + e.what());
    }
  }

  KeySet seen;
  // Not a structured binding: clang before 16 (and so clang-tidy) cannot capture one.
  for (const auto& pin : repo.pins()) {
    const Cid& root = pin.first;
    auto on_missing = [&](const Cid& missing) {
      r.missing.push_back(missing);
      report("missing block " + missing.str() + " (pinned by " + root.str() + ")");
    };
    if (pin.second == PinType::kDirect) {
      if (!store.has(root)) on_missing(root);
      continue;
    }
    try {
      walk_reachable(store, root, seen, IfMissing::kSkip, nullptr, on_missing);
    } catch (const Error& e) {
      // An undecodable node below a pin: already counted as corrupt when its hash is wrong.
      report(std::string("pinned DAG ") + root.str() + ": " + e.what());
      r.unreadable.push_back(root);
    }
  }
  if (repair) store.sync();
  return r;
}

}  // namespace cidrun
