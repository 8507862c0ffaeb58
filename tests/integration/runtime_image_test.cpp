// `cidrun run CID`: the image cache (one checkout per CID, files hard-linked from the per-file
// cache), the per-container overlay that keeps both unmodified, and `repo gc` over them.
#include <dirent.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "integration/runtime_helpers.h"

using namespace rt_test;
namespace fs = std::filesystem;

namespace {

std::string repo() {
  return work_dir() + "/repo";
}

std::string cli() {
  return cidrun() + " --repo-dir " + repo();
}

// A busybox root plus a few files of its own; `extra` differs per image.
std::string make_image_root(const std::string& name, const std::string& extra) {
  std::string dir = make_root(name);
  write_file(dir + "/etc/shared.txt", "the same in both images\n");
  write_file(dir + "/etc/own.txt", extra);
  sh("touch -h -d @0 " + dir + "/etc/shared.txt " + dir + "/etc/own.txt " + dir + "/etc");
  return dir;
}

std::string add(const std::string& dir) {
  Result r = sh(cli() + " add -r -Q --cid-version 1 --preserve-mode --preserve-mtime " + dir);
  EXPECT_EQ(r.code, 0) << r.err;
  return chomp(r.out);
}

struct stat stat_of(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(::lstat(path.c_str(), &st), 0) << path;
  return st;
}

// Bytes of regular files under dirs: counted per name, and per inode (what the disk holds).
std::pair<uint64_t, uint64_t> bytes_by_name_and_inode(const std::vector<std::string>& dirs) {
  uint64_t named = 0, stored = 0;
  std::set<std::pair<dev_t, ino_t>> seen;
  for (const auto& d : dirs) {
    for (const auto& e : fs::recursive_directory_iterator(d)) {
      std::error_code ec;
      if (e.is_symlink(ec) || !e.is_regular_file(ec)) continue;
      struct stat st = stat_of(e.path().string());
      named += static_cast<uint64_t>(st.st_size);
      if (seen.insert({st.st_dev, st.st_ino}).second) stored += static_cast<uint64_t>(st.st_size);
    }
  }
  return {named, stored};
}

}  // namespace

TEST(RuntimeImage, TwoImagesShareCachedFilesByInode) {
  std::string a = add(make_image_root("a", "only in a\n"));
  std::string b = add(make_image_root("b", "only in b, and longer\n"));
  ASSERT_NE(a, b);
  Result ra = sh(cli() + " run --rm " + a + " -- /bin/cat /etc/own.txt");
  ASSERT_EQ(ra.code, 0) << ra.err;
  EXPECT_EQ(ra.out, "only in a\n");
  Result rb = sh(cli() + " run --rm " + b + " -- /bin/cat /etc/own.txt /etc/shared.txt");
  ASSERT_EQ(rb.code, 0) << rb.err;
  EXPECT_EQ(rb.out, "only in b, and longer\nthe same in both images\n");

  std::string ia = repo() + "/images/" + a, ib = repo() + "/images/" + b;
  for (const char* f : {"/bin/busybox", "/etc/shared.txt", "/etc/passwd"}) {
    struct stat sa = stat_of(ia + f), sb = stat_of(ib + f);
    EXPECT_EQ(sa.st_ino, sb.st_ino) << f << " is not shared";
    EXPECT_EQ(sa.st_nlink, 3u) << f;  // checkout a, checkout b, the cache entry
  }
  EXPECT_NE(stat_of(ia + "/etc/own.txt").st_ino, stat_of(ib + "/etc/own.txt").st_ino);
  EXPECT_EQ(stat_of(ia + "/etc/own.txt").st_nlink, 2u);
  // The stored modes and mtimes are the checkouts' (and so part of what is shared).
  EXPECT_EQ(stat_of(ia + "/bin/busybox").st_mode & 07777, 0755u);
  EXPECT_EQ(stat_of(ia + "/etc/shared.txt").st_mtime, 0);

  auto [named, stored] = bytes_by_name_and_inode({ia, ib});
  std::printf("[ space ] two checkouts: %llu bytes by name, %llu on disk (%.1f%% saved)\n",
              static_cast<unsigned long long>(named), static_cast<unsigned long long>(stored),
              100.0 * static_cast<double>(named - stored) / static_cast<double>(named));
  // busybox dominates both roots and is stored once.
  EXPECT_LT(stored * 10, named * 6);
  EXPECT_GT(stored * 10, named * 4);

  // A second run of a CID uses its checkout as it is (same inode, no new copy).
  ino_t before = stat_of(ia + "/bin/busybox").st_ino;
  ASSERT_EQ(sh(cli() + " run --rm " + a + " -- /bin/true").code, 0);
  EXPECT_EQ(stat_of(ia + "/bin/busybox").st_ino, before);
}

TEST(RuntimeImage, WritesToASharedFileStayInTheirContainer) {
  std::string a = add(make_image_root("a", "a\n"));
  std::string b = add(make_image_root("b", "b\n"));
  std::string sync = work_dir() + "/sync";
  ::mkdir(sync.c_str(), 0755);
  // B starts first and holds its view of the shared file open while A writes to it.
  std::string out_b = work_dir() + "/b.out";
  pid_t pb = spawn_sh(cli() + " run --rm --mount type=bind,src=" + sync + ",dst=/sync " + b +
                          " -- /bin/sh -c 'exec 3</etc/shared.txt; echo started; "
                          "while [ ! -e /sync/go ]; do sleep 0.05; done; cat /etc/shared.txt; "
                          "cat <&3; md5sum </etc/passwd'",
                      out_b);
  ASSERT_TRUE(wait_for_text(out_b, "started")) << slurp(out_b);
  Result ra = sh(cli() + " run --rm " + a +
                 " -- /bin/sh -c 'echo changed >/etc/shared.txt; echo more >>/etc/passwd; "
                 "cat /etc/shared.txt; tail -n 1 /etc/passwd'");
  EXPECT_EQ(ra.code, 0) << ra.err;
  EXPECT_EQ(ra.out, "changed\nmore\n");
  write_file(sync + "/go", "");
  EXPECT_EQ(wait_exit(pb), 0) << slurp(out_b);
  std::string original_md5 = sh("md5sum < " + repo() + "/images/" + b + "/etc/passwd").out;
  EXPECT_EQ(slurp(out_b),
            "started\nthe same in both images\nthe same in both images\n" + original_md5);

  // Neither checkout nor the cache entry changed; a new container of A sees the original.
  for (const std::string& cid : {a, b})
    EXPECT_EQ(slurp(repo() + "/images/" + cid + "/etc/shared.txt"), "the same in both images\n");
  struct stat sa = stat_of(repo() + "/images/" + a + "/etc/shared.txt");
  EXPECT_EQ(sa.st_nlink, 3u);
  EXPECT_EQ(sh("md5sum < " + repo() + "/images/" + a + "/etc/passwd").out, original_md5);
  EXPECT_EQ(stat_of(repo() + "/images/" + a + "/etc/passwd").st_ino,
            stat_of(repo() + "/images/" + b + "/etc/passwd").st_ino);
  Result again = sh(cli() + " run --rm " + a + " -- /bin/cat /etc/shared.txt");
  EXPECT_EQ(again.out, "the same in both images\n");
}

TEST(RuntimeImage, GcRemovesUnpinnedCheckoutsAndUnlinkedCachedFilesButNotLeasedOnes) {
  std::string a = add(make_image_root("a", "a\n"));
  std::string b = add(make_image_root("b", "only b\n"));
  ASSERT_EQ(sh(cli() + " run --rm " + a + " -- /bin/true").code, 0);
  std::string ib = repo() + "/images/" + b;
  std::string sync = work_dir() + "/sync";
  ::mkdir(sync.c_str(), 0755);
  // A container runs from B (its lease keeps B) while B is unpinned and gc runs.
  std::string out_b = work_dir() + "/b.out";
  pid_t pb = spawn_sh(cli() + " run --rm --mount type=bind,src=" + sync + ",dst=/sync " + b +
                          " -- /bin/sh -c 'echo started; "
                          "while [ ! -e /sync/go ]; do sleep 0.05; done; cat /etc/own.txt'",
                      out_b);
  ASSERT_TRUE(wait_for_text(out_b, "started")) << slurp(out_b);
  ASSERT_EQ(sh(cli() + " pin rm " + b).code, 0);
  Result gc = sh(cli() + " repo gc -q");
  EXPECT_EQ(gc.code, 0) << gc.err;
  EXPECT_TRUE(fs::exists(ib + "/etc/own.txt")) << "gc removed a checkout a container runs from";
  write_file(sync + "/go", "");
  EXPECT_EQ(wait_exit(pb), 0) << slurp(out_b);
  EXPECT_EQ(slurp(out_b), "started\nonly b\n");

  struct stat own_b = stat_of(ib + "/etc/own.txt");
  ASSERT_EQ(own_b.st_nlink, 2u);
  Result gc2 = sh(cli() + " repo gc");
  EXPECT_EQ(gc2.code, 0) << gc2.err;
  EXPECT_NE(gc2.err.find("removed 1 image checkouts"), std::string::npos) << gc2.err;
  EXPECT_FALSE(fs::exists(ib)) << "unpinned, unleased checkout kept";
  // Cached files only B linked are gone; those A still links stay, now with one link less.
  std::string ia = repo() + "/images/" + a;
  EXPECT_EQ(stat_of(ia + "/bin/busybox").st_nlink, 2u);
  size_t cached = 0;
  bool b_only_kept = false;
  for (const auto& e : fs::recursive_directory_iterator(repo() + "/images/files")) {
    if (!e.is_regular_file()) continue;
    ++cached;
    struct stat st = stat_of(e.path().string());
    EXPECT_GT(st.st_nlink, 1u) << e.path() << " is linked by no checkout";
    if (st.st_ino == own_b.st_ino) b_only_kept = true;
  }
  EXPECT_FALSE(b_only_kept);
  EXPECT_GT(cached, 0u);
  // A, still pinned, runs as before.
  Result ra = sh(cli() + " run --rm " + a + " -- /bin/cat /etc/own.txt");
  EXPECT_EQ(ra.out, "a\n") << ra.err;
}

// In a container of an image, hard links are the image's own: a group shows its count of names
// (its inode stays out of the per-file cache, whose name would add one), and two identical
// files of the image are two inodes (the second is a copy, not another link to the cache).
TEST(RuntimeImage, HardLinkGroupsAndIdenticalFilesKeepTheirLinkCounts) {
  std::string dir = make_image_root("links", "links\n");
  write_file(dir + "/etc/group-a", "one inode, two names\n");
  write_file(dir + "/etc/twin-1", "identical\n");
  write_file(dir + "/etc/twin-2", "identical\n");
  ASSERT_EQ(
      sh("cd " + dir + " && ln etc/group-a etc/group-b && touch -d @0 etc/twin-1 etc/twin-2").code,
      0);
  Result imported = sh(cli() + " image import -q rootfs:" + dir);
  ASSERT_EQ(imported.code, 0) << imported.err;
  Result r = sh(cli() + " run --rm " + chomp(imported.out) + " -- /bin/sh -c " +
                shell_quote("stat -c '%n %h' /etc/group-a /etc/group-b; "
                            "[ /etc/group-a -ef /etc/group-b ] && echo group: one inode; "
                            "[ /etc/twin-1 -ef /etc/twin-2 ] || echo twins: two inodes"));
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "/etc/group-a 2\n/etc/group-b 2\ngroup: one inode\ntwins: two inodes\n");
}

TEST(RuntimeImage, BundleCidRunsItsConfig) {
  std::string bdir = work_dir() + "/bundle";
  sh("mkdir -p " + bdir + " && cp -a " + busybox_root() + " " + bdir + "/rootfs");
  nlohmann::json c = default_config();
  c["process"]["args"] = {"/bin/sh", "-c", "echo from a bundle CID; hostname; touch /x && echo rw"};
  c["hostname"] = "bundled";
  c["root"]["readonly"] = false;
  write_file(bdir + "/config.json", c.dump());
  std::string cid = add(bdir);
  Result r = sh(cli() + " run --rm " + cid);
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "from a bundle CID\nbundled\nrw\n");
  EXPECT_FALSE(fs::exists(repo() + "/images/" + cid + "/rootfs/x"));
}

namespace {

// Every entry below dir by relative path ("" is dir itself), with its lstat.
std::map<std::string, struct stat> tree_of(const std::string& dir) {
  std::map<std::string, struct stat> out;
  out[""] = stat_of(dir);
  for (const auto& e : fs::recursive_directory_iterator(dir))
    out[e.path().lexically_relative(dir).string()] = stat_of(e.path().string());
  return out;
}

}  // namespace

// Where the per-file cache is on another filesystem than the checkouts, link(2) fails with EXDEV
// and the checkout is written as copies: complete, with the same contents, modes, owners and
// mtimes as a linked checkout of the same CID, and still never written by a container.
TEST(RuntimeImage, CheckoutCopiesWhenTheCacheIsOnAnotherFilesystem) {
  ASSERT_EQ(::geteuid(), 0u) << "needs root to mount a tmpfs";
  std::string src = make_image_root("a", "only in a\n");
  // Metadata worth keeping: setuid, a private file, a sub-second mtime.
  ASSERT_EQ(sh("chmod 4755 " + src + "/bin/busybox && chmod 0600 " + src + "/etc/own.txt && " +
               "touch -d '2001-02-03 04:05:06.789' " + src + "/etc/own.txt")
                .code,
            0);
  std::string cid = add(src);
  ASSERT_EQ(sh(cli() + " run --rm " + cid + " -- /bin/true").code, 0);
  const std::string linked = repo() + "/images/" + cid;

  std::string other = work_dir() + "/repo-other";
  ASSERT_EQ(sh("mkdir -p " + other + "/images/files").code, 0);
  ASSERT_EQ(sh("mount -t tmpfs -o mode=0700 cidrun-test-cache " + other + "/images/files").code, 0);
  struct Unmount {
    std::string dir;
    ~Unmount() { ::umount2(dir.c_str(), MNT_DETACH); }
  } unmount{other + "/images/files"};
  const std::string cli2 = cidrun() + " --repo-dir " + other;
  Result a = sh(cli2 + " add -r -Q --cid-version 1 --preserve-mode --preserve-mtime " + src);
  ASSERT_EQ(a.out, cid + "\n") << a.err;
  Result r = sh(cli2 + " --debug run --rm " + cid + " -- /bin/cat /etc/own.txt");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "only in a\n");
  EXPECT_NE(r.err.find("Invalid cross-device link"), std::string::npos) << r.err;

  const std::string copied = other + "/images/" + cid;
  auto want = tree_of(linked), got = tree_of(copied);
  ASSERT_EQ(got.size(), want.size());
  size_t files = 0;
  for (const auto& [path, w] : want) {
    auto it = got.find(path);
    ASSERT_NE(it, got.end()) << path << " missing from the copied checkout";
    const struct stat& g = it->second;
    EXPECT_EQ(g.st_mode, w.st_mode) << path;
    EXPECT_EQ(g.st_uid, w.st_uid) << path;
    EXPECT_EQ(g.st_gid, w.st_gid) << path;
    EXPECT_EQ(g.st_size, w.st_size) << path;
    EXPECT_EQ(g.st_mtim.tv_sec, w.st_mtim.tv_sec) << path;
    EXPECT_EQ(g.st_mtim.tv_nsec, w.st_mtim.tv_nsec) << path;
    if (S_ISREG(w.st_mode)) {
      ++files;
      EXPECT_EQ(g.st_nlink, 1u) << path << " is not a copy";
      EXPECT_EQ(w.st_nlink, 2u) << path << " is not linked in the reference";
      EXPECT_EQ(slurp(fs::path(copied) / path), slurp(fs::path(linked) / path)) << path;
    } else if (S_ISLNK(w.st_mode)) {
      EXPECT_EQ(fs::read_symlink(fs::path(copied) / path),
                fs::read_symlink(fs::path(linked) / path));
    }
  }
  EXPECT_GE(files, 5u);
  EXPECT_EQ(stat_of(copied + "/bin/busybox").st_mode & 07777, 04755u);
  EXPECT_EQ(stat_of(copied + "/etc/own.txt").st_mtim.tv_nsec, 789000000);
  for (const auto& e : fs::recursive_directory_iterator(other + "/images/files"))
    EXPECT_FALSE(e.is_regular_file()) << e.path() << " cached although links fail";

  // Containers write to their own upper layer: the copies stay as they were.
  Result w = sh(cli2 + " run --rm " + cid +
                " -- /bin/sh -c 'echo changed >/etc/own.txt; chmod 0644 /etc/own.txt; "
                "rm /etc/passwd; cat /etc/own.txt'");
  EXPECT_EQ(w.code, 0) << w.err;
  EXPECT_EQ(w.out, "changed\n");
  EXPECT_EQ(slurp(copied + "/etc/own.txt"), "only in a\n");
  EXPECT_EQ(stat_of(copied + "/etc/own.txt").st_mode & 07777, 0600u);
  EXPECT_TRUE(fs::exists(copied + "/etc/passwd"));
  Result again = sh(cli2 + " run --rm " + cid + " -- /bin/cat /etc/own.txt /etc/passwd");
  EXPECT_EQ(again.code, 0) << again.err;
  EXPECT_EQ(again.out.substr(0, 10), "only in a\n");
}
