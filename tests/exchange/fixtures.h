// Test content: a small UnixFS tree imported into a MemoryStore, and a well-behaved gateway
// answer built from it that a misbehaving test server can then distort.
#pragma once

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "exchange/car_stream.h"
#include "store/memstore.h"
#include "unixfs/importer.h"
#include "unixfs/reader.h"

namespace cidrun::testing {

struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/cidrun-test-XXXXXX";
    path = ::mkdtemp(tmpl);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
};

inline std::string random_bytes(size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(rng());
  return s;
}

inline void write_text(const std::string& path, const std::string& data) {
  std::ofstream(path, std::ios::binary) << data;
}

// A correct CAR (dups=n, DFS) of the DAG below `from` in `store`.
inline std::string car_of(BlockStore& store, const Cid& from) {
  Bytes out = exchange::car_header({from});
  unixfs::walk_dag(store, from, [&](const Cid& c, ByteView data) {
    Bytes p = exchange::car_section_prefix(c, data.size());
    out.insert(out.end(), p.begin(), p.end());
    out.insert(out.end(), data.begin(), data.end());
    return true;
  });
  return std::string(as_string(out));
}

// A tree with a multi-block file (dag-pb or raw leaves), small files and a subdirectory.
struct Fixture {
  TempDir dir;
  MemoryStore store;
  Cid root;
  std::vector<Cid> blocks;  // every block of the DAG, DFS order

  explicit Fixture(int cid_version = 0, size_t big = 3 * 1024 * 1024 + 123, size_t files = 5) {
    std::string t = dir.path + "/tree";
    std::filesystem::create_directories(t + "/sub");
    write_text(t + "/big.bin", random_bytes(big, 1));
    for (size_t i = 0; i < files; ++i) {
      write_text(t + "/sub/f" + std::to_string(i), "file " + std::to_string(i) + "\n");
    }
    write_text(t + "/hello.txt", "hello\n");
    unixfs::ImportOptions o;
    o.recursive = true;
    o.layout.cid_version = cid_version;
    o.layout.raw_leaves = cid_version == 1;
    o.dir.cid_version = cid_version;
    unixfs::Importer imp(store, o, nullptr);
    root = imp.add_path(t, "tree").cid;
    unixfs::walk_dag(store, root, [&](const Cid& c, ByteView) {
      blocks.push_back(c);
      return true;
    });
  }

  Bytes block(const Cid& c) { return *store.get(c); }

  // A correct CAR (dups=n, DFS) of the DAG below `from`.
  std::string car(const Cid& from) { return car_of(store, from); }
};

// The CID named in a gateway or kubo URL ("/ipfs/CID?..." or "...?arg=CID").
inline Cid cid_in(const std::string& target) {
  size_t p = target.find("/ipfs/");
  size_t start = p != std::string::npos ? p + 6 : target.find("arg=") + 4;
  size_t end = target.find_first_of("?&/", start);
  return Cid::parse(
      target.substr(start, end == std::string::npos ? std::string::npos : end - start));
}

}  // namespace cidrun::testing
