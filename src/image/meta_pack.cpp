#include "image/meta_pack.h"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <cstring>
#include <optional>

#include "image/image.h"
#include "ipld/car.h"
#include "store/reachable.h"
#include "store/repo.h"
#include "util/error.h"
#include "util/fd.h"
#include "util/log.h"
#include "util/varint.h"

namespace cidrun::image {
namespace {

constexpr const char* kSuffix = ".car";

std::string packs_dir(const Repo& repo) {
  return repo.dir("packs");
}

}  // namespace

std::string meta_pack_path(const Repo& repo, const Cid& meta) {
  return packs_dir(repo) + "/" + meta.to_v1().str() + kSuffix;
}

bool write_meta_pack(const Repo& repo, BlockStore& store, const Cid& meta) {
  std::string path = meta_pack_path(repo, meta);
  if (::access(path.c_str(), F_OK) == 0) return true;
  Bytes out;
  Bytes header = car::encode_header({meta});
  put_varint(out, header.size());
  out.insert(out.end(), header.begin(), header.end());
  KeySet seen;
  try {
    // In the order a gateway sends the same DAG: what a lazy mount reads first comes first.
    walk_reachable(store, meta, seen, IfMissing::kThrow, [&](const Cid& cid, ByteView block) {
      const Bytes& id = cid.bytes();
      put_varint(out, id.size() + block.size());
      out.insert(out.end(), id.begin(), id.end());
      out.insert(out.end(), block.begin(), block.end());
      return true;
    });
  } catch (const NotFound&) {
    return false;
  }
  make_dirs(packs_dir(repo));
  // Not fsync'ed: a pack lost in a crash is written again, and one cut short reads as damaged.
  write_file_atomic(path, out, /*durable=*/false);
  return true;
}

bool write_image_pack(const Repo& repo, BlockStore& store, const Cid& root) noexcept {
  try {
    auto block = store.get(root);
    if (!block) return false;
    auto img = parse_image_root(root, *block);
    return img && write_meta_pack(repo, store, img->meta);
  } catch (const std::exception& e) {
    log::warn(std::string("writing the metadata pack of ") + root.str() + ": " + e.what());
    return false;
  }
}

bool read_meta_pack(const Repo& repo, const Cid& meta,
                    const std::function<void(const Cid&, ByteView)>& on_block) {
  std::string path = meta_pack_path(repo, meta);
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) {
    if (errno == ENOENT) return false;
    throw_errno("open " + path);
  }
  try {
    car::Reader reader(fd.get(), path);
    if (reader.roots().size() != 1 || reader.roots()[0] != meta) {
      throw Error(path + ": not the pack of " + meta.str());
    }
    Cid cid;
    Bytes block;
    while (reader.next(cid, block)) on_block(cid, block);  // verified by the reader
    return true;
  } catch (const Error& e) {
    log::warn(std::string("metadata pack removed: ") + e.what());
    ::unlink(path.c_str());
    return false;
  }
}

size_t sweep_meta_packs(const Repo& repo, BlockStore& store) {
  std::string dir = packs_dir(repo);
  UniqueFd dfd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dfd.valid()) {
    if (errno == ENOENT) return 0;
    throw_errno("open " + dir);
  }
  size_t removed = 0;
  for (const auto& name : dir_entries(dfd.get(), dir)) {
    std::optional<Cid> meta;
    size_t n = std::strlen(kSuffix);
    if (name.size() > n && name.compare(name.size() - n, n, kSuffix) == 0) {
      try {
        meta = Cid::parse(name.substr(0, name.size() - n));
      } catch (const Error&) {
        // not a pack's name: a writer's temporary file (gc holds the repository exclusively)
      }
    }
    if (meta && store.has(*meta)) continue;
    if (::unlinkat(dfd.get(), name.c_str(), 0) == 0 && meta) ++removed;
  }
  return removed;
}

}  // namespace cidrun::image
