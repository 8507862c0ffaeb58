// The filesystem a lazy mount shows, without FUSE: a LazyTree over a store that "fetches" from
// another (copying the block and counting it), so the tests see which blocks each operation
// needs. A lazy mount must not fetch a directory's files to list it, must fetch a file's
// blocks a window at a time rather than all of them, and must number inodes the same way when a
// successor server replays the journal.
#include "fuse/lazy_tree.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <random>
#include <set>
#include <thread>
#include <vector>

#include "exchange/fixtures.h"
#include "image/import.h"
#include "ipld/dagpb.h"
#include "ipld/unixfs_pb.h"
#include "store/memstore.h"
#include "unixfs/importer.h"
#include "unixfs/reader.h"
#include "util/error.h"

namespace cidrun::fuse {
namespace {

using testing::TempDir;
using testing::write_text;

// Blocks missing here come from `origin` (a "fetch"), counted by codec.
class FetchingFake : public BlockStore {
 public:
  explicit FetchingFake(BlockStore& origin) : origin_(origin) {}
  bool has(const Cid& cid) override { return local_.has(cid); }
  std::optional<Bytes> get(const Cid& cid) override {
    if (auto b = local_.get(cid)) return b;
    auto b = origin_.get(cid);
    if (!b) return std::nullopt;
    std::lock_guard l(mu_);
    fetched_.insert(std::string(as_string(cid.multihash())));
    if (cid.codec() == kCodecRaw) ++raw_fetches;
    local_.put(cid, *b);
    return b;
  }
  std::optional<uint64_t> size(const Cid& cid) override {
    auto b = get(cid);
    return b ? std::optional<uint64_t>(b->size()) : std::nullopt;
  }
  void put_parts(const Cid& cid, std::span<const ByteView> parts) override {
    local_.put_parts(cid, parts);
  }
  bool remove(const Cid& cid) override { return local_.remove(cid); }
  void for_each(const std::function<void(ByteView)>& fn) override { local_.for_each(fn); }
  void sync() override {}
  // A prefetch: fetch them now.
  void prefetch(const std::vector<Cid>& cids) {
    prefetched += cids.size();
    for (const auto& c : cids) get(c);
  }
  size_t fetched() {
    std::lock_guard l(mu_);
    return fetched_.size();
  }
  // Copies every dag-pb block of the DAG below root (the structure a lazy start gets first).
  void take_structure(const Cid& root) {
    unixfs::walk_dag(origin_, root, [&](const Cid& c, ByteView b) {
      if (c.codec() == kCodecDagPb) local_.put(c, b);
      return true;
    });
  }

  std::atomic<size_t> raw_fetches{0};
  size_t prefetched = 0;

 private:
  BlockStore& origin_;
  MemoryStore local_;
  std::mutex mu_;
  std::set<std::string> fetched_;
};

std::string random_text(size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(rng());
  return s;
}

struct ImageFixture {
  TempDir dir;
  MemoryStore origin;
  Cid root;
  std::string big;

  ImageFixture() {
    std::string r = dir.path + "/root";
    std::filesystem::create_directories(r + "/etc");
    std::filesystem::create_directories(r + "/many");
    for (int i = 0; i < 40; ++i)
      write_text(r + "/many/f" + std::to_string(i), "file " + std::to_string(i));
    write_text(r + "/etc/hostname", "lazy\n");
    big = random_text(3 * 1024 * 1024 + 77, 9);
    write_text(r + "/big.bin", big);
    std::filesystem::create_symlink("etc/hostname", r + "/link");
    ::chmod((r + "/etc/hostname").c_str(), 0640);
    root = image::import_image(origin, image::parse_import_source("rootfs:" + r)).image.root.cid;
  }
};

uint64_t must_lookup(LazyTree& t, uint64_t dir, const std::string& name) {
  auto ino = t.lookup(dir, name);
  if (!ino) throw Error("no " + name);
  return *ino;
}

TEST(LazyTree, ListingAndStatFetchNoFileContent) {
  ImageFixture fx;
  FetchingFake store(fx.origin);
  unixfs::Dag dag(store);
  LazyTree tree(dag, fx.root);
  ASSERT_TRUE(tree.is_image());
  uint64_t many = must_lookup(tree, kRootIno, "many");
  auto entries = tree.list(many);
  ASSERT_EQ(entries.size(), 40u);
  for (const auto& e : entries) {
    struct stat st = tree.attr(e.ino);
    EXPECT_TRUE(S_ISREG(st.st_mode)) << e.name;
    EXPECT_GT(st.st_size, 0) << e.name;
  }
  uint64_t etc = must_lookup(tree, kRootIno, "etc");
  uint64_t hostname = must_lookup(tree, etc, "hostname");
  EXPECT_EQ(tree.attr(hostname).st_mode & 07777, 0640u);
  EXPECT_EQ(store.raw_fetches.load(), 0u) << "listing and stat fetched file content";
  uint8_t buf[64];
  size_t n = tree.read(hostname, 0, buf, sizeof buf);
  EXPECT_EQ(std::string(reinterpret_cast<char*>(buf), n), "lazy\n");
  EXPECT_EQ(tree.readlink(must_lookup(tree, kRootIno, "link")), "etc/hostname");
  EXPECT_FALSE(tree.lookup(kRootIno, "absent"));
}

// A read fetches its blocks and a window ahead, not the whole file; reading on in order grows
// the window; every byte is right.
TEST(LazyTree, ReadsFetchAWindowNotTheWholeFile) {
  ImageFixture fx;
  FetchingFake store(fx.origin);
  unixfs::Dag dag(store);
  LazyTree tree(dag, fx.root);
  tree.set_prefetch([&](const std::vector<Cid>& cids) { store.prefetch(cids); });
  uint64_t big = must_lookup(tree, kRootIno, "big.bin");
  size_t before = store.raw_fetches.load();
  std::vector<uint8_t> buf(4096);
  ASSERT_EQ(tree.read(big, 0, buf.data(), buf.size()), buf.size());
  EXPECT_EQ(std::string(buf.begin(), buf.end()), fx.big.substr(0, 4096));
  size_t first = store.raw_fetches.load() - before;
  // 256 KiB leaves: the read's own and about 1 MiB ahead; a 3 MiB file has 13.
  EXPECT_GE(first, 2u);
  EXPECT_LE(first, 6u);
  std::string all;
  std::vector<uint8_t> chunk(128 * 1024);
  for (uint64_t off = 0;;) {
    size_t got = tree.read(big, off, chunk.data(), chunk.size());
    if (got == 0) break;
    all.append(chunk.begin(), chunk.begin() + static_cast<ptrdiff_t>(got));
    off += got;
  }
  EXPECT_EQ(all, fx.big);
  EXPECT_GT(store.prefetched, 0u);
}

// The FUSE server calls the tree from several threads at once (libfuse's multi-threaded loop):
// lookups, listings, stats and reads of the same nodes race to load them, and each thread still
// sees every byte right. (Under ThreadSanitizer, tsan.fuse, this is the lazy tree's race test.)
TEST(LazyTree, ConcurrentCallersSeeTheSameTree) {
  ImageFixture fx;
  FetchingFake store(fx.origin);
  unixfs::Dag dag(store);
  LazyTree tree(dag, fx.root);
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  threads.reserve(4);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      try {
        uint64_t many = must_lookup(tree, kRootIno, "many");
        if (tree.list(many).size() != 40) ++wrong;
        for (int i = 0; i < 40; ++i) {
          uint64_t f = must_lookup(tree, many, "f" + std::to_string((i + t * 10) % 40));
          if (!S_ISREG(tree.attr(f).st_mode)) ++wrong;
        }
        uint64_t big = must_lookup(tree, kRootIno, "big.bin");
        std::vector<uint8_t> chunk(100'000);
        // Each thread starts its reads at a different place in the file.
        for (size_t k = 0; k < fx.big.size(); k += chunk.size()) {
          uint64_t off = (k + static_cast<size_t>(t) * 700'000) % fx.big.size();
          size_t got = tree.read(big, off, chunk.data(), chunk.size());
          if (got == 0 ||
              fx.big.compare(off, got, reinterpret_cast<const char*>(chunk.data()), got) != 0)
            ++wrong;
        }
      } catch (const std::exception& e) {
        ADD_FAILURE() << e.what();
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(wrong.load(), 0);
}

// A successor replays the journal and gives every name the inode number the kernel knows,
// whatever order the directories were loaded in.
TEST(LazyTree, JournalReplayGivesTheSameNumbers) {
  ImageFixture fx;
  std::vector<std::pair<uint64_t, uint64_t>> journal;
  unixfs::Dag dag(fx.origin);
  LazyTree first(dag, fx.root, [&](uint64_t d, uint64_t f) { journal.emplace_back(d, f); });
  uint64_t many = must_lookup(first, kRootIno, "many");
  uint64_t f7 = must_lookup(first, many, "f7");
  uint64_t etc = must_lookup(first, kRootIno, "etc");
  uint64_t hostname = must_lookup(first, etc, "hostname");
  LazyTree second(dag, fx.root);
  second.replay(journal);
  EXPECT_EQ(must_lookup(second, kRootIno, "many"), many);
  EXPECT_EQ(must_lookup(second, many, "f7"), f7);
  EXPECT_EQ(must_lookup(second, etc, "hostname"), hostname);
  // A journal naming a directory this tree never numbered does not fit.
  LazyTree third(dag, fx.root);
  std::vector<std::pair<uint64_t, uint64_t>> wrong = {{kRootIno, 2}, {4242, 100}};
  EXPECT_THROW(third.replay(wrong), Error);
}

// A plain UnixFS tree: a raw file's size comes from its link, its block proves it when read;
// one whose link lies is an error, never short or wrong bytes.
TEST(LazyTree, PlainTreesAndSizeLies) {
  TempDir d;
  std::filesystem::create_directories(d.path + "/t");
  write_text(d.path + "/t/a.txt", "alpha");
  MemoryStore origin;
  unixfs::ImportOptions o;
  o.recursive = true;
  o.layout.cid_version = 1;
  o.layout.raw_leaves = true;
  o.dir.cid_version = 1;
  unixfs::Importer imp(origin, o, nullptr);
  Cid root = imp.add_path(d.path + "/t", "t").cid;
  FetchingFake store(origin);
  unixfs::Dag dag(store);
  LazyTree tree(dag, root);
  EXPECT_FALSE(tree.is_image());
  uint64_t a = must_lookup(tree, kRootIno, "a.txt");
  EXPECT_EQ(tree.attr(a).st_size, 5);
  EXPECT_EQ(store.raw_fetches.load(), 0u);
  uint8_t buf[16];
  EXPECT_EQ(tree.read(a, 0, buf, sizeof buf), 5u);
  EXPECT_EQ(tree.read(a, 5, buf, sizeof buf), 0u);

  // The same directory with a link claiming 9 bytes for the 5-byte block.
  Cid leaf = Cid::of(1, kCodecRaw, as_bytes("alpha"));
  dagpb::Node dir;
  dir.data = unixfs_pb::encode(unixfs_pb::Data{.type = unixfs_pb::Type::kDirectory});
  dir.links.push_back({leaf, std::string("a.txt"), 9});
  Bytes block = dagpb::encode(dir);
  Cid liar = Cid::of(1, kCodecDagPb, block);
  origin.put(liar, block);
  LazyTree lying(dag, liar);
  uint64_t la = must_lookup(lying, kRootIno, "a.txt");
  EXPECT_EQ(lying.attr(la).st_size, 9);
  EXPECT_THROW(lying.read(la, 0, buf, sizeof buf), Error);
}

}  // namespace
}  // namespace cidrun::fuse

namespace cidrun::fuse {
namespace {

Cid put_dir(MemoryStore& s, std::vector<dagpb::Link> links) {
  dagpb::Node n;
  n.links = std::move(links);
  n.data = unixfs_pb::encode(unixfs_pb::Data{.type = unixfs_pb::Type::kDirectory});
  Bytes b = dagpb::encode(n);
  Cid c = Cid::of(1, kCodecDagPb, b);
  s.put(c, b);
  return c;
}

// The kernel reads a listing a page at a time: each page is a slice, not a copy of the whole.
TEST(LazyTree, ListsADirectoryASliceAtATime) {
  MemoryStore s;
  Cid leaf = Cid::of(1, kCodecRaw, as_bytes("x"));
  s.put(leaf, as_bytes("x"));
  std::vector<dagpb::Link> links;
  links.reserve(10);
  for (int i = 0; i < 10; ++i) links.push_back({leaf, "f" + std::to_string(i), 1});
  unixfs::Dag dag(s);
  LazyTree tree(dag, put_dir(s, links));
  std::vector<Entry> slice = tree.list(kRootIno, 3, 4);
  ASSERT_EQ(slice.size(), 4U);
  EXPECT_EQ(slice.front().name, "f3");
  EXPECT_EQ(slice.back().name, "f6");
  EXPECT_EQ(tree.list(kRootIno, 8, 4).size(), 2U);
  EXPECT_TRUE(tree.list(kRootIno, 10, 4).empty());
  EXPECT_EQ(tree.list(kRootIno).size(), 10U);
}

// A file claiming more bytes than off_t holds would show a negative size: it is an error.
TEST(LazyTree, RefusesSizesPastOffT) {
  MemoryStore s;
  Cid leaf = Cid::of(1, kCodecRaw, as_bytes("x"));
  s.put(leaf, as_bytes("x"));
  uint64_t half = uint64_t{1} << 62;
  dagpb::Node file;
  file.links = {{leaf, std::nullopt, half}, {leaf, std::nullopt, half}};
  file.data = unixfs_pb::encode(
      {.type = unixfs_pb::Type::kFile, .filesize = 2 * half, .blocksizes = {half, half}});
  Bytes fb = dagpb::encode(file);
  Cid fc = Cid::of(1, kCodecDagPb, fb);
  s.put(fc, fb);
  unixfs::Dag dag(s);
  LazyTree tree(dag, put_dir(s, {{fc, std::string("huge"), 1}, {leaf, std::string("x"), 1}}));
  EXPECT_THROW(tree.attr(must_lookup(tree, kRootIno, "huge")), Error);
  EXPECT_EQ(tree.attr(must_lookup(tree, kRootIno, "x")).st_size, 1);
}

// A chain of directories deeper than `get`, checkouts and unpacking accept: the mount shows the
// same 256 levels and refuses to list below them.
TEST(LazyTree, RefusesDirectoriesNestedTooDeeply) {
  MemoryStore s;
  Cid dir = put_dir(s, {});
  for (int i = 0; i < 300; ++i) dir = put_dir(s, {{dir, std::string("d"), 1}});
  unixfs::Dag dag(s);
  LazyTree tree(dag, dir);
  uint64_t ino = kRootIno;
  for (size_t level = 0; level <= image::kMaxDirDepth; ++level) ino = must_lookup(tree, ino, "d");
  try {
    tree.lookup(ino, "d");
    ADD_FAILURE() << "a directory below 256 levels was listed";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("nested deeper than 256"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace cidrun::fuse
