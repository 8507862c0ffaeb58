#include "store/verify.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <optional>

#include "store/reachable.h"
#include "store/repo.h"
#include "store/repo_lock.h"
#include "util/error.h"
#include "util/fd.h"
#include "util/sha256.h"

namespace cidrun {
namespace {

// Hashes a block's bytes in pieces (its own file, or the range its reference names), so a huge
// file under a block's name costs no memory. Returns the digest and the size, or throws Error on
// I/O failure.
std::pair<Sha256Digest, uint64_t> hash_block(BlockFile& f, const std::string& what) {
  Sha256 h;
  uint64_t total = 0;
  uint8_t buf[1 << 16];
  while (total < f.size) {
    size_t want = static_cast<size_t>(std::min<uint64_t>(sizeof buf, f.size - total));
    ssize_t n = ::pread(f.fd.get(), buf, want, static_cast<off_t>(f.offset + total));
    if (n < 0) {
      if (errno == EINTR) continue;
      throw_errno("read " + what);
    }
    if (n == 0) break;
    h.update(ByteView(buf, static_cast<size_t>(n)));
    total += static_cast<uint64_t>(n);
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
      auto file = store.open_block_file(cid);
      if (!file) {
        struct stat st {};
        if (::lstat(path.c_str(), &st) != 0) continue;  // removed concurrently
        // A reference whose file is gone or too short: its bytes are lost.
        r.corrupt.push_back(cid);
        report("corrupt block " + cid.str() + ": the file its reference names is gone or short (" +
               path + ")");
        if (repair && store.remove(cid)) {
          ++r.removed;
          report("removed corrupt block " + cid.str());
        }
        continue;
      }
      auto [digest, size] = hash_block(*file, path);
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
