// The metadata pack: one CAR file holding an image's metadata and structure blocks, read back
// verified, and dropped (never trusted) when it is damaged.
#include "image/meta_pack.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>

#include "image/builder.h"
#include "image/tree.h"
#include "image/tree_helpers.h"
#include "store/reachable.h"
#include "store/repo.h"

namespace cidrun::image {
namespace {

namespace fs = std::filesystem;

class MetaPackTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "cidrun-pack-XXXXXX").string();
    dir_ = ::mkdtemp(tmpl.data());
    repo_ = Repo::open((dir_ / "repo").string());
    Tree tree;
    for (int d = 0; d < 5; ++d) {
      std::string sub = "d" + std::to_string(d);
      tree.put(sub, make_inode(Kind::kDirectory, Attr{.mode = 0755}), 1);
      for (int i = 0; i < 20; ++i) {
        tree.put(sub + "/f" + std::to_string(i), file(std::string(300000 + i, 'a' + d)), 1);
      }
    }
    img_ = build_image(repo_->blocks(), tree,
                       {{"architecture", "amd64"}, {"os", "linux"}, {"config", nullptr}});
    KeySet seen;
    walk_reachable(repo_->blocks(), img_.meta, seen, IfMissing::kThrow,
                   [&](const Cid& c, ByteView) {
                     meta_blocks_.insert(c.str());
                     return true;
                   });
  }
  void TearDown() override { fs::remove_all(dir_); }

  InodePtr file(const std::string& content) { return testing::file_with(repo_->blocks(), content); }

  std::set<std::string> read_back(bool& ok) {
    std::set<std::string> got;
    ok = read_meta_pack(*repo_, img_.meta, [&](const Cid& c, ByteView data) {
      EXPECT_TRUE(c.matches(data));
      got.insert(c.str());
    });
    return got;
  }

  fs::path dir_;
  std::unique_ptr<Repo> repo_;
  BuiltImage img_;
  std::set<std::string> meta_blocks_;
};

TEST_F(MetaPackTest, HoldsTheMetadataAndStructureAndNoFileData) {
  ASSERT_TRUE(write_image_pack(*repo_, repo_->blocks(), img_.root.cid));
  std::string path = meta_pack_path(*repo_, img_.meta);
  ASSERT_TRUE(fs::exists(path));
  bool ok = false;
  EXPECT_EQ(read_back(ok), meta_blocks_);
  EXPECT_TRUE(ok);
  // Metadata and structure of 100 files of 300 KB: a few KB, not the 30 MB of their data.
  EXPECT_LT(fs::file_size(path), 64u << 10);
  // A plain tree has no pack, and that is no error.
  EXPECT_FALSE(write_image_pack(*repo_, repo_->blocks(), img_.rootfs));
}

TEST_F(MetaPackTest, NoPackWhenABlockIsMissing) {
  // A structure block (a file's root node, linked from the metadata by its raw CID) is gone.
  std::string victim;
  for (const auto& s : meta_blocks_)
    if (Cid::parse(s) != img_.meta) victim = s;
  ASSERT_FALSE(victim.empty());
  ASSERT_TRUE(repo_->blocks().remove(Cid::parse(victim)));
  EXPECT_FALSE(write_meta_pack(*repo_, repo_->blocks(), img_.meta));
  EXPECT_FALSE(fs::exists(meta_pack_path(*repo_, img_.meta)));
  bool ok = true;
  EXPECT_TRUE(read_back(ok).empty());
  EXPECT_FALSE(ok);
}

TEST_F(MetaPackTest, DamagedTruncatedOrForeignPacksAreRemovedNotTrusted) {
  std::string path = meta_pack_path(*repo_, img_.meta);
  auto damage = [&](const std::function<void(std::string&)>& how) {
    fs::remove(path);
    ASSERT_TRUE(write_meta_pack(*repo_, repo_->blocks(), img_.meta));
    std::string bytes;
    {
      std::ifstream in(path, std::ios::binary);
      bytes.assign(std::istreambuf_iterator<char>(in), {});
    }
    how(bytes);
    std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
    bool ok = true;
    auto got = read_back(ok);
    EXPECT_FALSE(ok);
    EXPECT_FALSE(fs::exists(path));
    for (const auto& c : got) EXPECT_TRUE(meta_blocks_.count(c)) << c;
  };
  {
    SCOPED_TRACE("a flipped byte");
    damage([](std::string& b) { b[b.size() / 2] ^= 0x40; });
  }
  {
    SCOPED_TRACE("cut short");
    damage([](std::string& b) { b.resize(b.size() - 100); });
  }
  {
    SCOPED_TRACE("garbage after the end");
    damage([](std::string& b) { b += std::string(10, '\0'); });
  }
  {
    SCOPED_TRACE("another image's pack under this name");
    Tree other;
    other.put("x", file("other"), 1);
    BuiltImage o =
        build_image(repo_->blocks(), other, {{"architecture", "amd64"}, {"os", "linux"}});
    ASSERT_TRUE(write_meta_pack(*repo_, repo_->blocks(), o.meta));
    std::string foreign_path = meta_pack_path(*repo_, o.meta);
    damage([&](std::string& b) {
      std::ifstream in(foreign_path, std::ios::binary);
      b.assign(std::istreambuf_iterator<char>(in), {});
    });
  }
  // Written again after all that, it reads back whole.
  ASSERT_TRUE(write_meta_pack(*repo_, repo_->blocks(), img_.meta));
  bool ok = false;
  EXPECT_EQ(read_back(ok), meta_blocks_);
  EXPECT_TRUE(ok);
}

TEST_F(MetaPackTest, GcSweepsPacksOfGoneImagesAndLeftoverTemporaries) {
  ASSERT_TRUE(write_meta_pack(*repo_, repo_->blocks(), img_.meta));
  std::string path = meta_pack_path(*repo_, img_.meta);
  std::string leftover = path + ".tmp-1-2";
  std::ofstream(leftover) << "half a pack";
  EXPECT_EQ(sweep_meta_packs(*repo_, repo_->blocks()), 0u);
  EXPECT_TRUE(fs::exists(path));
  EXPECT_FALSE(fs::exists(leftover));
  ASSERT_TRUE(repo_->blocks().remove(img_.meta));
  EXPECT_EQ(sweep_meta_packs(*repo_, repo_->blocks()), 1u);
  EXPECT_FALSE(fs::exists(path));
}

}  // namespace
}  // namespace cidrun::image
