#include "image/tree.h"

#include <deque>
#include <vector>

#include "util/error.h"
#include "util/quote.h"

namespace cidrun::image {
namespace {

// How many symlinks one path may cross (Linux's own limit is 40).
constexpr int kMaxSymlinks = 40;

std::deque<std::string> components(std::string_view path) {
  std::deque<std::string> out;
  size_t i = 0;
  while (i <= path.size()) {
    size_t j = path.find('/', i);
    if (j == std::string_view::npos) j = path.size();
    if (j > i) out.emplace_back(path.substr(i, j - i));
    i = j + 1;
  }
  return out;
}

}  // namespace

InodePtr make_inode(Kind kind, const Attr& attr) {
  auto n = std::make_shared<Inode>();
  n->kind = kind;
  n->attr = attr;
  return n;
}

Tree::Tree() : root_(make_inode(Kind::kDirectory, Attr{.mode = 0755})) {}

Inode* Tree::resolve_dir(std::string_view path, bool create, uint32_t layer, int& symlinks_left) {
  std::vector<Inode*> stack{root_.get()};
  std::deque<std::string> todo = components(path);
  while (!todo.empty()) {
    std::string c = std::move(todo.front());
    todo.pop_front();
    if (c == ".") continue;
    if (c == "..") {
      if (stack.size() > 1) stack.pop_back();
      continue;
    }
    Inode* cur = stack.back();
    auto it = cur->children.find(c);
    if (it == cur->children.end()) {
      if (!create) return nullptr;
      if (c.size() > kMaxNameLen) throw Error("name " + quote(c) + " is longer than 255 bytes");
      if (stack.size() > kMaxDirDepth) throw Error("directories nested deeper than 256 levels");
      InodePtr d = make_inode(Kind::kDirectory, Attr{.mode = 0755});
      cur->children.emplace(c, Child{d, layer});
      stack.push_back(d.get());
      continue;
    }
    Inode* n = it->second.inode.get();
    if (n->kind == Kind::kDirectory) {
      if (stack.size() > kMaxDirDepth) throw Error("directories nested deeper than 256 levels");
      stack.push_back(n);
      continue;
    }
    if (n->kind == Kind::kSymlink) {
      // Followed inside the tree: an absolute target starts again at the tree's root, ".." never
      // climbs above it. This is what a layer applied with a root-confined resolver does.
      if (--symlinks_left < 0) throw Error("too many levels of symbolic links");
      std::deque<std::string> target = components(n->target);
      if (!n->target.empty() && n->target[0] == '/') stack.resize(1);
      todo.insert(todo.begin(), target.begin(), target.end());
      continue;
    }
    throw Error(quote(c) + " is not a directory");
  }
  return stack.back();
}

Tree::Resolved Tree::resolve_parent(std::string_view path, bool create, uint32_t layer) {
  auto slash = path.rfind('/');
  std::string_view parent = slash == std::string_view::npos ? "" : path.substr(0, slash);
  std::string name(slash == std::string_view::npos ? path : path.substr(slash + 1));
  if (name.empty() || name == "." || name == "..") {
    throw Error("path " + quote(path) + " does not end in a name");
  }
  if (name.size() > kMaxNameLen) throw Error("name " + quote(name) + " is longer than 255 bytes");
  int budget = kMaxSymlinks;
  Inode* dir = resolve_dir(parent, create, layer, budget);
  return {dir, std::move(name)};
}

void Tree::put(std::string_view path, InodePtr inode, uint32_t layer) {
  if (path.empty()) {
    if (inode->kind != Kind::kDirectory) throw Error("the root entry is not a directory");
    root_->attr = inode->attr;
    return;
  }
  Resolved r = resolve_parent(path, true, layer);
  auto it = r.dir->children.find(r.name);
  if (it != r.dir->children.end() && it->second.inode->kind == Kind::kDirectory &&
      inode->kind == Kind::kDirectory) {
    it->second.inode->attr = inode->attr;
    it->second.layer = layer;
    return;
  }
  r.dir->children[r.name] = Child{std::move(inode), layer};
}

void Tree::link(std::string_view path, std::string_view target, uint32_t layer) {
  InodePtr t = find(target);
  if (!t) {
    throw Error("hard link " + quote(path) + " names " + quote(target) +
                ", which does not exist (yet)");
  }
  if (t->kind == Kind::kDirectory) {
    throw Error("hard link " + quote(path) + " names the directory " + quote(target));
  }
  if (path.empty()) throw Error("a hard link replaces the root");
  Resolved r = resolve_parent(path, true, layer);
  r.dir->children[r.name] = Child{std::move(t), layer};
}

void Tree::whiteout(std::string_view dir, std::string_view name, uint32_t layer) {
  if (name.empty() || name == "." || name == "..") {
    throw Error("whiteout of " + quote(name) + " in " + quote(dir));
  }
  int budget = kMaxSymlinks;
  Inode* d = resolve_dir(dir, false, layer, budget);
  if (!d) return;
  auto it = d->children.find(std::string(name));
  if (it != d->children.end() && it->second.layer < layer) d->children.erase(it);
}

void Tree::opaque(std::string_view dir, uint32_t layer) {
  int budget = kMaxSymlinks;
  Inode* d = resolve_dir(dir, true, layer, budget);
  for (auto it = d->children.begin(); it != d->children.end();) {
    if (it->second.layer < layer) {
      it = d->children.erase(it);
    } else {
      ++it;
    }
  }
}

InodePtr Tree::find(std::string_view path) {
  if (path.empty()) return root_;
  auto slash = path.rfind('/');
  std::string_view parent = slash == std::string_view::npos ? "" : path.substr(0, slash);
  std::string name(slash == std::string_view::npos ? path : path.substr(slash + 1));
  int budget = kMaxSymlinks;
  Inode* d = resolve_dir(parent, false, 0, budget);
  if (!d) return nullptr;
  auto it = d->children.find(name);
  return it == d->children.end() ? nullptr : it->second.inode;
}

}  // namespace cidrun::image
