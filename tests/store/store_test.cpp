// Pins, leases, gc, verify, the repo lock and staging over a real on-disk repo.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "ipld/dagpb.h"
#include "store/gc.h"
#include "store/lease.h"
#include "store/memstore.h"
#include "store/pins.h"
#include "store/reachable.h"
#include "store/repo.h"
#include "store/repo_lock.h"
#include "store/staged_store.h"
#include "store/staging.h"
#include "store/verify.h"
#include "util/error.h"
#include "util/fd.h"

namespace cidrun {
namespace {

namespace fs = std::filesystem;

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/store_test_XXXXXX";
    dir_ = ::mkdtemp(tmpl);
    repo_ = Repo::open(dir_ + "/repo");
  }
  void TearDown() override {
    repo_.reset();
    fs::remove_all(dir_);
  }

  Cid put_raw(std::string_view text) {
    Bytes d = to_bytes(text);
    Cid c = Cid::of(1, kCodecRaw, d);
    repo_->blocks().put(c, d);
    return c;
  }
  Cid put_node(const std::vector<Cid>& children) {
    dagpb::Node n;
    for (const auto& c : children) n.links.push_back({c, std::string(""), 1});
    n.data = Bytes{0x08, 0x01};  // UnixFS Directory; the store does not care
    Bytes b = dagpb::encode(n);
    Cid c = Cid::of(1, kCodecDagPb, b);
    repo_->blocks().put(c, b);
    return c;
  }
  std::vector<Cid> removed_by_gc() {
    std::vector<Cid> out;
    collect_garbage(*repo_, [&](const Cid& c) { out.push_back(c); });
    return out;
  }

  std::string dir_;
  std::unique_ptr<Repo> repo_;
};

TEST_F(StoreTest, FlatfsPutsSmallAndBigBlocksWholeAndOnlyUnderTheirNames) {
  // Small blocks skip the presence check (linkat reports a present one), big ones ask first;
  // either way a second put of the same block changes nothing and no temporary file remains.
  std::vector<Bytes> data{to_bytes("small"), Bytes(300 * 1024, 0x5a)};
  data[1][1234] = 7;
  for (int round = 0; round < 2; ++round) {
    for (const auto& d : data) {
      Cid c = Cid::of(1, kCodecRaw, d);
      repo_->blocks().put(c, d);
      auto back = repo_->blocks().get(c);
      ASSERT_TRUE(back);
      EXPECT_EQ(*back, d);
    }
  }
  size_t files = 0;
  for (const auto& e : fs::recursive_directory_iterator(dir_ + "/repo/blocks")) {
    if (!e.is_regular_file()) continue;
    std::string name = e.path().filename().string();
    if (name == "SHARDING" || name == "_README") continue;
    ++files;
    EXPECT_EQ(e.path().extension(), ".data") << name;
    EXPECT_EQ(e.file_size() == 5 || e.file_size() == 300 * 1024, true) << name;
  }
  EXPECT_EQ(files, 2u);
}

TEST_F(StoreTest, GcKeepsRecursiveAndDirectPinsAndRemovesTheRest) {
  Cid leaf1 = put_raw("leaf1");
  Cid leaf2 = put_raw("leaf2");
  Cid root = put_node({leaf1, leaf2});
  Cid direct_child = put_raw("direct-child");
  Cid direct = put_node({direct_child});
  Cid loose = put_raw("loose");
  repo_->pin(root, PinType::kRecursive);
  repo_->pin(direct, PinType::kDirect);
  auto removed = removed_by_gc();
  ASSERT_EQ(removed.size(), 2u);
  EXPECT_TRUE(repo_->blocks().has(leaf1));
  EXPECT_TRUE(repo_->blocks().has(leaf2));
  EXPECT_TRUE(repo_->blocks().has(root));
  EXPECT_TRUE(repo_->blocks().has(direct));
  EXPECT_FALSE(repo_->blocks().has(direct_child));  // a direct pin keeps only its block
  EXPECT_FALSE(repo_->blocks().has(loose));
}

TEST_F(StoreTest, GcKeepsBlocksOfALiveLeaseEvenWithHoles) {
  Cid leaf = put_raw("leased leaf");
  Cid absent = Cid::of(1, kCodecRaw, to_bytes("never stored"));
  Cid root = put_node({absent, leaf});
  {
    Lease lease(*repo_, root);
    EXPECT_TRUE(removed_by_gc().empty());
    EXPECT_TRUE(repo_->blocks().has(leaf));
  }
  // The lease ended with its object: now nothing holds them.
  EXPECT_EQ(removed_by_gc().size(), 2u);
}

TEST_F(StoreTest, StaleLeaseOfADeadProcessIsIgnoredAndRemoved) {
  Cid leaf = put_raw("orphan");
  pid_t child = ::fork();
  if (child == 0) ::_exit(0);
  ::waitpid(child, nullptr, 0);
  std::string file;
  {
    Lease lease(*repo_, leaf, child);  // owned by a pid that has exited
    lease.detach();
    file = lease.path();
  }
  auto leases = Lease::list(*repo_);
  ASSERT_EQ(leases.size(), 1u);
  EXPECT_FALSE(leases[0].live);
  EXPECT_EQ(removed_by_gc().size(), 1u);
  EXPECT_TRUE(Lease::list(*repo_).empty());
}

TEST_F(StoreTest, DetachedLeaseLastsUntilItsOwnerRemovesIt) {
  Cid leaf = put_raw("held by a container");
  {
    Lease lease(*repo_, leaf);  // this process stands in for a container's init
    lease.detach();
  }
  EXPECT_TRUE(removed_by_gc().empty());
  EXPECT_EQ(Lease::remove_owned_by(*repo_, ::getpid()), 1u);
  EXPECT_EQ(removed_by_gc().size(), 1u);
}

TEST_F(StoreTest, GcRefusesWhenAPinnedDagIsIncomplete) {
  Cid loose = put_raw("loose");
  Cid absent = Cid::of(1, kCodecRaw, to_bytes("absent"));
  Cid root = put_node({absent});
  repo_->pin(root, PinType::kRecursive);
  try {
    removed_by_gc();
    FAIL() << "gc ran over an incomplete pin";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(absent.str()), std::string::npos);
  }
  EXPECT_TRUE(repo_->blocks().has(loose));
}

TEST_F(StoreTest, GcWaitsForWritersAndWriterLockFailsFastDuringGc) {
  RepoLock shared(*repo_, RepoLock::Mode::kShared);
  RepoLock shared2(*repo_, RepoLock::Mode::kShared);  // writers coexist
  EXPECT_THROW(collect_garbage(*repo_, nullptr, /*wait=*/false), Error);
}

TEST_F(StoreTest, PinAddNamesTheFirstMissingBlock) {
  Cid absent = Cid::of(1, kCodecRaw, to_bytes("absent"));
  Cid present = put_raw("present");
  Cid root = put_node({present, absent});
  try {
    pin_checked(*repo_, root, PinType::kRecursive);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(absent.str()), std::string::npos) << e.what();
  }
  pin_checked(*repo_, root, PinType::kDirect);  // the block itself is here
  repo_->blocks().put(absent, to_bytes("absent"));
  pin_checked(*repo_, root, PinType::kRecursive);  // upgrades the direct pin
  auto pins = repo_->pins();
  ASSERT_EQ(pins.size(), 1u);
  EXPECT_EQ(pins[0].second, PinType::kRecursive);
  EXPECT_THROW(pin_checked(*repo_, root, PinType::kDirect), Error);
  auto holder = find_pin_holding(*repo_, present);
  ASSERT_TRUE(holder);
  EXPECT_TRUE(holder->indirect);
  EXPECT_EQ(unpin_checked(*repo_, root), PinType::kRecursive);
  EXPECT_THROW(unpin_checked(*repo_, root), Error);
}

TEST_F(StoreTest, VerifyFindsCorruptAndMissingBlocksAndRepairRemovesCorrupt) {
  Cid good = put_raw("good");
  Cid bad = put_raw("bad");
  Cid absent = Cid::of(1, kCodecRaw, to_bytes("absent"));
  Cid root = put_node({good, absent});
  repo_->pin(root, PinType::kRecursive);
  std::string path = repo_->blocks().path_of(bad.multihash());
  ::chmod(path.c_str(), 0644);
  write_file_atomic(path, as_bytes("flipped"));
  std::vector<std::string> lines;
  auto r = verify_repo(*repo_, false, [&](const std::string& l) { lines.push_back(l); });
  EXPECT_EQ(r.blocks, 3u);
  ASSERT_EQ(r.corrupt.size(), 1u);
  EXPECT_EQ(r.corrupt[0].multihash().size(), bad.multihash().size());
  ASSERT_EQ(r.missing.size(), 1u);
  EXPECT_EQ(r.missing[0], absent);
  EXPECT_FALSE(r.ok());
  EXPECT_TRUE(repo_->blocks().has(bad));
  r = verify_repo(*repo_, true, [](const std::string&) {});
  EXPECT_EQ(r.removed, 1u);
  EXPECT_FALSE(repo_->blocks().has(bad));
  repo_->blocks().put(absent, to_bytes("absent"));
  EXPECT_TRUE(verify_repo(*repo_, false, [](const std::string&) {}).ok());
}

TEST_F(StoreTest, VerifyReportsATruncatedBlock) {
  Cid c = put_raw("a block that will be truncated");
  std::string path = repo_->blocks().path_of(c.multihash());
  ASSERT_EQ(::truncate(path.c_str(), 3), 0);
  auto r = verify_repo(*repo_, false, [](const std::string&) {});
  EXPECT_EQ(r.corrupt.size(), 1u);
}

// A block held as a reference to a range of another file (what an image checkout's cache does
// with the leaves of the files it holds): read like any block, present only while the range is
// there, replaced by the bytes on a put, and its file named for gc.
class RefTest : public StoreTest {
 protected:
  void SetUp() override {
    StoreTest::SetUp();
    // The referenced file sits beside the store, as the image cache does.
    file_ = dir_ + "/repo/images-file";
    content_ = "head|" + std::string(70000, 'x') + "|tail";
    write_file_atomic(file_, as_bytes(content_));
    block_ = content_.substr(5, 70000);
    cid_ = put_raw(block_);
  }
  FlatfsStore& store() { return repo_->blocks(); }
  std::string block_path() { return store().path_of(cid_.multihash()); }

  std::string file_;
  std::string content_;
  std::string block_;
  Cid cid_;
};

TEST_F(RefTest, AReferenceReadsAsTheBlockAndFreesItsFile) {
  ASSERT_TRUE(store().put_ref(cid_, file_, 5, block_.size()));
  struct stat st {};
  ASSERT_EQ(::lstat(block_path().c_str(), &st), 0);
  EXPECT_TRUE(S_ISLNK(st.st_mode)) << "the block's own file is gone";
  char text[256] = {};
  ASSERT_GT(::readlink(block_path().c_str(), text, sizeof text - 1), 0);
  // Relative to the store, so that a moved repository keeps its references.
  EXPECT_EQ(std::string(text), "ref:5:70000:../images-file");
  EXPECT_TRUE(store().has(cid_));
  EXPECT_EQ(store().size(cid_), block_.size());
  auto got = store().get(cid_);
  ASSERT_TRUE(got);
  EXPECT_EQ(std::string(got->begin(), got->end()), block_);
  auto f = store().open_block_file(cid_);
  ASSERT_TRUE(f);
  EXPECT_EQ(f->offset, 5u);
  EXPECT_EQ(f->size, block_.size());
  // Whoever hands the bytes to others is told they are another file's, to be checked by get().
  EXPECT_TRUE(f->referenced);
  std::vector<std::string> targets;
  store().for_each_ref_target([&](const std::string& p) { targets.push_back(p); });
  ASSERT_EQ(targets.size(), 1u);
  EXPECT_TRUE(fs::equivalent(targets[0], file_));
  size_t n = 0;
  store().for_each([&](ByteView) { ++n; });
  EXPECT_EQ(n, 1u);
  EXPECT_TRUE(verify_repo(*repo_, false, [](const std::string&) {}).ok());
}

TEST_F(RefTest, OnlyABlockFileWithOneNameAndTheRightSizeBecomesAReference) {
  EXPECT_FALSE(store().put_ref(cid_, file_, 5, block_.size() - 1)) << "size differs";
  EXPECT_FALSE(store().put_ref(cid_, file_, content_.size() - 10, block_.size()))
      << "the range runs past the file's end";
  EXPECT_FALSE(store().put_ref(cid_, dir_ + "/no-such-file", 5, block_.size()));
  std::string other = dir_ + "/second-name";
  ASSERT_EQ(::link(block_path().c_str(), other.c_str()), 0);
  EXPECT_FALSE(store().put_ref(cid_, file_, 5, block_.size()))
      << "a block file with another name frees nothing";
  ASSERT_EQ(::unlink(other.c_str()), 0);
  Cid absent = Cid::of(1, kCodecRaw, to_bytes("absent"));
  EXPECT_FALSE(store().put_ref(absent, file_, 0, 6));
  struct stat st {};
  ASSERT_EQ(::lstat(block_path().c_str(), &st), 0);
  EXPECT_TRUE(S_ISREG(st.st_mode));
}

TEST_F(RefTest, AReferenceWhoseFileIsGoneOrShortIsAbsentAndAPutRestoresTheBytes) {
  ASSERT_TRUE(store().put_ref(cid_, file_, 5, block_.size()));
  ASSERT_EQ(::truncate(file_.c_str(), 100), 0);
  EXPECT_FALSE(store().has(cid_));
  EXPECT_FALSE(store().size(cid_));
  EXPECT_FALSE(store().get(cid_));
  EXPECT_FALSE(store().open_block_file(cid_));
  // verify calls it corrupt (the bytes are lost) and --repair removes the name.
  auto r = verify_repo(*repo_, false, [](const std::string&) {});
  EXPECT_EQ(r.corrupt.size(), 1u);
  EXPECT_EQ(verify_repo(*repo_, true, [](const std::string&) {}).removed, 1u);
  struct stat st {};
  EXPECT_NE(::lstat(block_path().c_str(), &st), 0);

  // A put over a reference writes the bytes, whether the reference works or not.
  write_file_atomic(file_, as_bytes(content_));
  put_raw(block_);
  ASSERT_TRUE(store().put_ref(cid_, file_, 5, block_.size()));
  ASSERT_EQ(::unlink(file_.c_str()), 0);
  EXPECT_FALSE(store().has(cid_));
  put_raw(block_);
  ASSERT_EQ(::lstat(block_path().c_str(), &st), 0);
  EXPECT_TRUE(S_ISREG(st.st_mode));
  EXPECT_TRUE(store().has(cid_));
  auto got = store().get(cid_);
  ASSERT_TRUE(got);
  EXPECT_EQ(std::string(got->begin(), got->end()), block_);
}

TEST_F(RefTest, AReferencedFileChangedBehindTheStoreFailsTheReadAndVerify) {
  ASSERT_TRUE(store().put_ref(cid_, file_, 5, block_.size()));
  std::string changed = content_;
  changed[100] = 'y';
  write_file_atomic(file_, as_bytes(changed));
  EXPECT_THROW(store().get(cid_), Error);
  std::vector<std::string> lines;
  auto r = verify_repo(*repo_, false, [&](const std::string& l) { lines.push_back(l); });
  EXPECT_EQ(r.corrupt.size(), 1u);
}

TEST_F(StoreTest, StagingCommitsAllOrNothing) {
  Cid a = Cid::of(1, kCodecRaw, to_bytes("staged a"));
  {
    StagingArea s(*repo_);
    s.store().put(a, to_bytes("staged a"));
    EXPECT_FALSE(repo_->blocks().has(a));
    // Dropped without commit: nothing reaches the store and the area is gone.
  }
  EXPECT_FALSE(repo_->blocks().has(a));
  EXPECT_TRUE(fs::is_empty(repo_->dir("tmp")));
  {
    StagingArea s(*repo_);
    s.store().put(a, to_bytes("staged a"));
    EXPECT_EQ(s.commit(), 1u);
  }
  EXPECT_TRUE(repo_->blocks().has(a));
  EXPECT_EQ(*repo_->blocks().get(a), to_bytes("staged a"));
}

TEST_F(StoreTest, GcRemovesStagingAreasOfDeadProcesses) {
  fs::create_directories(repo_->dir("tmp") + "/stage-999999999-1/AB");
  fs::create_directories(repo_->dir("tmp") + "/stage-" + std::to_string(::getpid()) + "-2");
  auto r = collect_garbage(*repo_, nullptr);
  EXPECT_EQ(r.staging_areas_removed, 1u);
  EXPECT_TRUE(fs::exists(repo_->dir("tmp") + "/stage-" + std::to_string(::getpid()) + "-2"));
}

// root -> {a -> {x}, hole, b -> {x}}: x is shared, hole is not in the store.
struct WalkFixture : StoreTest {
  void SetUp() override {
    StoreTest::SetUp();
    x = put_raw("x");
    hole = Cid::of(1, kCodecRaw, to_bytes("hole"));
    a = put_node({x});
    b = put_node({x, put_raw("y")});
    root = put_node({a, hole, b});
  }
  // The walk as visited blocks and missing ones, in order ("-" marks a missing block).
  std::vector<std::string> walk(IfMissing policy,
                                const std::function<bool(const Cid&)>& descend = nullptr) {
    std::vector<std::string> seen_order;
    KeySet seen;
    walk_reachable(
        repo_->blocks(), root, seen, policy,
        [&](const Cid& c, ByteView) {
          seen_order.push_back(name(c));
          return !descend || descend(c);
        },
        [&](const Cid& c) { seen_order.push_back("-" + name(c)); });
    return seen_order;
  }
  std::string name(const Cid& c) const {
    if (c == root) return "root";
    if (c == a) return "a";
    if (c == b) return "b";
    if (c == x) return "x";
    if (c == hole) return "hole";
    return "y";
  }
  Cid x, hole, a, b, root;
};

TEST_F(WalkFixture, SkipWalksPastAMissingBlockInStoredOrderVisitingSharedBlocksOnce) {
  EXPECT_EQ(walk(IfMissing::kSkip),
            (std::vector<std::string>{"root", "a", "x", "-hole", "b", "y"}));
}

TEST_F(WalkFixture, StopEndsTheWalkAtTheFirstMissingBlock) {
  EXPECT_EQ(walk(IfMissing::kStop), (std::vector<std::string>{"root", "a", "x", "-hole"}));
  EXPECT_EQ(first_missing(repo_->blocks(), root), hole);
  EXPECT_EQ(first_missing(repo_->blocks(), b), std::nullopt);
}

TEST_F(WalkFixture, ThrowNamesTheMissingBlock) {
  try {
    walk(IfMissing::kThrow);
    FAIL() << "a missing block did not throw";
  } catch (const NotFound& e) {
    EXPECT_NE(std::string(e.what()).find(hole.str()), std::string::npos) << e.what();
  }
}

TEST_F(WalkFixture, OnBlockReturningFalseLeavesChildrenOut) {
  EXPECT_EQ(walk(IfMissing::kStop, [&](const Cid& c) { return c == root; }),
            (std::vector<std::string>{"root", "a", "-hole"}));
  EXPECT_EQ(walk(IfMissing::kSkip, [&](const Cid& c) { return !(c == a); }),
            (std::vector<std::string>{"root", "a", "-hole", "b", "x", "y"}));
}

TEST_F(WalkFixture, ASharedSeenSetVisitsEachBlockOnceAcrossRoots) {
  KeySet seen;
  int visits = 0;
  auto count = [&](const Cid&, ByteView) { return ++visits, true; };
  walk_reachable(repo_->blocks(), b, seen, IfMissing::kThrow, count);
  EXPECT_EQ(visits, 3);
  walk_reachable(repo_->blocks(), root, seen, IfMissing::kSkip, count);
  EXPECT_EQ(visits, 5);  // root and a; b's DAG was walked already
}

TEST(Reachable, CidOfMultihashIsRawV1) {
  Cid v0 = Cid::parse("QmUNLLsPACCz1vLxQVkXqqLX5R1X345qqfHbsf67hvA3Nn");
  Cid c = cid_of_multihash(v0.multihash());
  EXPECT_EQ(c.version(), 1);
  EXPECT_EQ(c.codec(), kCodecRaw);
  EXPECT_EQ(to_hex(c.multihash()), to_hex(v0.multihash()));
  EXPECT_THROW(cid_of_multihash(Bytes{0x12, 0x20, 0x01}), Error);
}

// Staged blocks are readable at once and reach the store below; flush() waits for that and
// reports a write that failed.
TEST(StagedStore, ReadsAtOnceAndWritesBehind) {
  MemoryStore below;
  std::vector<Cid> cids;
  {
    StagedStore staged(below);
    for (int i = 0; i < 200; ++i) {
      std::string data = "block " + std::to_string(i);
      Cid c = Cid::of(1, kCodecRaw, as_bytes(data));
      staged.stage(c, as_bytes(data));
      EXPECT_TRUE(staged.has(c));
      EXPECT_EQ(staged.get(c), Bytes(data.begin(), data.end()));
      EXPECT_EQ(staged.size(c), data.size());
      cids.push_back(c);
    }
    staged.flush();
    for (const auto& c : cids) EXPECT_TRUE(below.has(c));
    Cid absent = Cid::of(1, kCodecRaw, as_bytes("absent"));
    EXPECT_FALSE(staged.has(absent));
    EXPECT_FALSE(staged.get(absent));
  }
  struct Failing : MemoryStore {
    void put_parts(const Cid&, std::span<const ByteView>) override { throw Error("disk full"); }
  } failing;
  StagedStore staged(failing);
  Cid c = Cid::of(1, kCodecRaw, as_bytes("x"));
  staged.stage(c, as_bytes("x"));
  EXPECT_EQ(staged.get(c), Bytes{'x'});  // still served from memory
  EXPECT_THROW(staged.flush(), Error);
}

}  // namespace
}  // namespace cidrun
