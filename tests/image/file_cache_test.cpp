// The image checkout's per-file cache: files are hard links to the cache where the filesystem
// allows, and copies where it refuses the link. EMLINK (an inode at the filesystem's link limit)
// and EPERM (an immutable cache entry, which refuses links even to root) are tested here on the
// real filesystem of the temp directory; EXDEV (cache on another filesystem) with containers in
// tests/integration/runtime_image_test.cpp.
#include "image/file_cache.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "image/checkout.h"
#include "image/gc.h"
#include "store/gc.h"
#include "store/repo.h"
#include "store/verify.h"
#include "unixfs/importer.h"
#include "unixfs/reader.h"

namespace cidrun::image {
namespace {

namespace fs = std::filesystem;

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

struct stat stat_of(const fs::path& p) {
  struct stat st {};
  EXPECT_EQ(::lstat(p.c_str(), &st), 0) << p;
  return st;
}

class FileCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "cidrun-file-cache-XXXXXX").string();
    dir_ = ::mkdtemp(tmpl.data());
    fs::create_directories(dir_ / "src/etc");
    write(dir_ / "src/etc/shared.txt", "cached once, linked many times\n", 0644);
    write(dir_ / "src/etc/other.txt", "another file\n", 0600);
    write(dir_ / "src/run.sh", "#!/bin/sh\necho hi\n", 0755);
    repo_ = Repo::open((dir_ / "repo").string());
    root_ = add_tree(dir_ / "src");
  }
  void TearDown() override { fs::remove_all(dir_); }

  static void write(const fs::path& p, const std::string& text, mode_t mode) {
    std::ofstream(p, std::ios::binary) << text;
    fs::permissions(p, static_cast<fs::perms>(mode));
  }

  Checkout check_out() {
    unixfs::Dag dag(repo_->blocks());
    return checkout(*repo_, dag, root_);
  }

  // The cache entry a checkout's file is a link to (same inode).
  fs::path cache_entry_of(const fs::path& file) {
    const ino_t ino = stat_of(file).st_ino;
    for (const auto& e : fs::recursive_directory_iterator(dir_ / "repo/images/files"))
      if (e.is_regular_file() && stat_of(e.path()).st_ino == ino) return e.path();
    return {};
  }

  // The block file of a file of root_ that is one raw block.
  struct stat block_of(const std::string& path) {
    unixfs::Dag dag(repo_->blocks());
    Cid cid = dag.resolve(root_, path);
    EXPECT_EQ(cid.codec(), kCodecRaw) << path;
    return stat_of(repo_->blocks().path_of(cid.multihash()));
  }
  enum class Metadata { kNone, kModeAndMtime };
  Cid add_tree(const fs::path& src, Metadata meta = Metadata::kModeAndMtime) {
    unixfs::ImportOptions opts;
    opts.recursive = true;
    opts.preserve_mode = meta == Metadata::kModeAndMtime;
    opts.preserve_mtime = meta == Metadata::kModeAndMtime;
    opts.layout.cid_version = 1;
    opts.layout.raw_leaves = true;  // as `add --cid-version 1` does
    unixfs::Importer importer(repo_->blocks(), opts, [](const unixfs::AddedEntry&) {});
    return importer.add_path(src.string(), src.filename().string()).cid;
  }

  fs::path dir_;
  std::unique_ptr<Repo> repo_;
  Cid root_;
};

TEST_F(FileCacheTest, CheckoutFilesAreLinksToTheCache) {
  Checkout c = check_out();
  EXPECT_TRUE(c.fresh);
  for (const char* f : {"etc/shared.txt", "etc/other.txt", "run.sh"}) {
    struct stat st = stat_of(fs::path(c.dir) / f);
    EXPECT_EQ(st.st_nlink, 2u) << f;
    EXPECT_FALSE(cache_entry_of(fs::path(c.dir) / f).empty()) << f;
  }
}

// A file that is one raw block (no metadata in its node: an image's files, or `add` without
// --preserve-mode/--preserve-mtime) is that block's own inode (FileCache::claim_block): the
// checkout's name, the cache's and the block's, with the file's mode; its bytes are on disk once.
TEST_F(FileCacheTest, AFileThatIsOneRawBlockIsThatBlocksInode) {
  root_ = add_tree(dir_ / "src", Metadata::kNone);
  Checkout c = check_out();
  for (const char* f : {"etc/shared.txt", "etc/other.txt", "run.sh"}) {
    struct stat st = stat_of(fs::path(c.dir) / f);
    EXPECT_EQ(st.st_nlink, 3u) << f;
    EXPECT_FALSE(cache_entry_of(fs::path(c.dir) / f).empty()) << f;
    EXPECT_EQ(block_of(f).st_ino, st.st_ino) << f;
  }
  // Without stored modes a checkout guesses: programs 0755, the rest 0644.
  EXPECT_EQ(stat_of(fs::path(c.dir) / "etc/other.txt").st_mode & 07777, 0644u);
  EXPECT_EQ(stat_of(fs::path(c.dir) / "run.sh").st_mode & 07777, 0755u);
  EXPECT_EQ(slurp(fs::path(c.dir) / "run.sh"), "#!/bin/sh\necho hi\n");
  EXPECT_TRUE(verify_repo(*repo_, false, [](const std::string&) {}).ok());
}

// An inode at the link limit (ext4: 65000) refuses one more link with EMLINK: that file of the
// checkout is then a copy of its own, the others are still links, and the cache is unchanged.
TEST_F(FileCacheTest, AFileAtTheLinkLimitIsCopied) {
  Checkout first = check_out();
  const fs::path entry = cache_entry_of(fs::path(first.dir) / "etc/shared.txt");
  ASSERT_FALSE(entry.empty());
  const struct stat cached = stat_of(entry);
  fs::remove_all(first.dir);  // its link goes; the next checkout must make a new one

  const fs::path links = dir_ / "links";
  fs::create_directories(links);
  int made = 0;
  for (;; ++made) {
    if (made > 200000) GTEST_SKIP() << "no link limit on the filesystem of " << dir_;
    const std::string name = (links / std::to_string(made)).string();
    if (::link(entry.c_str(), name.c_str()) == 0) continue;
    ASSERT_EQ(errno, EMLINK) << "link " << name << ": " << std::strerror(errno);
    break;
  }
  ASSERT_GT(made, 100);
  std::printf("[ links ] the cache entry took %d extra links before EMLINK\n", made);

  Checkout second = check_out();
  EXPECT_TRUE(second.fresh);
  const fs::path copy = fs::path(second.dir) / "etc/shared.txt";
  struct stat st = stat_of(copy);
  EXPECT_EQ(st.st_nlink, 1u) << "not a copy";
  EXPECT_NE(st.st_ino, cached.st_ino);
  EXPECT_EQ(slurp(copy), "cached once, linked many times\n");
  EXPECT_EQ(st.st_mode & 07777, 0644u);
  EXPECT_EQ(st.st_mtim.tv_sec, cached.st_mtim.tv_sec);
  EXPECT_EQ(st.st_mtim.tv_nsec, cached.st_mtim.tv_nsec);
  EXPECT_EQ(st.st_uid, cached.st_uid);
  EXPECT_EQ(st.st_gid, cached.st_gid);
  // The other files still link, and the saturated entry did not change.
  EXPECT_EQ(stat_of(fs::path(second.dir) / "etc/other.txt").st_nlink, 2u);
  EXPECT_EQ(stat_of(fs::path(second.dir) / "run.sh").st_nlink, 2u);
  EXPECT_EQ(stat_of(entry).st_nlink, cached.st_nlink + static_cast<nlink_t>(made) - 1);
  EXPECT_EQ(stat_of(entry).st_ino, cached.st_ino);
}

// Sets or clears FS_IMMUTABLE_FL (chattr +i) on p; false, errno set, where the filesystem or the
// caller's capabilities do not allow it.
bool set_immutable(const fs::path& p, bool on) {
  int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return false;
  int flags = 0;
  bool ok = ::ioctl(fd, FS_IOC_GETFLAGS, &flags) == 0;
  if (ok) {
    flags = on ? flags | FS_IMMUTABLE_FL : flags & ~FS_IMMUTABLE_FL;
    ok = ::ioctl(fd, FS_IOC_SETFLAGS, &flags) == 0;
  }
  int err = errno;
  ::close(fd);
  errno = err;
  return ok;
}

// link() of an immutable inode fails with EPERM, for root too (fs.protected_hardlinks does not
// apply to root; this does). A checkout meeting it writes that file as a copy with the entry's
// bytes, mode and mtime, stops linking for the rest of that checkout (the filesystem refused
// outright), leaves the entry alone, and later checkouts keep working: copies while the entry
// refuses, links again once it takes them.
TEST_F(FileCacheTest, AnEntryThatRefusesLinksWithEpermIsCopied) {
  Checkout first = check_out();
  const fs::path entry = cache_entry_of(fs::path(first.dir) / "etc/shared.txt");
  ASSERT_FALSE(entry.empty());
  const struct stat cached = stat_of(entry);
  fs::remove_all(first.dir);
  if (!set_immutable(entry, true)) {
    GTEST_SKIP() << "cannot make " << entry << " immutable: " << std::strerror(errno);
  }
  // Cleared however the test ends, or the temp directory could not be removed.
  struct Thaw {
    fs::path p;
    ~Thaw() { set_immutable(p, false); }
  } thaw{entry};
  const fs::path probe = dir_ / "probe";
  ASSERT_NE(::link(entry.c_str(), probe.c_str()), 0);
  ASSERT_EQ(errno, EPERM) << std::strerror(errno);

  struct Want {
    const char* path;
    const char* text;
    mode_t mode;
  };
  const Want files[] = {{"etc/other.txt", "another file\n", 0600},
                        {"etc/shared.txt", "cached once, linked many times\n", 0644},
                        {"run.sh", "#!/bin/sh\necho hi\n", 0755}};
  for (int round = 0; round < 2; ++round) {
    SCOPED_TRACE("checkout " + std::to_string(round + 2));
    Checkout c = check_out();
    EXPECT_TRUE(c.fresh);
    for (const Want& w : files) {
      const fs::path f = fs::path(c.dir) / w.path;
      struct stat st = stat_of(f);
      EXPECT_TRUE(S_ISREG(st.st_mode)) << w.path;
      EXPECT_EQ(st.st_mode & 07777, w.mode) << w.path;
      EXPECT_EQ(slurp(f), w.text) << w.path;
    }
    struct stat copy = stat_of(fs::path(c.dir) / "etc/shared.txt");
    EXPECT_EQ(copy.st_nlink, 1u) << "not a copy";
    EXPECT_NE(copy.st_ino, cached.st_ino);
    EXPECT_EQ(copy.st_mtim.tv_sec, cached.st_mtim.tv_sec);
    EXPECT_EQ(copy.st_mtim.tv_nsec, cached.st_mtim.tv_nsec);
    // Files are written in name order: etc/other.txt was linked before the refusal, run.sh
    // after it is a copy.
    EXPECT_EQ(stat_of(fs::path(c.dir) / "etc/other.txt").st_nlink, 2u);
    EXPECT_EQ(stat_of(fs::path(c.dir) / "run.sh").st_nlink, 1u);
    fs::remove_all(c.dir);
  }
  // The entry is unchanged: same inode, bytes, and only the cache's own name.
  EXPECT_EQ(stat_of(entry).st_ino, cached.st_ino);
  EXPECT_EQ(stat_of(entry).st_nlink, 1u);
  EXPECT_EQ(slurp(entry), "cached once, linked many times\n");

  ASSERT_TRUE(set_immutable(entry, false)) << std::strerror(errno);
  Checkout again = check_out();
  EXPECT_TRUE(again.fresh);
  for (const Want& w : files) {
    const fs::path f = fs::path(again.dir) / w.path;
    EXPECT_EQ(stat_of(f).st_nlink, 2u) << w.path;
    EXPECT_EQ(slurp(f), w.text) << w.path;
  }
  EXPECT_EQ(stat_of(fs::path(again.dir) / "etc/shared.txt").st_ino, cached.st_ino);
}

// Two names of one tree with the same content, mode and mtime have one cache key, but must not
// become one inode: a container would see them as a hard-link group the tree does not have. The
// first links the cache, the second is a copy; the next checkout does the same with the same
// cache entry.
TEST_F(FileCacheTest, IdenticalFilesOfOneCheckoutStaySeparateInodes) {
  const fs::path src = dir_ / "twins";
  fs::create_directories(src);
  for (const char* name : {"one", "two"}) {
    write(src / name, "the same bytes\n", 0644);
    const timespec times[2] = {{1000, 0}, {1000, 0}};
    ASSERT_EQ(::utimensat(AT_FDCWD, (src / name).c_str(), times, 0), 0);
  }
  unixfs::ImportOptions opts;
  opts.recursive = true;
  opts.preserve_mode = true;
  opts.preserve_mtime = true;
  opts.layout.cid_version = 1;
  unixfs::Importer importer(repo_->blocks(), opts, [](const unixfs::AddedEntry&) {});
  root_ = importer.add_path(src.string(), "twins").cid;

  Checkout first = check_out();
  struct stat one = stat_of(fs::path(first.dir) / "one");
  struct stat two = stat_of(fs::path(first.dir) / "two");
  EXPECT_NE(one.st_ino, two.st_ino);
  EXPECT_EQ(one.st_nlink, 2u);  // the checkout's name and the cache's
  EXPECT_EQ(two.st_nlink, 1u);
  EXPECT_EQ(slurp(fs::path(first.dir) / "two"), "the same bytes\n");
  EXPECT_EQ(two.st_mtim.tv_sec, 1000);
  EXPECT_EQ(two.st_mode & 07777, 0644u);
  const fs::path entry = cache_entry_of(fs::path(first.dir) / "one");
  ASSERT_FALSE(entry.empty());

  fs::rename(first.dir, dir_ / "first");  // a second checkout of the same root
  Checkout second = check_out();
  EXPECT_TRUE(second.fresh);
  EXPECT_EQ(stat_of(fs::path(second.dir) / "one").st_ino, one.st_ino);
  EXPECT_NE(stat_of(fs::path(second.dir) / "two").st_ino, one.st_ino);
  EXPECT_EQ(stat_of(fs::path(second.dir) / "two").st_nlink, 1u);
  EXPECT_EQ(stat_of(entry).st_nlink, 3u);
}

TEST_F(FileCacheTest, SweepRemovesEntriesNoCheckoutLinks) {
  Checkout c = check_out();
  FileCacheSweep kept = sweep_image_files(*repo_);
  EXPECT_EQ(kept.files_removed, 0u);
  EXPECT_EQ(kept.files_kept, 3u);
  fs::remove_all(c.dir);
  FileCacheSweep gone = sweep_image_files(*repo_);
  EXPECT_EQ(gone.files_removed, 3u);
  EXPECT_EQ(gone.files_kept, 0u);
  EXPECT_TRUE(fs::is_empty(dir_ / "repo/images/files"));
}

// An entry that is its block's inode costs nothing while the block is kept: it stays until the
// block goes.
TEST_F(FileCacheTest, SweepKeepsAnEntryThatIsItsBlockUntilTheBlockGoes) {
  root_ = add_tree(dir_ / "src", Metadata::kNone);
  Checkout c = check_out();
  fs::remove_all(c.dir);
  FileCacheSweep kept = sweep_image_files(*repo_);
  EXPECT_EQ(kept.files_removed, 0u);
  EXPECT_EQ(kept.files_kept, 3u);
  collect_garbage(*repo_, [](const Cid&) {});  // nothing is pinned: every block goes
  FileCacheSweep gone = sweep_image_files(*repo_);
  EXPECT_EQ(gone.files_removed, 3u);
  EXPECT_EQ(gone.files_kept, 0u);
}

// A file of several raw leaves is written to the cache once; its leaves then become references
// to that file, so the bytes are on disk once. gc keeps the cached file while a block names it.
TEST_F(FileCacheTest, TheLeavesOfABigFileBecomeReferencesToTheCachedFile) {
  const fs::path src = dir_ / "big";
  fs::create_directories(src);
  std::string bytes;
  for (uint32_t i = 0; i < 300000; ++i) bytes += static_cast<char>('a' + (i * 7919u) % 26);
  write(src / "data.bin", bytes, 0644);
  root_ = add_tree(src);
  repo_->pin(root_, PinType::kRecursive);

  Checkout c = check_out();
  const fs::path file = fs::path(c.dir) / "data.bin";
  EXPECT_EQ(slurp(file), bytes);
  unixfs::Dag dag(repo_->blocks());
  Cid file_cid = dag.resolve(root_, "data.bin");
  auto node = dag.stat(file_cid);
  EXPECT_EQ(node.size, bytes.size());
  size_t refs = 0;
  repo_->blocks().for_each_ref_target([&](const std::string& target) {
    EXPECT_EQ(stat_of(target).st_ino, stat_of(file).st_ino);
    ++refs;
  });
  EXPECT_EQ(refs, 2u) << "300000 bytes in 256 KiB leaves";
  auto r = verify_repo(*repo_, false, [](const std::string& l) { ADD_FAILURE() << l; });
  EXPECT_TRUE(r.ok());
  unixfs::FileReader reader(dag, file_cid);
  std::string back(bytes.size(), '\0');
  EXPECT_EQ(reader.read(0, reinterpret_cast<uint8_t*>(back.data()), back.size()), bytes.size());
  EXPECT_EQ(back, bytes);

  // The checkout goes; the cached file holds the pinned blocks' bytes, so it stays.
  fs::remove_all(c.dir);
  FileCacheSweep kept = sweep_image_files(*repo_);
  EXPECT_EQ(kept.files_removed, 0u);
  EXPECT_TRUE(verify_repo(*repo_, false, [](const std::string&) {}).ok());
  // A new checkout of the same root links the cached file again.
  Checkout again = check_out();
  EXPECT_EQ(slurp(fs::path(again.dir) / "data.bin"), bytes);
  // Unpinned and collected: the references go, and with them the cached file.
  fs::remove_all(again.dir);
  repo_->unpin(root_, PinType::kRecursive);
  collect_garbage(*repo_, [](const Cid&) {});
  FileCacheSweep gone = sweep_image_files(*repo_);
  EXPECT_GE(gone.files_removed, 1u);
  EXPECT_EQ(gone.files_kept, 0u);
}

// `run` defers the wait for the disk until its container runs: the checkout is complete and
// readable at once, and its blocks become references only when the caller runs the step.
TEST_F(FileCacheTest, ADeferredFinishMakesTheReferencesWhenRun) {
  const fs::path src = dir_ / "big";
  fs::create_directories(src);
  write(src / "data.bin", std::string(600000, 'z'), 0644);
  root_ = add_tree(src);
  unixfs::Dag dag(repo_->blocks());
  Checkout c = checkout(*repo_, dag, root_, Durability::kDeferred);
  ASSERT_TRUE(c.finish);
  size_t refs = 0;
  repo_->blocks().for_each_ref_target([&](const std::string&) { ++refs; });
  EXPECT_EQ(refs, 0u);
  EXPECT_EQ(slurp(fs::path(c.dir) / "data.bin"), std::string(600000, 'z'));
  repo_.reset();  // the step owns what it needs
  c.finish();
  repo_ = Repo::open((dir_ / "repo").string());
  // 600000 identical bytes: two identical full leaves (one block) and a shorter last one.
  repo_->blocks().for_each_ref_target([&](const std::string&) { ++refs; });
  EXPECT_EQ(refs, 2u);
  EXPECT_TRUE(verify_repo(*repo_, false, [](const std::string&) {}).ok());
  // A second checkout of a root that is already checked out has nothing to finish.
  unixfs::Dag dag2(repo_->blocks());
  EXPECT_FALSE(checkout(*repo_, dag2, root_, Durability::kDeferred).finish);
}

// A block inode claimed once, whose checkouts and cache entry are gone, may be claimed again by
// another key: nothing of the earlier file's metadata (here an xattr) carries over.
TEST_F(FileCacheTest, AReclaimedBlockKeepsNothingOfItsEarlierFile) {
  root_ = add_tree(dir_ / "src", Metadata::kNone);
  Checkout c = check_out();
  const fs::path file = fs::path(c.dir) / "etc/shared.txt";
  ASSERT_EQ(::setxattr(file.c_str(), "user.earlier", "1", 1, 0), 0) << std::strerror(errno);
  const fs::path entry = cache_entry_of(file);
  fs::remove_all(c.dir);
  fs::remove(entry);
  Checkout again = check_out();
  char value[8];
  EXPECT_LT(::getxattr((fs::path(again.dir) / "etc/shared.txt").c_str(), "user.earlier", value,
                       sizeof value),
            0);
  EXPECT_EQ(stat_of(fs::path(again.dir) / "etc/shared.txt").st_nlink, 3u);
}

}  // namespace
}  // namespace cidrun::image
