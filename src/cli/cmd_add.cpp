// cidrun add: kubo's `ipfs add`, same flags, same output, same CIDs.
#include <unistd.h>

#include <cstdio>
#include <memory>

#include "cli/command.h"
#include "store/memstore.h"
#include "store/repo.h"
#include "store/repo_lock.h"
#include "unixfs/chunker.h"
#include "unixfs/importer.h"
#include "util/error.h"
#include "util/progress.h"
#include "util/units.h"

namespace cidrun::cli {
namespace {

struct AddFlags {
  std::vector<std::string> paths;
  bool recursive = false;
  bool hidden = false;
  bool only_hash = false;
  bool quiet = false;
  bool quieter = false;
  bool silent = false;
  bool progress = false;
  bool wrap = false;
  bool pin = true;
  int cid_version = 0;
  bool raw_leaves = false;
  std::string chunker;
  bool trickle = false;
  size_t max_links = 0;
  std::string profile;
  std::string hamt_threshold;
  std::string hamt_estimation;
  std::string stdin_name;
  bool preserve_mode = false;
  bool preserve_mtime = false;
  std::string mode;
  int64_t mtime = 0;
  uint32_t mtime_nsecs = 0;
  Option cid_version_opt;
  Option raw_leaves_opt;
  Option mode_opt;
  Option mtime_opt;
  Option nsecs_opt;
};

std::string base_name(std::string p) {
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  if (auto s = p.rfind('/'); s != std::string::npos && p.size() > 1) p = p.substr(s + 1);
  return p;
}

// Turns kubo's flags (profile first, then explicit flags over it) into importer options.
unixfs::ImportOptions resolve_options(const AddFlags& f) {
  unixfs::ImportOptions o;
  bool explicit_raw = false;
  bool raw = false;
  if (!f.profile.empty() && f.profile != "legacy-cid-v0" && f.profile != "unixfs-v0-2015") {
    if (f.profile != "unixfs-v1-2025") {
      throw Error("unknown profile '" + f.profile + "' (known: legacy-cid-v0, unixfs-v1-2025)");
    }
    o.layout.cid_version = 1;
    raw = true;
    explicit_raw = true;  // the profile sets Import.UnixFSRawLeaves, as kubo's config does
    o.chunker = "size-1048576";
    o.layout.max_links = 1024;
    o.dir.estimation = unixfs::HamtEstimation::kBlock;
  }
  if (f.cid_version_opt.count() > 0) {
    if (f.cid_version != 0 && f.cid_version != 1) {
      throw Error("unknown CID version " + std::to_string(f.cid_version));
    }
    o.layout.cid_version = f.cid_version;
    if (f.cid_version == 1 && !explicit_raw) raw = true;  // kubo: CIDv1 implies raw leaves
  }
  if (f.raw_leaves_opt.count() > 0) {
    raw = f.raw_leaves;
    explicit_raw = true;
  }
  if (!f.chunker.empty()) o.chunker = f.chunker;
  if (f.max_links > 0) o.layout.max_links = f.max_links;
  if (f.max_links == 1) throw Error("--max-file-links must be at least 2");
  o.layout.trickle = f.trickle;
  if (!f.hamt_threshold.empty()) o.dir.threshold = parse_size(f.hamt_threshold);
  if (!f.hamt_estimation.empty()) {
    if (f.hamt_estimation == "links")
      o.dir.estimation = unixfs::HamtEstimation::kLinks;
    else if (f.hamt_estimation == "block")
      o.dir.estimation = unixfs::HamtEstimation::kBlock;
    else if (f.hamt_estimation == "disabled")
      o.dir.estimation = unixfs::HamtEstimation::kDisabled;
    else
      throw Error("--hamt-estimation must be links, block or disabled");
  }
  o.dir.cid_version = o.layout.cid_version;

  o.preserve_mode = f.preserve_mode;
  o.preserve_mtime = f.preserve_mtime;
  if (f.mode_opt.count() > 0) {
    size_t used = 0;
    unsigned long m = 0;
    try {
      m = std::stoul(f.mode, &used, 8);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != f.mode.size() || f.mode.empty() || m > 07777) {
      throw Error("invalid --mode '" + f.mode + "': expected octal permissions up to 7777");
    }
    if (m != 0) o.mode = static_cast<uint32_t>(m);  // kubo: 0 means "not set"
  }
  if (f.nsecs_opt.count() > 0 && f.mtime_opt.count() == 0) {
    throw Error("--mtime-nsecs requires --mtime");
  }
  if (f.mtime_nsecs > 999999999) throw Error("--mtime-nsecs must be below 1000000000");
  if (f.mtime_opt.count() > 0 && f.mtime != 0) {
    o.mtime = unixfs_pb::UnixTime{f.mtime, f.mtime_nsecs};
  }
  bool metadata = o.preserve_mode || o.preserve_mtime || o.mode || o.mtime;
  if (metadata) {
    // UnixFS metadata lives in dag-pb nodes; raw leaves cannot carry it (kubo add.go).
    if (explicit_raw && raw) {
      throw Error(
          "--raw-leaves cannot be used with --preserve-mode, --preserve-mtime, --mode or --mtime");
    }
    raw = false;
  }
  o.layout.raw_leaves = raw;
  unixfs::validate_chunker_spec(o.chunker);
  o.recursive = f.recursive;
  o.hidden = f.hidden;
  return o;
}

int run_add(const AddFlags& f, const Globals& g) {
  unixfs::ImportOptions opts = resolve_options(f);
  std::unique_ptr<Repo> repo;
  std::unique_ptr<RepoLock> lock;
  std::unique_ptr<MemoryStore> mem;
  BlockStore* store = nullptr;
  if (f.only_hash) {
    mem = std::make_unique<MemoryStore>(/*keep_data=*/false);
    store = mem.get();
  } else {
    repo = Repo::open(repo_path(g));
    // Shared with other writers, exclusive against `repo gc`: new blocks are not pinned until
    // the end, and gc must not see them before.
    lock = std::make_unique<RepoLock>(*repo, RepoLock::Mode::kShared);
    store = &repo->blocks();
  }
  bool show_progress =
      f.progress || (!f.quiet && !f.quieter && !f.silent && Progress::stderr_is_tty());
  Progress progress("adding", 0, show_progress && !f.silent);

  std::vector<unixfs::AddedEntry> roots;
  auto print = [&](const unixfs::AddedEntry& e) {
    if (f.silent || f.quieter) return;
    if (f.quiet) {
      std::printf("%s\n", e.cid.str().c_str());
    } else {
      std::printf("added %s %s\n", e.cid.str().c_str(), e.path.c_str());
    }
  };
  unixfs::Importer importer(*store, opts, print, [&](uint64_t n) { progress.add(n); });

  std::vector<unixfs::DirEntry> wrapped;
  if (f.paths.empty()) {
    std::string name = f.stdin_name;
    unixfs::Importer stdin_importer(*store, opts, nullptr, [&](uint64_t n) { progress.add(n); });
    auto info = stdin_importer.add_stream(STDIN_FILENO, name);
    if (name.empty()) name = info.cid.str();  // kubo names an unnamed stdin by its CID
    print({name, info.cid, info.tsize, false});
    roots.push_back({name, info.cid, info.tsize, false});
    wrapped.push_back({name, info});
  } else {
    for (const auto& p : f.paths) {
      std::string name = base_name(p);
      auto info = importer.add_path(p, name);
      roots.push_back({name, info.cid, info.tsize, false});
      wrapped.push_back({name, info});
    }
  }
  if (f.wrap) {
    auto info = unixfs::build_directory(*store, wrapped, opts.dir, {});
    print({"", info.cid, info.tsize, true});
    roots = {{"", info.cid, info.tsize, true}};
  }
  progress.finish();
  if (repo) {
    repo->blocks().sync();
    if (f.pin) {
      for (const auto& r : roots) repo->pin(r.cid, PinType::kRecursive);
    }
  }
  if (f.quieter && !f.silent) {
    for (const auto& r : roots) std::printf("%s\n", r.cid.str().c_str());
  }
  return 0;
}

const Registrar reg("add", [](Command& app, Globals& g) {
  auto f = std::make_shared<AddFlags>();
  auto cmd = app.add_subcommand(
      "add", "Add files to the block store and print their CIDs (kubo's ipfs add)");
  cmd.add_option("paths", f->paths, "Files or directories to add (stdin when none)");
  cmd.add_flag("-r,--recursive", f->recursive, "Add directory paths recursively");
  cmd.add_flag("-H,--hidden", f->hidden, "Include files whose names start with a dot");
  cmd.add_flag("-n,--only-hash", f->only_hash, "Only compute CIDs; write nothing");
  cmd.add_flag("-q,--quiet", f->quiet, "Print only CIDs");
  cmd.add_flag("-Q,--quieter", f->quieter, "Print only the final CID");
  cmd.add_flag("--silent", f->silent, "Print nothing");
  cmd.add_flag("-p,--progress", f->progress, "Show a progress bar");
  cmd.add_flag("-w,--wrap-with-directory", f->wrap, "Wrap the added paths in a directory");
  cmd.add_flag("--pin", f->pin, "Pin the added root (default true; --pin=false to skip)");
  f->cid_version_opt = cmd.add_option("--cid-version", f->cid_version, "CID version: 0 or 1");
  f->raw_leaves_opt = cmd.add_flag("--raw-leaves", f->raw_leaves, "Use raw blocks for leaves");
  cmd.add_option("-s,--chunker", f->chunker, "size-N, rabin[-min-avg-max] or buzhash");
  cmd.add_flag("-t,--trickle", f->trickle, "Use the trickle DAG layout");
  cmd.add_option("--max-file-links", f->max_links, "Maximum links per file node (default 174)");
  cmd.add_option("--profile", f->profile, "Import profile: legacy-cid-v0 or unixfs-v1-2025");
  cmd.add_option("--hamt-threshold", f->hamt_threshold,
                 "Shard directories whose estimated size exceeds this (default 256KiB; 0 = never)");
  cmd.add_option("--hamt-estimation", f->hamt_estimation, "links, block or disabled");
  cmd.add_option("--stdin-name", f->stdin_name, "Name for data read from stdin");
  cmd.add_flag("--preserve-mode", f->preserve_mode, "Store permission bits (UnixFS 1.5)");
  cmd.add_flag("--preserve-mtime", f->preserve_mtime, "Store modification times (UnixFS 1.5)");
  f->mode_opt = cmd.add_option("--mode", f->mode, "Store this octal mode on every entry");
  f->mtime_opt = cmd.add_option("--mtime", f->mtime, "Store this mtime (seconds since 1970)");
  f->nsecs_opt = cmd.add_option("--mtime-nsecs", f->mtime_nsecs, "Nanoseconds for --mtime");
  cmd.callback([f, &g] { g.exit_code = run_add(*f, g); });
});

}  // namespace
}  // namespace cidrun::cli
