#include "store/flatfs.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <memory>
#include <vector>

#include "multiformats/multibase.h"
#include "util/error.h"
#include "util/random.h"

namespace cidrun {
namespace {

constexpr std::string_view kSharding = "/repo/flatfs/shard/v1/next-to-last/2\n";
constexpr std::string_view kSuffix = ".data";

int base32_index(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= '2' && c <= '7') return c - '2' + 26;
  return -1;
}

std::string shard_of(const std::string& key) {
  // next-to-last/2: the two characters before the last one (keys are long, never shorter).
  return key.substr(key.size() - 3, 2);
}

// A block file's path relative to the store directory.
std::string rel_path(const std::string& key) {
  return shard_of(key) + "/" + key + std::string(kSuffix);
}

std::string rel_path(const Cid& cid) {
  return rel_path(FlatfsStore::key_of(cid.multihash()));
}

// Identity CIDs carry their bytes; they never touch the disk.
Bytes identity_bytes(const Cid& cid) {
  auto d = cid.digest();
  return Bytes(d.begin(), d.end());
}

}  // namespace

FlatfsStore::FlatfsStore(const std::string& dir, bool create) : dir_(dir) {
  if (create) make_dirs(dir_);
  dirfd_.reset(::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dirfd_.valid()) throw_errno("open block store " + dir_);
  std::string sharding_path = dir_ + "/SHARDING";
  struct stat st {};
  if (::stat(sharding_path.c_str(), &st) == 0) {
    std::string got = read_text_file(sharding_path);
    if (got != kSharding && got + "\n" != kSharding) {
      throw Error("block store " + dir_ + " uses unsupported sharding: " + got);
    }
  } else if (create) {
    write_file_atomic(sharding_path, as_bytes(kSharding));
  } else {
    throw Error("block store " + dir_ + " has no SHARDING file (not a flatfs store)");
  }
}

std::string FlatfsStore::key_of(ByteView multihash) {
  return multibase::base32_upper(multihash);
}

std::string FlatfsStore::path_of(ByteView multihash) const {
  return dir_ + "/" + rel_path(key_of(multihash));
}

std::optional<UniqueFd> FlatfsStore::open_rel(const std::string& rel) const {
  UniqueFd fd(::openat(dirfd_.get(), rel.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) {
    if (errno == ENOENT) return std::nullopt;
    throw_errno("open block " + dir_ + "/" + rel);
  }
  return fd;
}

bool FlatfsStore::has(const Cid& cid) {
  if (cid.is_identity()) return true;
  return ::faccessat(dirfd_.get(), rel_path(cid).c_str(), F_OK, 0) == 0;
}

std::optional<uint64_t> FlatfsStore::size(const Cid& cid) {
  if (cid.is_identity()) return cid.digest().size();
  std::string rel = rel_path(cid);
  struct stat st {};
  if (::fstatat(dirfd_.get(), rel.c_str(), &st, 0) != 0) {
    if (errno == ENOENT) return std::nullopt;
    throw_errno("stat block " + rel);
  }
  return static_cast<uint64_t>(st.st_size);
}

std::optional<UniqueFd> FlatfsStore::open_block(const Cid& cid) {
  if (cid.is_identity()) return std::nullopt;
  return open_rel(rel_path(cid));
}

std::optional<BlockFile> FlatfsStore::open_block_file(const Cid& cid) {
  auto fd = open_block(cid);
  if (!fd) return std::nullopt;
  struct stat st {};
  if (::fstat(fd->get(), &st) != 0) throw_errno("stat block " + cid.str());
  return BlockFile{std::move(*fd), 0, static_cast<uint64_t>(st.st_size)};
}

std::optional<Bytes> FlatfsStore::get(const Cid& cid) {
  if (cid.is_identity()) return identity_bytes(cid);
  std::string rel = rel_path(cid);
  auto fd = open_rel(rel);
  if (!fd) return std::nullopt;
  struct stat st {};
  if (::fstat(fd->get(), &st) != 0) throw_errno("stat block " + rel);
  Bytes out(static_cast<size_t>(st.st_size));
  size_t n = read_full(fd->get(), out.data(), out.size(), "block " + rel);
  out.resize(n);
  return out;
}

namespace {

// Writes every part to fd (one writev per round; short writes resume where they stopped).
void write_parts(int fd, std::span<const ByteView> parts, const std::string& what) {
  std::vector<iovec> iov;
  iov.reserve(parts.size());
  size_t total = 0;
  for (auto p : parts) {
    if (p.empty()) continue;
    iov.push_back({const_cast<uint8_t*>(p.data()), p.size()});
    total += p.size();
  }
  size_t done = 0;
  size_t first = 0;
  while (done < total) {
    ssize_t n = ::writev(fd, iov.data() + first, static_cast<int>(iov.size() - first));
    if (n < 0) {
      if (errno == EINTR) continue;
      throw_errno("write " + what);
    }
    done += static_cast<size_t>(n);
    auto left = static_cast<size_t>(n);
    while (first < iov.size() && left >= iov[first].iov_len) left -= iov[first++].iov_len;
    if (first < iov.size()) {
      iov[first].iov_base = static_cast<uint8_t*>(iov[first].iov_base) + left;
      iov[first].iov_len -= left;
    }
  }
}

// Below this a block is written without asking first whether it is present: the write costs
// less than the extra lookup, and linkat reports a present block anyway.
constexpr size_t kCheckFirstMin = 64 * 1024;

}  // namespace

void FlatfsStore::put_parts(const Cid& cid, std::span<const ByteView> parts) {
  if (cid.is_identity()) return;
  std::string key = key_of(cid.multihash());
  std::string shard = shard_of(key);
  std::string rel = rel_path(key);
  int idx = base32_index(shard[0]) * 32 + base32_index(shard[1]);
  if (idx < 0 || !shard_exists_[idx].load(std::memory_order_relaxed)) {
    if (::mkdirat(dirfd_.get(), shard.c_str(), 0755) != 0 && errno != EEXIST) {
      throw_errno("mkdir " + dir_ + "/" + shard);
    }
    if (idx >= 0) shard_exists_[idx].store(true, std::memory_order_relaxed);
  }
  size_t size = 0;
  for (auto p : parts) size += p.size();
  if (size >= kCheckFirstMin && ::faccessat(dirfd_.get(), rel.c_str(), F_OK, 0) == 0) return;
  if (link_mode_.load(std::memory_order_relaxed) != LinkMode::kRename && put_unnamed(rel, parts)) {
    return;
  }
  if (size < kCheckFirstMin && ::faccessat(dirfd_.get(), rel.c_str(), F_OK, 0) == 0) return;

  std::string tmp =
      shard + "/.tmp-" + key.substr(key.size() - 12) + "-" + std::to_string(random_u64());
  UniqueFd fd(::openat(dirfd_.get(), tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0444));
  if (!fd.valid()) throw_errno("create " + dir_ + "/" + tmp);
  try {
    write_parts(fd.get(), parts, dir_ + "/" + tmp);
    fd.reset();
    if (::renameat(dirfd_.get(), tmp.c_str(), dirfd_.get(), rel.c_str()) != 0) {
      throw_errno("rename block into " + dir_ + "/" + rel);
    }
  } catch (...) {
    ::unlinkat(dirfd_.get(), tmp.c_str(), 0);
    throw;
  }
}

// An unnamed file (O_TMPFILE) in the shard directory, written whole and then linked under the
// block's name: no name to create, check and rename away, and nothing left behind by a crash.
// linkat's EEXIST says the block was already here. Returns false where the filesystem (or the
// kernel's linkat rules) do not allow it; put_parts then uses a named temporary file and rename.
bool FlatfsStore::put_unnamed(const std::string& rel, std::span<const ByteView> parts) {
  std::string shard = rel.substr(0, rel.find('/'));
  UniqueFd fd(::openat(dirfd_.get(), shard.c_str(), O_TMPFILE | O_WRONLY | O_CLOEXEC, 0444));
  if (!fd.valid()) {
    if (errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL) {
      link_mode_ = LinkMode::kRename;
      return false;
    }
    throw_errno("create a file in " + dir_ + "/" + shard);
  }
  write_parts(fd.get(), parts, dir_ + "/" + rel);
  // AT_EMPTY_PATH links the descriptor itself (allowed for a file this process opened since
  // Linux 6.10, before that only with CAP_DAC_READ_SEARCH); /proc/self/fd/N is the fallback.
  for (;;) {
    LinkMode mode = link_mode_.load(std::memory_order_relaxed);
    int rc;
    if (mode == LinkMode::kProcFd) {
      std::string proc = "/proc/self/fd/" + std::to_string(fd.get());
      rc = ::linkat(AT_FDCWD, proc.c_str(), dirfd_.get(), rel.c_str(), AT_SYMLINK_FOLLOW);
    } else {
      rc = ::linkat(fd.get(), "", dirfd_.get(), rel.c_str(), AT_EMPTY_PATH);
    }
    if (rc == 0 || errno == EEXIST) return true;
    if (mode == LinkMode::kEmptyPath && (errno == ENOENT || errno == EPERM)) {
      link_mode_ = LinkMode::kProcFd;
      continue;
    }
    if (mode == LinkMode::kProcFd && (errno == ENOENT || errno == EPERM || errno == EACCES)) {
      link_mode_ = LinkMode::kRename;  // no /proc: named temporary files from now on
      return false;
    }
    throw_errno("link block into " + dir_ + "/" + rel);
  }
}

bool FlatfsStore::remove(const Cid& cid) {
  if (cid.is_identity()) return false;
  std::string rel = rel_path(cid);
  if (::unlinkat(dirfd_.get(), rel.c_str(), 0) == 0) return true;
  if (errno == ENOENT) return false;
  throw_errno("remove block " + dir_ + "/" + rel);
}

void FlatfsStore::for_each(const std::function<void(ByteView multihash)>& fn) {
  std::unique_ptr<DIR, int (*)(DIR*)> top(::opendir(dir_.c_str()), ::closedir);
  if (!top) throw_errno("open block store " + dir_);
  std::vector<std::string> shards;
  while (dirent* e = ::readdir(top.get())) {
    std::string n = e->d_name;
    if (n.size() == 2 && base32_index(n[0]) >= 0 && base32_index(n[1]) >= 0) shards.push_back(n);
  }
  for (const auto& s : shards) {
    std::string sd = dir_ + "/" + s;
    std::unique_ptr<DIR, int (*)(DIR*)> d(::opendir(sd.c_str()), ::closedir);
    if (!d) continue;  // removed concurrently
    while (dirent* e = ::readdir(d.get())) {
      std::string_view n = e->d_name;
      if (n.empty() || n[0] == '.' || n.size() <= kSuffix.size() ||
          n.substr(n.size() - kSuffix.size()) != kSuffix) {
        continue;
      }
      n.remove_suffix(kSuffix.size());
      Bytes mh;
      try {
        mh = multibase::decode_base32(n);
      } catch (const Error&) {
        continue;  // not a block file
      }
      fn(mh);
    }
  }
}

void FlatfsStore::sync() {
  if (::syncfs(dirfd_.get()) != 0) throw_errno("sync block store " + dir_);
}

}  // namespace cidrun
