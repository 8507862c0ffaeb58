#include "image/layer.h"

#include "image/builder.h"
#include "util/error.h"
#include "util/log.h"
#include "util/quote.h"

namespace cidrun::image {
namespace {

constexpr std::string_view kWhiteoutPrefix = ".wh.";
constexpr std::string_view kOpaqueMarker = ".wh..wh..opq";

std::pair<std::string_view, std::string_view> split_last(std::string_view path) {
  auto slash = path.rfind('/');
  if (slash == std::string_view::npos) return {"", path};
  return {path.substr(0, slash), path.substr(slash + 1)};
}

Kind kind_of(TarEntryType t) {
  switch (t) {
    case TarEntryType::directory:
      return Kind::kDirectory;
    case TarEntryType::symlink:
      return Kind::kSymlink;
    case TarEntryType::char_device:
      return Kind::kCharDevice;
    case TarEntryType::block_device:
      return Kind::kBlockDevice;
    case TarEntryType::fifo:
      return Kind::kFifo;
    case TarEntryType::regular:
    case TarEntryType::hard_link:
      break;
  }
  return Kind::kFile;
}

}  // namespace

LayerStats apply_layer(Tree& tree, BlockStore& store, TarReader& tar, uint32_t layer) {
  LayerStats stats;
  TarEntry e;
  while (tar.next(e)) {
    ++stats.entries;
    try {
      auto [dir, name] = split_last(e.path);
      if (name.starts_with(kWhiteoutPrefix)) {
        ++stats.whiteouts;
        if (name == kOpaqueMarker) {
          tree.opaque(dir, layer);
        } else if (name.starts_with(".wh..wh.")) {
          // Other ".wh..wh." names are reserved by the spec (AUFS kept hard-link state in them):
          // they hide nothing and are not part of the tree.
        } else {
          tree.whiteout(dir, name.substr(kWhiteoutPrefix.size()), layer);
        }
        continue;
      }
      if (e.type == TarEntryType::hard_link) {
        tree.link(e.path, e.link_target, layer);
        continue;
      }
      Attr a;
      a.mode = e.mode & 07777;
      a.uid = e.uid;
      a.gid = e.gid;
      a.mtime_sec = e.mtime_sec;
      a.mtime_nsec = e.mtime_nsec;
      for (auto& [xname, value] : e.xattrs) {
        if (!storable_xattr(xname)) {
          if (stats.xattrs_dropped++ == 0) {
            log::warn("layer " + std::to_string(layer) + ": xattr " + quote(xname) + " of " +
                      quote(e.path) + " is not kept in images: dropped (and any other such)");
          }
          continue;
        }
        a.xattrs.push_back({xname, value});
      }
      check_xattrs(a.xattrs);
      Kind k = kind_of(e.type);
      if (k == Kind::kSymlink) a.mode = 0777;
      InodePtr n = make_inode(k, a);
      if (k == Kind::kFile) {
        unixfs::ByteSource src([&tar](uint8_t* buf, size_t len) { return tar.read(buf, len); },
                               e.path, e.size);
        n->content = store_file_content(store, src);
        if (n->content.filesize != e.size) {
          throw Error("content is " + std::to_string(n->content.filesize) + " bytes, not " +
                      std::to_string(e.size));
        }
        stats.file_bytes += e.size;
      } else if (k == Kind::kSymlink) {
        if (e.link_target.empty()) throw Error("symlink with an empty target");
        n->target = e.link_target;
      } else if (k == Kind::kCharDevice || k == Kind::kBlockDevice) {
        n->major = e.dev_major;
        n->minor = e.dev_minor;
      }
      tree.put(e.path, std::move(n), layer);
    } catch (const Error& err) {
      throw Error("layer " + std::to_string(layer) + ", " +
                  (e.path.empty() ? std::string("the root entry") : quote(e.path)) + ": " +
                  err.what());
    }
  }
  return stats;
}

}  // namespace cidrun::image
