#include "image/builder.h"

#include <algorithm>
#include <unordered_map>

#include "ipld/dagpb.h"
#include "ipld/unixfs_pb.h"
#include "unixfs/dag_builder.h"
#include "util/error.h"
#include "util/quote.h"

namespace cidrun::image {
namespace {

size_t hamt_prefix_len(uint64_t fanout) {
  size_t n = 0;
  for (uint64_t v = fanout - 1; v > 0; v >>= 4) ++n;
  return std::max<size_t>(n, 1);
}

// The dag-pb blocks of a file's DAG that have links (its root and inner nodes), depth first.
void file_structure(BlockStore& store, const Cid& cid, std::vector<Linked>& out, int depth) {
  if (cid.codec() != kCodecDagPb) return;
  if (depth > 64) throw Error(cid.str() + ": file DAG nested too deeply");
  auto block = store.get(cid);
  if (!block) throw NotFound("block " + cid.str() + " not found");
  dagpb::Node node = dagpb::decode(*block);
  if (node.links.empty()) return;
  out.push_back({cid, block->size()});
  for (const auto& l : node.links) file_structure(store, l.hash, out, depth + 1);
}

// A directory's own blocks: its node and, for a HAMT, every shard below it.
void dir_structure(BlockStore& store, const Cid& cid, std::vector<Linked>& out, int depth) {
  auto block = store.get(cid);
  if (!block) throw NotFound("block " + cid.str() + " not found");
  out.push_back({cid, block->size()});
  dagpb::Node node = dagpb::decode(*block);
  if (!node.data) return;
  unixfs_pb::Data d = unixfs_pb::decode(*node.data);
  if (d.type != unixfs_pb::Type::kHamtShard) return;
  if (depth > 64) throw Error(cid.str() + ": HAMT nested too deeply");
  size_t plen = hamt_prefix_len(d.fanout.value_or(256));
  for (const auto& l : node.links) {
    if (l.name && l.name->size() == plen) dir_structure(store, l.hash, out, depth + 1);
  }
}

unixfs::NodeInfo put_symlink(BlockStore& store, const std::string& target) {
  unixfs_pb::Data d;
  d.type = unixfs_pb::Type::kSymlink;
  d.data = to_bytes(target);
  dagpb::Node node;
  node.data = unixfs_pb::encode(d);
  return unixfs::put_dagpb(store, 1, dagpb::encode(node), 0, 0);
}

dagpb::Link structure_link(const Linked& l) {
  return {raw_alias(l.cid), std::nullopt, l.tsize};
}

// One name of a directory as the metadata node lists it: an entry with the structure blocks it
// brings, or a subdirectory link.
struct Item {
  std::string name;
  std::optional<MetaEntry> entry;
  std::vector<Linked> structure;
  std::optional<Linked> subdir;
};

size_t item_size(const Item& it) {
  size_t n = 0;
  if (it.entry) {
    DirMeta one;
    one.entries.push_back(*it.entry);
    n += encode_dir_meta(one).size();
  }
  n += it.structure.size() * 48;
  if (it.subdir) n += it.name.size() + 52;
  return n;
}

class Builder {
 public:
  Builder(BlockStore& store) : store_(store), dir_params_(image_dir_params()) {}

  BuiltImage build(const Tree& tree, const nlohmann::json& config) {
    // Pass 1: the first name of every hard-link group, in the canonical walk order.
    find_groups(tree.root(), "");
    auto [rootfs, meta] = build_dir(tree.root(), "", 0);
    header_.directories += 1;
    Bytes cfg = canonical_config(config);
    Cid cfg_cid = Cid::of(1, kCodecRaw, cfg);
    store_.put(cfg_cid, cfg);
    BuiltImage out;
    out.root = put_image_root(store_, header_, {cfg_cid, cfg.size()}, meta,
                              {rootfs.cid, rootfs.tsize}, std::nullopt);
    out.header = header_;
    out.rootfs = rootfs.cid;
    out.meta = meta.cid;
    return out;
  }

 private:
  struct Group {
    std::string first;
    uint64_t names = 0;
  };

  void find_groups(const Inode& dir, const std::string& path) {
    for (const auto& [name, child] : dir.children) {
      std::string p = path.empty() ? name : path + "/";
      if (!path.empty()) p += name;
      if (child.inode->kind == Kind::kDirectory) {
        find_groups(*child.inode, p);
        continue;
      }
      Group& g = groups_[child.inode.get()];
      if (g.names++ == 0) g.first = p;
    }
  }

  std::pair<unixfs::NodeInfo, Linked> build_dir(const Inode& dir, const std::string& path,
                                                size_t depth) {
    if (depth > kMaxDirDepth) throw Error("directories nested deeper than 256 levels");
    std::vector<unixfs::DirEntry> fs_entries;
    std::vector<Item> items;
    fs_entries.reserve(dir.children.size());
    items.reserve(dir.children.size());
    for (const auto& [name, child] : dir.children) {
      if (name.size() > kMaxNameLen) throw Error("name " + quote(name) + " is over 255 bytes");
      std::string p = path.empty() ? name : path + "/";
      if (!path.empty()) p += name;
      const Inode& n = *child.inode;
      Item it;
      it.name = name;
      if (n.kind == Kind::kDirectory) {
        auto [sub_fs, sub_meta] = build_dir(n, p, depth + 1);
        header_.directories += 1;
        fs_entries.push_back({name, sub_fs});
        it.subdir = sub_meta;
        items.push_back(std::move(it));
        continue;
      }
      MetaEntry e;
      e.name = name;
      auto g = groups_.find(&n);
      bool secondary = false;
      if (g != groups_.end() && g->second.names > 1) {
        if (g->second.first == p) {
          e.nlink = g->second.names;
        } else {
          secondary = true;
          e.type = EntryType::kHardlink;
          e.link = g->second.first;
        }
      }
      if (!secondary) {
        check_xattrs(n.attr.xattrs);
        e.attr = n.attr;
      }
      switch (n.kind) {
        case Kind::kFile:
          if (!secondary) {
            e.type = EntryType::kFile;
            file_structure(store_, n.content.cid, it.structure, 0);
            header_.content_bytes += n.content.filesize;
          }
          header_.files += 1;
          fs_entries.push_back({name, n.content});
          break;
        case Kind::kSymlink: {
          unixfs::NodeInfo link = put_symlink(store_, n.target);
          if (!secondary) {
            e.type = EntryType::kSymlink;
            e.attr.mode = 0777;
            it.structure.push_back({link.cid, link.tsize});
          }
          header_.symlinks += 1;
          fs_entries.push_back({name, link});
          break;
        }
        case Kind::kCharDevice:
        case Kind::kBlockDevice:
          if (!secondary) {
            e.type = n.kind == Kind::kCharDevice ? EntryType::kCharDevice : EntryType::kBlockDevice;
            e.major = n.major;
            e.minor = n.minor;
          }
          header_.specials += 1;
          break;
        case Kind::kFifo:
          if (!secondary) e.type = EntryType::kFifo;
          header_.specials += 1;
          break;
        case Kind::kDirectory:
          break;
      }
      it.entry = std::move(e);
      items.push_back(std::move(it));
    }
    unixfs::NodeInfo fs = unixfs::build_directory(store_, std::move(fs_entries), dir_params_, {});
    std::vector<Linked> own;
    dir_structure(store_, fs.cid, own, 0);
    Linked meta = put_meta(dir.attr, own, items);
    return {fs, meta};
  }

  // The metadata node of one directory: inline, or paged when it would pass the page limit.
  Linked put_meta(const Attr& self, const std::vector<Linked>& own, std::vector<Item>& items) {
    check_xattrs(self.xattrs);
    size_t total = 0;
    for (const auto& it : items) total += item_size(it);
    if (total + own.size() * 48 + 64 <= kMetaPageLimit - 4096) {
      return put_node(self, own, items.begin(), items.end());
    }
    dagpb::Node top;
    for (const auto& l : own) top.links.push_back(structure_link(l));
    size_t start = 0;
    while (start < items.size()) {
      size_t end = start;
      size_t size = 0;
      // Leave room for the framing and one more item's worst case.
      while (end < items.size() && (end == start || size + item_size(items[end]) <= 192 * 1024)) {
        size += item_size(items[end]);
        ++end;
      }
      Linked page = put_node(std::nullopt, {}, items.begin() + static_cast<long>(start),
                             items.begin() + static_cast<long>(end));
      top.links.push_back({page.cid, "/" + items[start].name, page.tsize});
      start = end;
    }
    DirMeta m;
    m.self = self;
    top.data = encode_dir_meta(m);
    sort_named(top);
    return store_node(top);
  }

  Linked put_node(const std::optional<Attr>& self, const std::vector<Linked>& own,
                  std::vector<Item>::iterator begin, std::vector<Item>::iterator end) {
    dagpb::Node node;
    DirMeta m;
    m.self = self;
    for (const auto& l : own) node.links.push_back(structure_link(l));
    for (auto it = begin; it != end; ++it) {
      if (it->entry) {
        m.entries.push_back(*it->entry);
        for (const auto& l : it->structure) node.links.push_back(structure_link(l));
      }
    }
    for (auto it = begin; it != end; ++it) {
      if (it->subdir) node.links.push_back({it->subdir->cid, it->name, it->subdir->tsize});
    }
    node.data = encode_dir_meta(m);
    sort_named(node);
    return store_node(node);
  }

  // dag-pb's canonical order: unnamed links first in their order, then named ones by name.
  static void sort_named(dagpb::Node& node) {
    std::stable_sort(node.links.begin(), node.links.end(),
                     [](const dagpb::Link& a, const dagpb::Link& b) {
                       return a.name.value_or("") < b.name.value_or("");
                     });
  }

  Linked store_node(const dagpb::Node& node) {
    Bytes block = dagpb::encode(node);
    if (block.size() > (1u << 20)) {
      throw Error("a directory's metadata does not fit in 1 MiB even when paged");
    }
    Cid cid = Cid::of(1, kCodecDagPb, block);
    store_.put(cid, block);
    uint64_t tsize = block.size();
    for (const auto& l : node.links) tsize += l.tsize.value_or(0);
    return {cid, tsize};
  }

  BlockStore& store_;
  unixfs::DirParams dir_params_;
  ImageHeader header_;
  // Every non-directory inode with its first name and name count (a group when more than one).
  std::unordered_map<const Inode*, Group> groups_;
};

}  // namespace

unixfs::LayoutParams image_layout() {
  unixfs::LayoutParams p;
  p.cid_version = 1;
  p.raw_leaves = true;
  p.max_links = 174;
  return p;
}

unixfs::DirParams image_dir_params() {
  unixfs::DirParams p;
  p.cid_version = 1;
  return p;
}

unixfs::NodeInfo store_file_content(BlockStore& store, unixfs::ByteSource& src) {
  auto chunker = unixfs::make_chunker(kImageChunker, src);
  return unixfs::build_file(store, *chunker, image_layout(), {});
}

Bytes canonical_config(const nlohmann::json& config) {
  if (!config.is_object()) throw Error("image config is not a JSON object");
  nlohmann::json c = config;
  c.erase("rootfs");
  for (const char* key : {"architecture", "os"}) {
    if (!c.contains(key) || !c[key].is_string() || c[key].get<std::string>().empty()) {
      throw Error(std::string("image config has no \"") + key + "\"");
    }
  }
  if (c.contains("history")) {
    if (!c["history"].is_array()) throw Error("image config history is not a list");
    for (auto& h : c["history"]) {
      if (!h.is_object()) throw Error("image config history entry is not an object");
      h.erase("empty_layer");
    }
  }
  std::string text;
  try {
    text = c.dump();
  } catch (const nlohmann::json::exception& e) {
    throw Error(std::string("image config cannot be written: ") + e.what());
  }
  if (text.size() > (1u << 20)) throw Error("image config is over 1 MiB");
  return to_bytes(text);
}

BuiltImage build_image(BlockStore& store, const Tree& tree, const nlohmann::json& config) {
  Builder b(store);
  return b.build(tree, config);
}

}  // namespace cidrun::image
