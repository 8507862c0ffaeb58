#include "image/image.h"

#include <algorithm>

#include "ipld/dagpb.h"
#include "unixfs/exporter.h"
#include "util/error.h"

namespace cidrun::image {
namespace {

Linked put_node(BlockStore& store, const dagpb::Node& node) {
  Bytes block = dagpb::encode(node);
  if (block.size() > (1u << 20))
    throw Error("image block over 1 MiB (" + std::to_string(block.size()) + " bytes)");
  Cid cid = Cid::of(1, kCodecDagPb, block);
  store.put(cid, block);
  uint64_t tsize = block.size();
  for (const auto& l : node.links) tsize += l.tsize.value_or(0);
  return {cid, tsize};
}

}  // namespace

Cid raw_alias(const Cid& cid) {
  return Cid::v1(kCodecRaw, cid.hash_code(), cid.digest());
}

std::optional<ImageRoot> parse_image_root(const Cid& cid, ByteView block) {
  if (cid.codec() != kCodecDagPb) return std::nullopt;
  dagpb::Node node;
  try {
    node = dagpb::decode(block);
  } catch (const Error&) {
    return std::nullopt;  // not dag-pb at all: the caller's own decoder reports it
  }
  if (!node.data) return std::nullopt;
  std::optional<ImageHeader> header;
  try {
    header = decode_header(*node.data);
  } catch (const Error& e) {
    throw Error(cid.str() + ": " + e.what());
  }
  if (!header) return std::nullopt;
  auto bad = [&](const std::string& why) { return Error(cid.str() + ": invalid image: " + why); };
  ImageRoot root;
  root.header = *header;
  bool have_config = false;
  bool have_meta = false;
  bool have_rootfs = false;
  std::string last;
  for (const auto& l : node.links) {
    if (!l.name) throw bad("a link without a name");
    if (!last.empty() && !(last < *l.name)) throw bad("links not sorted or repeated");
    last = *l.name;
    if (*l.name == "config") {
      if (l.hash.codec() != kCodecRaw) throw bad("the config is not a raw block");
      root.config = l.hash;
      have_config = true;
    } else if (*l.name == "meta") {
      if (l.hash.codec() != kCodecDagPb) throw bad("the metadata is not dag-pb");
      root.meta = l.hash;
      have_meta = true;
    } else if (*l.name == "rootfs") {
      if (l.hash.codec() != kCodecDagPb) throw bad("the root filesystem is not dag-pb");
      root.rootfs = l.hash;
      have_rootfs = true;
    } else if (*l.name == "startset") {
      if (l.hash.codec() != kCodecDagPb) throw bad("the start set is not dag-pb");
      root.startset = l.hash;
    } else {
      throw bad("unknown link '" + *l.name + "'");
    }
  }
  if (!have_config || !have_meta || !have_rootfs) throw bad("config, meta or rootfs missing");
  return root;
}

Linked put_image_root(BlockStore& store, const ImageHeader& header, const Linked& config,
                      const Linked& meta, const Linked& rootfs,
                      const std::optional<Linked>& startset) {
  dagpb::Node node;
  node.links.push_back({config.cid, std::string("config"), config.tsize});
  node.links.push_back({meta.cid, std::string("meta"), meta.tsize});
  node.links.push_back({rootfs.cid, std::string("rootfs"), rootfs.tsize});
  if (startset) node.links.push_back({startset->cid, std::string("startset"), startset->tsize});
  node.data = encode_header(header);
  return put_node(store, node);
}

MetaNode parse_meta_node(const Cid& cid, ByteView block, MetaNodeKind kind) {
  auto bad = [&](const std::string& why) {
    return Error(cid.str() + ": invalid image metadata: " + why);
  };
  if (cid.codec() != kCodecDagPb) throw bad("not a dag-pb block");
  MetaNode m;
  dagpb::Node node;
  try {
    node = dagpb::decode(block);
    if (!node.data) throw Error("no data");
    m.meta = decode_dir_meta(*node.data);
  } catch (const Error& e) {
    throw bad(e.what());
  }
  if (kind == MetaNodeKind::kDirectory && !m.meta.self)
    throw bad("the directory's own attributes are missing");
  if (kind == MetaNodeKind::kPage && m.meta.self) throw bad("a page carries directory attributes");
  bool named_seen = false;
  std::string last;
  for (auto& l : node.links) {
    if (!l.name) {
      if (named_seen) throw bad("an unnamed link after named ones");
      if (l.hash.codec() != kCodecRaw) throw bad("a structure link is not a raw-codec CID");
      m.structure.push_back(l.hash);
      continue;
    }
    if (named_seen && !(last < *l.name)) throw bad("links not sorted or repeated");
    named_seen = true;
    last = *l.name;
    if (l.hash.codec() != kCodecDagPb) throw bad("a metadata link is not dag-pb");
    if (!l.name->empty() && (*l.name)[0] == '/') {
      std::string first = l.name->substr(1);
      if (!unixfs::is_safe_name(first)) throw bad("a page link names no valid first name");
      m.pages.emplace_back(std::move(first), l.hash);
    } else {
      if (!unixfs::is_safe_name(*l.name) || l.name->size() > kMaxNameLen) {
        throw bad("unsafe subdirectory name");
      }
      m.subdirs.emplace_back(*l.name, l.hash);
    }
  }
  if (!m.pages.empty()) {
    if (kind == MetaNodeKind::kPage) throw bad("pages do not nest");
    if (!m.meta.entries.empty() || !m.subdirs.empty()) {
      throw bad("a paged directory holds entries of its own");
    }
  }
  // Entries and subdirectories share one name space.
  for (const auto& [name, sub] : m.subdirs) {
    auto it = std::lower_bound(m.meta.entries.begin(), m.meta.entries.end(), name,
                               [](const MetaEntry& e, const std::string& n) { return e.name < n; });
    if (it != m.meta.entries.end() && it->name == name) {
      throw bad("'" + name + "' is both a directory and an entry");
    }
  }
  return m;
}

StartSet parse_start_set(const Cid& cid, ByteView block) {
  auto bad = [&](const std::string& why) {
    return Error(cid.str() + ": invalid start set: " + why);
  };
  if (cid.codec() != kCodecDagPb) throw bad("not a dag-pb block");
  StartSet s;
  try {
    dagpb::Node node = dagpb::decode(block);
    s.command = decode_start_set(node.data ? ByteView(*node.data) : ByteView());
    if (node.links.size() > kMaxStartSetLinks) throw Error("too many links");
    for (auto& l : node.links) {
      if (l.name || l.hash.codec() != kCodecRaw) throw Error("a link is named or not raw");
      s.blocks.push_back(std::move(l.hash));
    }
  } catch (const Error& e) {
    throw bad(e.what());
  }
  return s;
}

Linked put_start_set(BlockStore& store, const StartSet& set,
                     const std::vector<uint64_t>& block_sizes) {
  if (set.blocks.size() > kMaxStartSetLinks)
    throw Error("start set over " + std::to_string(kMaxStartSetLinks) + " blocks");
  dagpb::Node node;
  for (size_t i = 0; i < set.blocks.size(); ++i) {
    node.links.push_back({raw_alias(set.blocks[i]), std::nullopt, block_sizes.at(i)});
  }
  node.data = encode_start_set(set.command);
  return put_node(store, node);
}

}  // namespace cidrun::image
