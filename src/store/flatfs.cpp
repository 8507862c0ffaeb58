#include "store/flatfs.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <memory>
#include <random>
#include <vector>

#include "multiformats/multibase.h"
#include "util/error.h"

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
  std::string key = key_of(multihash);
  return dir_ + "/" + shard_of(key) + "/" + key + std::string(kSuffix);
}

bool FlatfsStore::has(const Cid& cid) {
  if (cid.is_identity()) return true;
  std::string key = key_of(cid.multihash());
  std::string rel = shard_of(key) + "/" + key + std::string(kSuffix);
  return ::faccessat(dirfd_.get(), rel.c_str(), F_OK, 0) == 0;
}

std::optional<uint64_t> FlatfsStore::size(const Cid& cid) {
  if (cid.is_identity()) return cid.digest().size();
  std::string key = key_of(cid.multihash());
  std::string rel = shard_of(key) + "/" + key + std::string(kSuffix);
  struct stat st {};
  if (::fstatat(dirfd_.get(), rel.c_str(), &st, 0) != 0) {
    if (errno == ENOENT) return std::nullopt;
    throw_errno("stat block " + rel);
  }
  return static_cast<uint64_t>(st.st_size);
}

std::optional<UniqueFd> FlatfsStore::open_block(const Cid& cid) {
  if (cid.is_identity()) return std::nullopt;
  std::string key = key_of(cid.multihash());
  std::string rel = shard_of(key) + "/" + key + std::string(kSuffix);
  UniqueFd fd(::openat(dirfd_.get(), rel.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) {
    if (errno == ENOENT) return std::nullopt;
    throw_errno("open block " + dir_ + "/" + rel);
  }
  return fd;
}

std::optional<Bytes> FlatfsStore::get(const Cid& cid) {
  if (cid.is_identity()) return identity_bytes(cid);
  std::string key = key_of(cid.multihash());
  std::string rel = shard_of(key) + "/" + key + std::string(kSuffix);
  UniqueFd fd(::openat(dirfd_.get(), rel.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) {
    if (errno == ENOENT) return std::nullopt;
    throw_errno("open block " + dir_ + "/" + rel);
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) throw_errno("stat block " + rel);
  Bytes out(static_cast<size_t>(st.st_size));
  size_t n = read_full(fd.get(), out.data(), out.size(), "block " + rel);
  out.resize(n);
  return out;
}

void FlatfsStore::put_parts(const Cid& cid, std::span<const ByteView> parts) {
  if (cid.is_identity()) return;
  std::string key = key_of(cid.multihash());
  std::string shard = shard_of(key);
  std::string rel = shard + "/" + key + std::string(kSuffix);
  int idx = base32_index(shard[0]) * 32 + base32_index(shard[1]);
  if (idx < 0 || !shard_exists_[idx].load(std::memory_order_relaxed)) {
    if (::mkdirat(dirfd_.get(), shard.c_str(), 0755) != 0 && errno != EEXIST) {
      throw_errno("mkdir " + dir_ + "/" + shard);
    }
    if (idx >= 0) shard_exists_[idx].store(true, std::memory_order_relaxed);
  }
  if (::faccessat(dirfd_.get(), rel.c_str(), F_OK, 0) == 0) return;

  static thread_local std::mt19937_64 rng{std::random_device{}()};
  std::string tmp = shard + "/.tmp-" + key.substr(key.size() - 12) + "-" + std::to_string(rng());
  UniqueFd fd(::openat(dirfd_.get(), tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0444));
  if (!fd.valid()) throw_errno("create " + dir_ + "/" + tmp);
  try {
    std::vector<iovec> iov;
    size_t total = 0;
    for (auto p : parts) {
      if (p.empty()) continue;
      iov.push_back({const_cast<uint8_t*>(p.data()), p.size()});
      total += p.size();
    }
    size_t done = 0;
    size_t first = 0;
    while (done < total) {
      ssize_t n = ::writev(fd.get(), iov.data() + first, static_cast<int>(iov.size() - first));
      if (n < 0) {
        if (errno == EINTR) continue;
        throw_errno("write " + dir_ + "/" + tmp);
      }
      done += static_cast<size_t>(n);
      // Advance past fully written iovecs after a short write.
      auto left = static_cast<size_t>(n);
      while (first < iov.size() && left >= iov[first].iov_len) left -= iov[first++].iov_len;
      if (first < iov.size()) {
        iov[first].iov_base = static_cast<uint8_t*>(iov[first].iov_base) + left;
        iov[first].iov_len -= left;
      }
    }
    fd.reset();
    if (::renameat(dirfd_.get(), tmp.c_str(), dirfd_.get(), rel.c_str()) != 0) {
      throw_errno("rename block into " + dir_ + "/" + rel);
    }
  } catch (...) {
    ::unlinkat(dirfd_.get(), tmp.c_str(), 0);
    throw;
  }
}

bool FlatfsStore::remove(const Cid& cid) {
  if (cid.is_identity()) return false;
  std::string key = key_of(cid.multihash());
  std::string rel = shard_of(key) + "/" + key + std::string(kSuffix);
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
