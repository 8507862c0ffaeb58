// Hostile UnixFS DAGs through every reader of them: `cat` (FileReader), `ls` and path
// resolution (Dag, basic and HAMT directories), `get` (export_tree from a flatfs store, with its
// copy_file_range fast path) and `serve` (the gateway's CAR walk, every dag-scope, entity-bytes
// and dups). The input describes up to 12 nodes, each linking only to earlier ones (diamonds
// allowed), with lying sizes, hostile names, HAMT fields and raw bytes; the nodes are encoded by
// the real encoders, so their CIDs are real and the readers verify nothing less than in
// production. The byte-level decoders have targets of their own (dagpb, car).
// Invariants: `get` writes nothing outside its target and gives each file the bytes `cat` gives;
// a CAR the gateway streams parses, every block matches its CID, and dups=n sends each block once.
#include <fuzzer/FuzzedDataProvider.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <map>
#include <set>

#include "exchange/car_stream.h"
#include "fuzz.h"
#include "gateway/car_response.h"
#include "ipld/dagpb.h"
#include "ipld/unixfs_pb.h"
#include "store/flatfs.h"
#include "store/memstore.h"
#include "store/reachable.h"
#include "unixfs/exporter.h"
#include "unixfs/reader.h"
#include "util/error.h"
#include "util/fd.h"

using namespace cidrun;
namespace fs = std::filesystem;

namespace {

constexpr size_t kMaxNodes = 12;
constexpr uint64_t kMaxRead = 1 << 20;  // what one input may make a reader produce

// Where get writes: CIDRUN_FUZZ_SCRATCH (scripts/fuzz.sh makes one per run on tmpfs and removes
// it), else a directory of our own on tmpfs, removed when the process exits normally.
class Scratch {
 public:
  Scratch() {
    if (const char* given = std::getenv("CIDRUN_FUZZ_SCRATCH")) {
      dir_ = given;
      return;
    }
    char tmpl[] = "/dev/shm/cidrun-fuzz-XXXXXX";
    char* d = ::mkdtemp(tmpl);
    FUZZ_CHECK(d != nullptr);
    dir_ = d;
    owned_ = true;
  }
  ~Scratch() {
    std::error_code ec;
    if (owned_) fs::remove_all(dir_, ec);
  }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  const std::string& dir() const { return dir_; }

 private:
  std::string dir_;
  bool owned_ = false;
};

std::string scratch_dir() {
  static Scratch scratch;
  return scratch.dir();
}

std::optional<std::string> maybe_name(FuzzedDataProvider& in) {
  switch (in.ConsumeIntegralInRange<int>(0, 5)) {
    case 0:
      return std::nullopt;
    case 1:
      return "";
    case 2:  // a HAMT slot prefix ("0A") with or without an entry name after it
      return std::string(1, "0123456789ABCDEF"[in.ConsumeIntegralInRange<int>(0, 15)]) +
             std::string(1, "0123456789ABCDEF"[in.ConsumeIntegralInRange<int>(0, 15)]) +
             in.ConsumeRandomLengthString(8);
    default:
      return in.ConsumeRandomLengthString(16);  // '/', '..', NUL, newlines...
  }
}

Cid build(FuzzedDataProvider& in, MemoryStore& store) {
  std::vector<Cid> made;
  size_t count = in.ConsumeIntegralInRange<size_t>(1, kMaxNodes);
  for (size_t i = 0; i < count && in.remaining_bytes() > 0; ++i) {
    int version = in.ConsumeBool() ? 1 : 0;
    int kind = in.ConsumeIntegralInRange<int>(0, 6);
    Bytes block;
    uint64_t codec = kCodecDagPb;
    if (kind == 0) {  // raw leaf
      block = to_bytes(in.ConsumeRandomLengthString(64));
      if (in.ConsumeBool()) block.resize(5000, 'r');  // big enough for the exporter's fast path
      codec = kCodecRaw;
      version = 1;
    } else if (kind == 1) {  // verbatim bytes as dag-pb
      block = to_bytes(in.ConsumeRandomLengthString(128));
    } else {
      unixfs_pb::Data d;
      static constexpr unixfs_pb::Type kTypes[] = {
          unixfs_pb::Type::kFile, unixfs_pb::Type::kDirectory, unixfs_pb::Type::kHamtShard,
          unixfs_pb::Type::kSymlink, unixfs_pb::Type::kRaw};
      d.type = kTypes[kind - 2];
      if (in.ConsumeBool()) {
        d.data = to_bytes(in.ConsumeRandomLengthString(64));
        if (in.ConsumeBool()) d.data->resize(5000, 'd');
      }
      dagpb::Node n;
      size_t links = made.empty() ? 0 : in.ConsumeIntegralInRange<size_t>(0, 4);
      uint64_t total = d.data ? d.data->size() : 0;
      for (size_t l = 0; l < links; ++l) {
        const Cid& to = made[in.ConsumeIntegralInRange<size_t>(0, made.size() - 1)];
        uint64_t bs = in.ConsumeBool() ? in.ConsumeIntegral<uint64_t>()
                                       : in.ConsumeIntegralInRange<uint64_t>(0, 6000);
        n.links.push_back(
            {to, maybe_name(in), in.ConsumeBool() ? std::optional(bs) : std::nullopt});
        if (d.type == unixfs_pb::Type::kFile || d.type == unixfs_pb::Type::kRaw) {
          d.blocksizes.push_back(bs);
          total += bs;
        }
      }
      if (in.ConsumeBool()) d.filesize = in.ConsumeBool() ? total : in.ConsumeIntegral<uint64_t>();
      if (d.type == unixfs_pb::Type::kHamtShard) {
        d.hash_type = in.ConsumeBool() ? unixfs_pb::kHashMurmur3 : in.ConsumeIntegral<uint8_t>();
        d.fanout = uint64_t{1} << in.ConsumeIntegralInRange<int>(0, 10);
        if (!d.data) d.data = to_bytes(in.ConsumeBytesAsString(32));  // the bitfield
      }
      if (in.ConsumeBool()) d.mode = in.ConsumeIntegral<uint32_t>();
      if (in.ConsumeBool()) {
        d.mtime = unixfs_pb::UnixTime{in.ConsumeIntegral<int64_t>(),
                                      in.ConsumeIntegralInRange<uint32_t>(0, 999999999)};
      }
      n.data = unixfs_pb::encode(d);
      block = dagpb::encode(n);
    }
    Cid c =
        version == 0 && codec == kCodecDagPb ? Cid::of(0, codec, block) : Cid::of(1, codec, block);
    store.put(c, block);
    made.push_back(c);
  }
  return made.empty() ? Cid::of(1, kCodecRaw, {}) : made.back();
}

// The bytes a file's leaves hold, counted along every path (a diamond counts its leaf once per
// path), capped: a DAG that expands beyond kMaxRead is not read whole by this target.
uint64_t expanded_size(MemoryStore& store, const Cid& cid, std::map<Cid, uint64_t>& memo) {
  if (auto it = memo.find(cid); it != memo.end()) return it->second;
  uint64_t total = 0;
  if (auto b = store.get(cid)) {
    total = b->size();
    if (cid.codec() == kCodecDagPb) {
      try {
        for (const auto& l : dagpb::decode(*b).links) {
          total = std::min(kMaxRead + 1, total + expanded_size(store, l.hash, memo));
        }
      } catch (const Error&) {
      }
    }
  }
  return memo[cid] = total;
}

// cat: the file's bytes, or nullopt when the reader refuses the DAG (or it is too big to read).
std::optional<std::string> cat(unixfs::Dag& dag, const Cid& cid) {
  try {
    unixfs::FileReader r(dag, cid);
    if (r.size() > kMaxRead) return std::nullopt;
    std::string out;
    r.stream([&](ByteView b) { out.append(as_string(b)); });
    FUZZ_CHECK(out.size() == r.size());
    return out;
  } catch (const Error&) {
    return std::nullopt;
  }
}

void read_everything(unixfs::Dag& dag, const Cid& root, bool small) {
  try {
    unixfs::NodeStat st = dag.stat(root);
    if (st.kind == unixfs::NodeKind::kDirectory) {
      size_t entries = 0;
      dag.list(root, [&](const unixfs::DirEntryRef& e) {
        if (++entries > 64) return;
        try {
          (void)dag.lookup(root, e.name);
          (void)dag.stat(e.cid);
        } catch (const Error&) {
        }
      });
      (void)dag.resolve(root, "a/b");
    }
  } catch (const Error&) {
  }
  if (small) (void)cat(dag, root);
  try {
    size_t seen = 0;
    unixfs::walk_dag(dag.store(), root, [&](const Cid&, ByteView) { return ++seen < 1000; });
  } catch (const Error&) {
  }
}

// get from a flatfs store into out; afterwards every file under out holds what cat gives.
void get_and_compare(MemoryStore& mem, unixfs::Dag& mem_dag, const Cid& root) {
  std::string base = scratch_dir();
  fs::remove_all(base + "/blocks");
  fs::remove_all(base + "/out");
  FlatfsStore flatfs(base + "/blocks", true);
  std::vector<Cid> cids;
  mem.for_each([&](ByteView mh) { cids.push_back(cid_of_multihash(mh)); });
  for (const auto& c : cids) flatfs.put(c, *mem.get(c));
  unixfs::Dag dag(flatfs);
  fs::create_directories(base + "/out");
  // A file root alone is compared; a directory's files are found by their names below.
  try {
    unixfs::export_tree(dag, root, base + "/out/x", "x");
  } catch (const Error&) {
  }
  for (const auto& e : fs::directory_iterator(base + "/out")) {
    FUZZ_CHECK(e.path().filename() == "x");  // nothing beside the target
  }
  std::string top = base + "/out/x";
  if (fs::is_regular_file(fs::symlink_status(top))) {
    if (auto want = cat(mem_dag, root)) FUZZ_CHECK(read_text_file(top) == *want);
    return;
  }
  if (!fs::is_directory(fs::symlink_status(top))) return;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(top, ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    if (!it->is_regular_file() || it->is_symlink()) continue;
    std::string rel = fs::relative(it->path(), top).string();
    try {
      if (auto want = cat(mem_dag, mem_dag.resolve(root, rel))) {
        FUZZ_CHECK(read_text_file(it->path().string()) == *want);
      }
    } catch (const Error&) {
    }
  }
}

void serve_car(MemoryStore& store, const Cid& root, FuzzedDataProvider& in) {
  static constexpr exchange::DagScope kScopes[] = {
      exchange::DagScope::kAll, exchange::DagScope::kEntity, exchange::DagScope::kBlock};
  exchange::DagScope scope = kScopes[in.ConsumeIntegralInRange<int>(0, 2)];
  bool dups = in.ConsumeBool();
  std::optional<gateway::ByteRange> range;
  if (in.ConsumeBool()) {
    range = gateway::ByteRange{in.ConsumeIntegral<int64_t>(), std::nullopt};
    if (in.ConsumeBool()) range->to = in.ConsumeIntegral<int64_t>();
  }
  Bytes out;
  gateway::CarSink sink{.write = [&](ByteView a, ByteView b) {
    out.insert(out.end(), a.begin(), a.end());
    out.insert(out.end(), b.begin(), b.end());
    return out.size() < 4 * kMaxRead;  // a client that leaves after a while
  }};
  try {
    gateway::stream_car(store, root, {}, root, scope, range, dups, sink);
  } catch (const Error&) {
    return;  // missing block, bad node, or the client "left": the response is cut
  }
  std::set<Cid> seen;
  exchange::CarStreamParser p([&](const Cid& c, ByteView b) {
    FUZZ_CHECK(c.matches(b));
    FUZZ_CHECK(seen.insert(c).second || dups);
  });
  p.feed(out);
  p.finish();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  MemoryStore store;
  Cid root = build(in, store);
  unixfs::Dag dag(store);
  std::map<Cid, uint64_t> memo;
  // The readers that produce every byte of a file are only given DAGs whose bytes fit; the
  // walks that must stay proportional to the blocks (listing, resolving, serving) get them all.
  bool small = expanded_size(store, root, memo) <= kMaxRead;
  read_everything(dag, root, small);
  if (small) get_and_compare(store, dag, root);
  serve_car(store, root, in);
  return 0;
}
