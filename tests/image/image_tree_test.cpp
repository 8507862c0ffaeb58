// Trees, images built from them, and images read back: layer semantics (whiteouts, opaque
// directories, hard links, symlinks in parent paths), the builder's blocks (kubo's UnixFS for the
// files, paged metadata, HAMT structure links) and the reader's checks, and a full-fidelity
// unpack onto the real filesystem.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>

#include "image/builder.h"
#include "image/dir_import.h"
#include "image/reader.h"
#include "image/tree.h"
#include "image/tree_helpers.h"
#include "image/unpack.h"
#include "ipld/dagpb.h"
#include "store/memstore.h"
#include "unixfs/chunker.h"
#include "unixfs/importer.h"
#include "util/error.h"

namespace cidrun::image {
namespace {

namespace fs = std::filesystem;

using testing::file_with;

InodePtr dir_node(uint32_t mode = 0755) {
  return make_inode(Kind::kDirectory, Attr{.mode = mode});
}

InodePtr symlink_to(const std::string& target) {
  InodePtr n = make_inode(Kind::kSymlink, Attr{.mode = 0777});
  n->target = target;
  return n;
}

nlohmann::json config() {
  return {{"architecture", "amd64"}, {"os", "linux"}, {"config", {{"Cmd", {"/bin/sh"}}}}};
}

// Every non-directory path of an image with what the walker says of it.
std::map<std::string, DirEntryView> walk_all(ImageReader& r) {
  std::map<std::string, DirEntryView> out;
  ImageVisitor v;
  v.entry = [&](const std::string& p, const DirEntryView& e) { out[p] = e; };
  walk_image(r, v);
  return out;
}

class TreeTest : public ::testing::Test {
 protected:
  MemoryStore store_;
  Tree tree_;
};

TEST_F(TreeTest, WhiteoutsHideLowerLayersOnly) {
  tree_.put("a", file_with(store_, "lower"), 1);
  tree_.put("b", file_with(store_, "same layer"), 2);
  tree_.whiteout("", "a", 2);
  tree_.whiteout("", "b", 2);        // b came from layer 2 itself: stays
  tree_.whiteout("", "missing", 2);  // nothing to hide: fine
  EXPECT_FALSE(tree_.find("a"));
  EXPECT_TRUE(tree_.find("b"));
  EXPECT_THROW(tree_.whiteout("", "..", 2), Error);
  EXPECT_THROW(tree_.whiteout("", ".", 2), Error);
}

TEST_F(TreeTest, OpaqueDirectoriesDropLowerChildren) {
  tree_.put("d", dir_node(), 1);
  tree_.put("d/old", file_with(store_, "old"), 1);
  tree_.put("d/new", file_with(store_, "new"), 2);
  tree_.opaque("d", 2);
  EXPECT_FALSE(tree_.find("d/old"));
  EXPECT_TRUE(tree_.find("d/new"));
}

TEST_F(TreeTest, DirectoriesMergeOtherTypesReplace) {
  tree_.put("d", dir_node(0755), 1);
  tree_.put("d/x", file_with(store_, "x"), 1);
  tree_.put("d", dir_node(0700), 2);
  ASSERT_TRUE(tree_.find("d/x"));
  EXPECT_EQ(tree_.find("d")->attr.mode, 0700u);
  tree_.put("d", file_with(store_, "now a file"), 3);
  EXPECT_EQ(tree_.find("d")->kind, Kind::kFile);
  EXPECT_THROW(tree_.put("d/y", file_with(store_, "y"), 3), Error);  // d is not a directory
}

TEST_F(TreeTest, SymlinksInParentsStayInsideTheTree) {
  tree_.put("usr", dir_node(), 1);
  tree_.put("usr/bin", dir_node(), 1);
  tree_.put("bin", symlink_to("usr/bin"), 1);
  tree_.put("abs", symlink_to("/usr"), 1);
  tree_.put("up", symlink_to("../../../../usr"), 1);
  tree_.put("bin/a", file_with(store_, "a"), 2);
  tree_.put("abs/bin/b", file_with(store_, "b"), 2);
  tree_.put("up/bin/c", file_with(store_, "c"), 2);
  EXPECT_TRUE(tree_.find("usr/bin/a"));
  EXPECT_TRUE(tree_.find("usr/bin/b"));
  EXPECT_TRUE(tree_.find("usr/bin/c"));
  // The link itself is never followed when it is the last component.
  EXPECT_EQ(tree_.find("bin")->kind, Kind::kSymlink);
  tree_.put("loop", symlink_to("loop"), 1);
  EXPECT_THROW(tree_.put("loop/x", file_with(store_, "x"), 2), Error);
}

TEST_F(TreeTest, HardLinksNeedAnExistingNonDirectoryTarget) {
  tree_.put("f", file_with(store_, "content"), 1);
  tree_.link("g", "f", 1);
  EXPECT_EQ(tree_.find("g"), tree_.find("f"));
  EXPECT_THROW(tree_.link("h", "later", 1), Error);
  tree_.put("d", dir_node(), 1);
  EXPECT_THROW(tree_.link("h", "d", 1), Error);
  // Replacing one name keeps the other on the old inode, as on a real filesystem.
  InodePtr old = tree_.find("f");
  tree_.put("f", file_with(store_, "new"), 2);
  EXPECT_EQ(tree_.find("g"), old);
}

class ImageBuildTest : public TreeTest {
 protected:
  void SetUp() override {
    Attr owned{.mode = 04755, .uid = 0, .gid = 42, .mtime_sec = 1700000000, .mtime_nsec = 5};
    // VFS_CAP_REVISION_2 with the effective bit, permitted = CAP_NET_RAW (what setcap writes).
    Bytes cap(20, 0);
    cap[0] = 1;
    cap[3] = 2;
    cap[5] = 0x20;
    owned.xattrs = {{"security.capability", cap}};
    tree_.put("bin", dir_node(), 1);
    tree_.put("bin/busybox", file_with(store_, std::string(700000, 'b'), owned), 1);
    tree_.link("bin/sh", "bin/busybox", 1);
    tree_.put("bin/ls", symlink_to("busybox"), 1);
    InodePtr null = make_inode(Kind::kCharDevice, Attr{.mode = 0666});
    null->major = 1;
    null->minor = 3;
    tree_.put("dev/null", null, 1);
    tree_.put("fifo", make_inode(Kind::kFifo, Attr{.mode = 0600, .uid = 7}), 1);
    tree_.put("etc/hostname", file_with(store_, "box\n", Attr{.mode = 0644, .uid = 1, .gid = 2}),
              1);
    tree_.put("empty", file_with(store_, ""), 1);
  }
};

TEST_F(ImageBuildTest, BuildsDeterministicallyAndReadsBack) {
  BuiltImage a = build_image(store_, tree_, config());
  BuiltImage b = build_image(store_, tree_, config());
  EXPECT_EQ(a.root.cid, b.root.cid);
  EXPECT_EQ(a.header.files, 4u);  // busybox, sh, hostname, empty
  EXPECT_EQ(a.header.symlinks, 1u);
  EXPECT_EQ(a.header.specials, 2u);
  EXPECT_EQ(a.header.content_bytes, 700000u + 4u);

  unixfs::Dag dag(store_);
  ImageReader r(dag, a.root.cid);
  EXPECT_EQ(r.config()["config"]["Cmd"][0], "/bin/sh");
  auto all = walk_all(r);
  ASSERT_EQ(all.size(), 7u);
  const auto& bb = all["bin/busybox"];
  EXPECT_EQ(bb.attr.mode, 04755u);
  EXPECT_EQ(bb.attr.gid, 42u);
  EXPECT_EQ(bb.attr.mtime_nsec, 5u);
  EXPECT_EQ(bb.nlink, 2u);
  ASSERT_EQ(bb.attr.xattrs.size(), 1u);
  const auto& sh = all["bin/sh"];
  EXPECT_EQ(sh.hardlink, "bin/busybox");
  EXPECT_EQ(sh.node, bb.node);
  EXPECT_EQ(sh.attr, bb.attr);  // the walker gives a secondary name its inode's attributes
  EXPECT_EQ(all["bin/ls"].target, "busybox");
  EXPECT_EQ(all["dev/null"].kind, Kind::kCharDevice);
  EXPECT_EQ(all["dev/null"].minor, 3u);
  EXPECT_EQ(all["fifo"].attr.uid, 7u);
  EXPECT_EQ(all["empty"].size, 0u);

  // Another mtime changes the metadata, never the files or the UnixFS tree.
  tree_.find("etc/hostname")->attr.mtime_sec = 1;
  BuiltImage c = build_image(store_, tree_, config());
  EXPECT_NE(c.root.cid, a.root.cid);
  EXPECT_NE(c.meta, a.meta);
  EXPECT_EQ(c.rootfs, a.rootfs);
}

TEST_F(ImageBuildTest, TheConfigIsCanonical) {
  nlohmann::json cfg = config();
  cfg["rootfs"] = {{"type", "layers"}, {"diff_ids", {"sha256:00"}}};
  cfg["history"] = {{{"created_by", "x"}, {"empty_layer", true}}};
  Bytes canon = canonical_config(cfg);
  std::string text(canon.begin(), canon.end());
  EXPECT_EQ(text.find("rootfs"), std::string::npos);
  EXPECT_EQ(text.find("empty_layer"), std::string::npos);
  EXPECT_EQ(text.find(' '), std::string::npos);
  EXPECT_THROW(canonical_config(nlohmann::json::array()), Error);
  EXPECT_THROW(canonical_config({{"os", "linux"}}), Error);
}

TEST(ImageBuild, RootfsIsWhatAddMakesWithCidV1) {
  // The UnixFS side of an image is `ipfs add -r --cid-version 1 --hidden` of the same files.
  fs::path dir = fs::temp_directory_path() / ("cidrun-img-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir / "sub" / ".hidden");
  std::ofstream(dir / "a") << "alpha";
  std::ofstream(dir / "sub" / "big") << std::string(600000, 'z');
  std::ofstream(dir / "sub" / ".hidden" / "h") << "";
  fs::create_symlink("../a", dir / "sub" / "link");
  MemoryStore store;
  Tree tree;
  read_directory(tree, store, dir.string());
  BuiltImage img = build_image(store, tree, config());

  unixfs::ImportOptions o;
  o.layout.cid_version = 1;
  o.layout.raw_leaves = true;
  o.dir.cid_version = 1;
  o.recursive = true;
  o.hidden = true;
  unixfs::Importer imp(store, o, nullptr);
  unixfs::NodeInfo plain = imp.add_path(dir.string(), "x");
  EXPECT_EQ(img.rootfs, plain.cid);
  fs::remove_all(dir);
}

TEST(ImageBuild, BigDirectoriesArePagedAndSharded) {
  MemoryStore store;
  Tree tree;
  InodePtr d = make_inode(Kind::kDirectory, Attr{.mode = 0755});
  tree.put("big", d, 1);
  InodePtr f = file_with(store, "x");
  const int n = 12000;
  for (int i = 0; i < n; ++i) {
    // Distinct inodes (no hard links), long names: well past one 256 KiB metadata node.
    InodePtr e = make_inode(Kind::kFile, Attr{.mode = 0644, .uid = static_cast<uint32_t>(i)});
    e->content = f->content;
    d->children.emplace("entry-with-a-rather-long-name-" + std::to_string(i), Child{e, 1});
  }
  BuiltImage img = build_image(store, tree, config());
  unixfs::Dag dag(store);
  ImageReader r(dag, img.root.cid);
  DirView root = r.read_root();
  ASSERT_EQ(root.entries.size(), 1u);
  MetaNode top = parse_meta_node(root.entries[0].meta, *store.get(root.entries[0].meta),
                                 MetaNodeKind::kDirectory);
  EXPECT_GT(top.pages.size(), 1u);
  EXPECT_GT(top.structure.size(), 1u);  // the HAMT's shards, not just its root
  for (const auto& [first, page] : top.pages) EXPECT_LT(store.get(page)->size(), kMetaPageLimit);
  DirView big = r.read_dir(root.entries[0].meta, root.entries[0].node, "big");
  ASSERT_EQ(big.entries.size(), static_cast<size_t>(n));
  EXPECT_EQ(big.entries[7].attr.uid + 0, big.entries[7].attr.uid);
  std::map<uint32_t, int> uids;
  for (const auto& e : big.entries) uids[e.attr.uid]++;
  EXPECT_EQ(uids.size(), static_cast<size_t>(n));
}

TEST(ImageBuild, TheReaderRefusesMetadataThatDisagreesWithTheTree) {
  MemoryStore store;
  Tree tree;
  tree.put("f", file_with(store, "x"), 1);
  BuiltImage img = build_image(store, tree, config());
  // Same tree, metadata naming one more file.
  DirMeta m;
  m.self = Attr{.mode = 0755};
  MetaEntry f;
  f.name = "f";
  f.attr.mode = 0644;
  MetaEntry ghost;
  ghost.name = "ghost";
  ghost.attr.mode = 0644;
  m.entries = {f, ghost};
  dagpb::Node node;
  node.data = encode_dir_meta(m);
  Bytes b = dagpb::encode(node);
  Cid meta = Cid::of(1, kCodecDagPb, b);
  store.put(meta, b);
  unixfs::Dag dag(store);
  ImageReader r(dag, img.root.cid);
  try {
    r.read_dir(meta, img.rootfs, "");
    FAIL() << "accepted metadata for a file the tree lacks";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("ghost"), std::string::npos) << e.what();
  }
}

TEST_F(ImageBuildTest, UnpacksWithFullFidelity) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root (owners, device nodes, security.* xattrs)";
  BuiltImage img = build_image(store_, tree_, config());
  unixfs::Dag dag(store_);
  ImageReader r(dag, img.root.cid);
  fs::path out = fs::temp_directory_path() / ("cidrun-unpack-" + std::to_string(::getpid()));
  fs::remove_all(out);
  UnpackStats s = unpack_image(r, out.string());
  EXPECT_EQ(s.hardlinks, 1u);
  struct stat bb {};
  struct stat sh {};
  ASSERT_EQ(::lstat((out / "bin/busybox").c_str(), &bb), 0);
  ASSERT_EQ(::lstat((out / "bin/sh").c_str(), &sh), 0);
  EXPECT_EQ(bb.st_ino, sh.st_ino);
  EXPECT_EQ(bb.st_mode & 07777, 04755u);  // setuid survived the chown
  EXPECT_EQ(bb.st_gid, 42u);
  EXPECT_EQ(bb.st_mtim.tv_sec, 1700000000);
  EXPECT_EQ(bb.st_mtim.tv_nsec, 5);
  char cap[64];
  EXPECT_EQ(::getxattr((out / "bin/busybox").c_str(), "security.capability", cap, sizeof cap), 20);
  struct stat dev {};
  ASSERT_EQ(::lstat((out / "dev/null").c_str(), &dev), 0);
  EXPECT_TRUE(S_ISCHR(dev.st_mode));
  EXPECT_EQ(::major(dev.st_rdev), 1u);
  EXPECT_EQ(::minor(dev.st_rdev), 3u);
  struct stat fifo {};
  ASSERT_EQ(::lstat((out / "fifo").c_str(), &fifo), 0);
  EXPECT_TRUE(S_ISFIFO(fifo.st_mode));
  EXPECT_EQ(fifo.st_uid, 7u);
  EXPECT_EQ(fs::read_symlink(out / "bin/ls"), "busybox");
  // Into a directory that is not empty: refused.
  EXPECT_THROW(unpack_image(r, out.string()), Error);
  fs::remove_all(out);
}

}  // namespace
}  // namespace cidrun::image
