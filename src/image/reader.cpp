#include "image/reader.h"

#include <algorithm>
#include <map>
#include <unordered_map>

#include "unixfs/chunker.h"
#include "util/error.h"
#include "util/quote.h"

namespace cidrun::image {
namespace {

std::string join(const std::string& dir, const std::string& name) {
  return dir.empty() ? name : dir + "/" + name;
}

std::string where(const std::string& path) {
  return path.empty() ? std::string("the root directory") : quote(path);
}

}  // namespace

std::optional<ImageRoot> load_image_root(unixfs::Dag& dag, const Cid& cid) {
  if (cid.codec() != kCodecDagPb || cid.is_identity()) return std::nullopt;
  Bytes b = dag.block(cid);
  return parse_image_root(cid, b);
}

ImageReader::ImageReader(unixfs::Dag& dag, const Cid& root) : dag_(dag), cid_(root) {
  auto r = load_image_root(dag, root);
  if (!r) throw Error(root.str() + " is not a cidrun image");
  root_ = std::move(*r);
}

Bytes ImageReader::config_bytes() {
  return dag_.block(root_.config);
}

nlohmann::json ImageReader::config() {
  Bytes b = config_bytes();
  nlohmann::json j = nlohmann::json::parse(b.begin(), b.end(), nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) throw Error(root_.config.str() + ": the image config is not a JSON object");
  return j;
}

DirView ImageReader::read_root() {
  return read_dir(root_.meta, root_.rootfs, "");
}

namespace {

// An entry's node, without reading it when it is a raw block: a raw block is a whole file with
// no UnixFS metadata and its link's Tsize is its size. A lazy mount must not fetch every file of
// a directory to list it; the size claim is checked when the file is read (a reader refuses a
// file whose bytes disagree with its listed size), and a claim no block could hold is stat'ed.
unixfs::NodeStat entry_stat(unixfs::Dag& dag, const unixfs::DirEntryRef& e) {
  if (e.cid.codec() == kCodecRaw && !e.cid.is_identity() && e.tsize &&
      *e.tsize <= unixfs::kMaxChunkSize) {
    unixfs::NodeStat s;
    s.cid = e.cid;
    s.kind = unixfs::NodeKind::kFile;
    s.size = *e.tsize;
    s.block_size = *e.tsize;
    return s;
  }
  return dag.stat(e.cid);
}

}  // namespace

DirView ImageReader::read_dir(const Cid& meta, const Cid& unixfs_dir, const std::string& path) {
  auto fail = [&](const std::string& why) {
    return Error("image " + cid_.str() + ", " + where(path) + ": " + why);
  };
  MetaNode top = parse_meta_node(meta, dag_.block(meta), MetaNodeKind::kDirectory);
  DirView view;
  view.self = *top.meta.self;
  std::vector<MetaEntry> entries = std::move(top.meta.entries);
  std::vector<std::pair<std::string, Cid>> subdirs = std::move(top.subdirs);
  for (size_t i = 0; i < top.pages.size(); ++i) {
    // (Named references, not a structured binding: the lambda below captures first.)
    const std::string& first = top.pages[i].first;
    const Cid& page_cid = top.pages[i].second;
    MetaNode page = parse_meta_node(page_cid, dag_.block(page_cid), MetaNodeKind::kPage);
    const std::string* next = i + 1 < top.pages.size() ? &top.pages[i + 1].first : nullptr;
    auto in_range = [&](const std::string& n) { return n >= first && (!next || n < *next); };
    bool has_first = false;
    for (auto& e : page.meta.entries) {
      if (!in_range(e.name))
        throw fail("page " + page_cid.str() + " holds a name out of its range");
      has_first |= e.name == first;
      entries.push_back(std::move(e));
    }
    for (auto& s : page.subdirs) {
      if (!in_range(s.first))
        throw fail("page " + page_cid.str() + " holds a name out of its range");
      has_first |= s.first == first;
      subdirs.push_back(std::move(s));
    }
    if (!has_first) throw fail("page " + page_cid.str() + " lacks the name it is linked by");
  }

  // The UnixFS side, by name.
  std::map<std::string, unixfs::DirEntryRef> fs;
  dag_.list(unixfs_dir, [&](const unixfs::DirEntryRef& e) {
    if (!fs.emplace(e.name, e).second) throw fail("the UnixFS directory repeats " + quote(e.name));
  });

  view.entries.reserve(entries.size() + subdirs.size());
  for (auto& [name, sub_meta] : subdirs) {
    auto it = fs.find(name);
    if (it == fs.end()) throw fail("metadata names a directory " + quote(name) + " the tree lacks");
    unixfs::NodeStat st = entry_stat(dag_, it->second);
    if (st.kind != unixfs::NodeKind::kDirectory || st.mode || st.mtime) {
      throw fail(quote(name) + " is a directory in the metadata, not in the tree");
    }
    DirEntryView v;
    v.name = name;
    v.kind = Kind::kDirectory;
    v.node = it->second.cid;
    v.meta = sub_meta;
    view.entries.push_back(std::move(v));
    fs.erase(it);
  }
  for (auto& e : entries) {
    DirEntryView v;
    v.name = e.name;
    v.attr = std::move(e.attr);
    v.major = e.major;
    v.minor = e.minor;
    if (e.nlink) v.nlink = e.nlink;
    auto it = fs.find(e.name);
    bool in_tree = it != fs.end();
    switch (e.type) {
      case EntryType::kFile:
      case EntryType::kSymlink: {
        if (!in_tree) throw fail(quote(e.name) + " is in the metadata, not in the tree");
        unixfs::NodeStat st = entry_stat(dag_, it->second);
        bool want_file = e.type == EntryType::kFile;
        if ((want_file && st.kind != unixfs::NodeKind::kFile) ||
            (!want_file && st.kind != unixfs::NodeKind::kSymlink) || st.mode || st.mtime) {
          throw fail(quote(e.name) + " has another type (or UnixFS metadata) in the tree");
        }
        v.kind = want_file ? Kind::kFile : Kind::kSymlink;
        v.node = it->second.cid;
        v.size = st.size;
        v.target = st.symlink_target;
        break;
      }
      case EntryType::kCharDevice:
      case EntryType::kBlockDevice:
      case EntryType::kFifo:
        if (in_tree) throw fail(quote(e.name) + " is a special file but the tree holds it");
        v.kind = e.type == EntryType::kFifo         ? Kind::kFifo
                 : e.type == EntryType::kCharDevice ? Kind::kCharDevice
                                                    : Kind::kBlockDevice;
        break;
      case EntryType::kHardlink:
        v.hardlink = e.link;
        if (in_tree) {
          // File or symlink: the walker checks it against the group's first name.
          unixfs::NodeStat st = entry_stat(dag_, it->second);
          if (st.kind == unixfs::NodeKind::kDirectory || st.mode || st.mtime) {
            throw fail(quote(e.name) + " is a hard link but a directory in the tree");
          }
          v.kind = st.kind == unixfs::NodeKind::kFile ? Kind::kFile : Kind::kSymlink;
          v.node = it->second.cid;
          v.size = st.size;
          v.target = st.symlink_target;
        } else {
          v.kind = Kind::kFifo;  // a special file; the walker takes its type from the first name
        }
        break;
    }
    if (in_tree) fs.erase(it);
    view.entries.push_back(std::move(v));
  }
  if (!fs.empty()) {
    throw fail("the tree holds " + quote(fs.begin()->first) + ", which the metadata lacks");
  }
  std::sort(view.entries.begin(), view.entries.end(),
            [](const DirEntryView& a, const DirEntryView& b) { return a.name < b.name; });
  return view;
}

namespace {

class Walker {
 public:
  Walker(ImageReader& r, const ImageVisitor& v) : r_(r), v_(v) {}

  void walk_dir(const Cid& meta, const Cid& fs, const std::string& path, size_t depth) {
    if (depth > kMaxDirDepth) throw Error("image directories nested deeper than 256 levels");
    DirView dir = r_.read_dir(meta, fs, path);
    if (v_.enter) v_.enter(path, dir);
    for (auto& e : dir.entries) {
      std::string p = join(path, e.name);
      if (e.kind == Kind::kDirectory) {
        walk_dir(e.meta, e.node, p, depth + 1);
        continue;
      }
      if (!e.hardlink.empty()) {
        resolve_hardlink(p, e);
      } else if (e.nlink > 1) {
        firsts_.emplace(p, e);
      }
      if (v_.entry) v_.entry(p, e);
    }
    if (v_.leave) v_.leave(path, dir);
  }

 private:
  // A secondary name takes its inode's type and attributes from the group's first name, which
  // the canonical order puts before it.
  void resolve_hardlink(const std::string& p, DirEntryView& e) {
    auto it = firsts_.find(e.hardlink);
    if (it == firsts_.end()) {
      throw Error("image " + r_.cid().str() + ", " + quote(p) + ": hard link to " +
                  quote(e.hardlink) + ", which is not the first name of a group before it");
    }
    const DirEntryView& f = it->second;
    bool in_tree = e.node.valid();
    bool special = f.kind != Kind::kFile && f.kind != Kind::kSymlink;
    if (in_tree == special || (in_tree && e.node != f.node)) {
      throw Error("image " + r_.cid().str() + ", " + quote(p) +
                  ": hard link does not match its group's first name " + quote(e.hardlink));
    }
    e.kind = f.kind;
    e.attr = f.attr;
    e.major = f.major;
    e.minor = f.minor;
    e.size = f.size;
    e.target = f.target;
    e.nlink = f.nlink;
  }

  ImageReader& r_;
  const ImageVisitor& v_;
  std::unordered_map<std::string, DirEntryView> firsts_;
};

}  // namespace

void walk_image(ImageReader& reader, const ImageVisitor& visitor) {
  Walker w(reader, visitor);
  w.walk_dir(reader.root().meta, reader.root().rootfs, "", 0);
}

}  // namespace cidrun::image
