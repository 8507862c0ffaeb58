#include "store/flatfs.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
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

namespace {

constexpr std::string_view kRefPrefix = "ref:";

std::optional<uint64_t> parse_u64(std::string_view s) {
  if (s.empty() || s.size() > 20) return std::nullopt;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    if (__builtin_mul_overflow(v, 10, &v) || __builtin_add_overflow(v, c - '0', &v)) {
      return std::nullopt;
    }
  }
  return v;
}

}  // namespace

std::optional<FlatfsStore::Ref> FlatfsStore::read_ref(const std::string& rel) const {
  char buf[PATH_MAX + 64];
  ssize_t n = ::readlinkat(dirfd_.get(), rel.c_str(), buf, sizeof buf);
  if (n <= 0 || static_cast<size_t>(n) >= sizeof buf) return std::nullopt;
  std::string_view text(buf, static_cast<size_t>(n));
  if (text.substr(0, kRefPrefix.size()) != kRefPrefix) return std::nullopt;
  text.remove_prefix(kRefPrefix.size());
  size_t c1 = text.find(':');
  if (c1 == std::string_view::npos) return std::nullopt;
  size_t c2 = text.find(':', c1 + 1);
  if (c2 == std::string_view::npos) return std::nullopt;
  auto offset = parse_u64(text.substr(0, c1));
  auto size = parse_u64(text.substr(c1 + 1, c2 - c1 - 1));
  std::string_view path = text.substr(c2 + 1);
  if (!offset || !size || path.empty()) return std::nullopt;
  return Ref{*offset, *size, std::string(path)};
}

std::optional<BlockFile> FlatfsStore::open_ref(const Ref& ref) const {
  UniqueFd fd(::openat(dirfd_.get(), ref.path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!fd.valid()) return std::nullopt;
  struct stat st {};
  uint64_t end = 0;
  if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode) ||
      __builtin_add_overflow(ref.offset, ref.size, &end) ||
      static_cast<uint64_t>(st.st_size) < end) {
    return std::nullopt;
  }
  return BlockFile{std::move(fd), ref.offset, ref.size};
}

std::optional<BlockFile> FlatfsStore::open_entry(const std::string& rel, bool* ref) const {
  if (ref) *ref = false;
  UniqueFd fd(::openat(dirfd_.get(), rel.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (fd.valid()) {
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) throw_errno("stat block " + dir_ + "/" + rel);
    return BlockFile{std::move(fd), 0, static_cast<uint64_t>(st.st_size)};
  }
  if (errno == ENOENT) return std::nullopt;
  if (errno != ELOOP) throw_errno("open block " + dir_ + "/" + rel);
  auto r = read_ref(rel);
  if (!r) return std::nullopt;
  if (ref) *ref = true;
  auto f = open_ref(*r);
  if (f) f->referenced = true;
  return f;
}

bool FlatfsStore::present(const std::string& rel) const {
  struct stat st {};
  if (::fstatat(dirfd_.get(), rel.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) return false;
  if (!S_ISLNK(st.st_mode)) return true;
  auto r = read_ref(rel);
  return r && open_ref(*r).has_value();
}

bool FlatfsStore::has(const Cid& cid) {
  if (cid.is_identity()) return true;
  return present(rel_path(cid));
}

std::optional<uint64_t> FlatfsStore::size(const Cid& cid) {
  if (cid.is_identity()) return cid.digest().size();
  std::string rel = rel_path(cid);
  struct stat st {};
  if (::fstatat(dirfd_.get(), rel.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT) return std::nullopt;
    throw_errno("stat block " + rel);
  }
  if (!S_ISLNK(st.st_mode)) return static_cast<uint64_t>(st.st_size);
  auto r = read_ref(rel);
  if (!r || !open_ref(*r)) return std::nullopt;
  return r->size;
}

std::optional<BlockFile> FlatfsStore::open_block_file(const Cid& cid) {
  if (cid.is_identity()) return std::nullopt;
  return open_entry(rel_path(cid));
}

std::optional<Bytes> FlatfsStore::get(const Cid& cid) {
  if (cid.is_identity()) return identity_bytes(cid);
  std::string rel = rel_path(cid);
  bool ref = false;
  auto f = open_entry(rel, &ref);
  if (!f) return std::nullopt;
  Bytes out(static_cast<size_t>(f->size));
  size_t n = pread_full(f->fd.get(), out.data(), out.size(), f->offset, "block " + cid.str());
  if (ref && n != out.size()) return std::nullopt;  // the file shrank under the reference
  out.resize(n);
  // A block file was verified when it was written; the file a reference names is another
  // program's to keep, so its range is checked on every read (the hash costs far less than the
  // read from disk).
  if (ref && !cid.matches(out)) {
    auto r = read_ref(rel);
    throw Error("block " + cid.str() +
                ": the file its reference names no longer holds its bytes (" +
                (r ? r->path : std::string("?")) + ")");
  }
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
    if (rc == 0) return true;
    if (errno == EEXIST) {
      // A reference under the name is replaced by the bytes (the rename path): a put never
      // leaves a block depending on another file when it has the bytes in hand.
      struct stat st {};
      return ::fstatat(dirfd_.get(), rel.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0 ||
             !S_ISLNK(st.st_mode);
    }
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

bool FlatfsStore::put_ref(const Cid& cid, const std::string& path, uint64_t offset, uint64_t size) {
  if (cid.is_identity() || path.empty()) return false;
  std::string rel = rel_path(cid);
  // Only a block file with no other name: a reference then frees its blocks. One that is also a
  // checkout's file (a whole small file claimed by the image cache) already costs nothing.
  struct stat st {};
  if (::fstatat(dirfd_.get(), rel.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode) ||
      st.st_nlink != 1 || static_cast<uint64_t>(st.st_size) != size) {
    return false;
  }
  // Paths inside the repository are kept relative to it, so a moved repository keeps working.
  std::string target = path;
  std::string parent = dir_.substr(0, dir_.rfind('/'));
  if (!parent.empty() && path.size() > parent.size() + 1 &&
      path.compare(0, parent.size(), parent) == 0 && path[parent.size()] == '/') {
    target = ".." + path.substr(parent.size());
  }
  Ref ref{offset, size, target};
  if (!open_ref(ref)) return false;
  std::string text =
      std::string(kRefPrefix) + std::to_string(offset) + ":" + std::to_string(size) + ":" + target;
  std::string key = key_of(cid.multihash());
  std::string tmp =
      shard_of(key) + "/.ref-" + key.substr(key.size() - 12) + "-" + std::to_string(random_u64());
  if (::symlinkat(text.c_str(), dirfd_.get(), tmp.c_str()) != 0) {
    throw_errno("create block reference in " + dir_ + "/" + shard_of(key));
  }
  if (::renameat(dirfd_.get(), tmp.c_str(), dirfd_.get(), rel.c_str()) != 0) {
    int err = errno;
    ::unlinkat(dirfd_.get(), tmp.c_str(), 0);
    errno = err;
    throw_errno("replace block " + dir_ + "/" + rel + " by a reference");
  }
  return true;
}

void FlatfsStore::for_each_entry(
    const std::function<void(const std::string& shard, const dirent& entry)>& fn) const {
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
      if (e->d_name[0] == '\0' || e->d_name[0] == '.') continue;  // ".", "..", temporaries
      fn(s, *e);
    }
  }
}

void FlatfsStore::for_each_ref_target(const std::function<void(const std::string& path)>& fn) {
  for_each_entry([&](const std::string& shard, const dirent& e) {
    // Block files are the many; only symlinks (or names of unknown type) are looked at.
    if (e.d_type != DT_LNK && e.d_type != DT_UNKNOWN) return;
    auto ref = read_ref(shard + "/" + e.d_name);
    if (!ref) return;
    fn(ref->path[0] == '/' ? ref->path : dir_ + "/" + ref->path);
  });
}

void FlatfsStore::for_each(const std::function<void(ByteView multihash)>& fn) {
  for_each_entry([&](const std::string&, const dirent& e) {
    std::string_view n = e.d_name;
    if (n.size() <= kSuffix.size() || n.substr(n.size() - kSuffix.size()) != kSuffix) return;
    n.remove_suffix(kSuffix.size());
    Bytes mh;
    try {
      mh = multibase::decode_base32(n);
    } catch (const Error&) {
      return;  // not a block file
    }
    fn(mh);
  });
}

void FlatfsStore::sync() {
  if (::syncfs(dirfd_.get()) != 0) throw_errno("sync block store " + dir_);
}

}  // namespace cidrun
