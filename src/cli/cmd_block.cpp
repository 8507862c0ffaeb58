// cidrun block get|put|stat|rm: raw blocks in the local store (kubo's `ipfs block`).
#include <unistd.h>

#include <cstdio>
#include <memory>

#include "cli/command.h"
#include "ipld/dagpb.h"
#include "store/pins.h"
#include "store/repo.h"
#include "store/repo_lock.h"
#include "util/error.h"
#include "util/fd.h"

namespace cidrun::cli {
namespace {

// kubo's hard limit for a block accepted by `block put` (--allow-big-block lifts it), so that
// every block we mint can also travel over bitswap.
constexpr size_t kMaxBlockSize = 1u << 20;

struct BlockFlags {
  std::string cid;
  std::vector<std::string> cids;
  std::vector<std::string> files;
  std::string codec = "raw";
  std::string mhtype = "sha2-256";
  bool pin = false;
  bool allow_big = false;
  bool force = false;
  bool quiet = false;
};

Bytes read_input(const std::string& path) {
  if (path == "-") {
    Bytes out;
    uint8_t buf[65536];
    for (;;) {
      size_t n = read_full(STDIN_FILENO, buf, sizeof buf, "stdin");
      out.insert(out.end(), buf, buf + n);
      if (n < sizeof buf) return out;
    }
  }
  return read_file(path);
}

int block_get(const BlockFlags& f, const Globals& g) {
  auto repo = Repo::open(repo_path(g), Repo::OpenMode::kMustExist);
  Cid cid = Cid::parse(f.cid);
  auto data = repo->blocks().get(cid);
  if (!data) throw NotFound("block " + cid.str() + " is not in the local store");
  write_full(STDOUT_FILENO, data->data(), data->size(), "stdout");
  return 0;
}

int block_put(const BlockFlags& f, const Globals& g) {
  uint64_t codec;
  if (f.codec == "raw") {
    codec = kCodecRaw;
  } else if (f.codec == "dag-pb") {
    codec = kCodecDagPb;
  } else {
    throw Error("unsupported --cid-codec '" + f.codec + "' (supported: raw, dag-pb)");
  }
  if (f.mhtype != "sha2-256")
    throw Error("unsupported --mhtype '" + f.mhtype + "' (supported: sha2-256)");
  auto repo = Repo::open(repo_path(g));
  RepoLock lock(*repo, RepoLock::Mode::kShared);
  std::vector<std::string> inputs = f.files.empty() ? std::vector<std::string>{"-"} : f.files;
  std::vector<Cid> put;
  for (const auto& in : inputs) {
    Bytes data = read_input(in);
    std::string label = in == "-" ? "stdin" : in;
    if (data.size() > kMaxBlockSize && !f.allow_big) {
      throw Error(label + ": block of " + std::to_string(data.size()) +
                  " bytes exceeds the 1 MiB limit (use --allow-big-block)");
    }
    if (codec == kCodecDagPb) {
      try {
        dagpb::decode(data);
      } catch (const Error& e) {
        throw Error(label + ": not a valid dag-pb block: " + e.what());
      }
    }
    Cid cid = Cid::of(1, codec, data);
    repo->blocks().put_verified(cid, data);
    put.push_back(cid);
  }
  repo->blocks().sync();
  for (const auto& cid : put) {
    if (f.pin) repo->pin(cid, PinType::kRecursive);
    std::printf("%s\n", cid.str().c_str());
  }
  return 0;
}

int block_stat(const BlockFlags& f, const Globals& g) {
  auto repo = Repo::open(repo_path(g), Repo::OpenMode::kMustExist);
  Cid cid = Cid::parse(f.cid);
  auto size = repo->blocks().size(cid);
  if (!size) throw NotFound("block " + cid.str() + " is not in the local store");
  std::printf("Key: %s\nSize: %llu\n", cid.str().c_str(), static_cast<unsigned long long>(*size));
  return 0;
}

int block_rm(const BlockFlags& f, const Globals& g) {
  auto repo = Repo::open(repo_path(g), Repo::OpenMode::kMustExist);
  // Removing blocks is gc's kind of change: no writer may be between put and pin meanwhile.
  RepoLock lock(*repo, RepoLock::Mode::kExclusive);
  int status = 0;
  for (const auto& text : f.cids) {
    Cid cid = Cid::parse(text);
    if (!f.force) {
      if (auto holder = find_pin_holding(*repo, cid)) {
        std::string how = holder->indirect ? "indirectly, below " + holder->root.str()
                          : holder->type == PinType::kRecursive ? "recursively"
                                                                : "directly";
        std::fprintf(stderr, "cidrun: error: cannot remove %s: pinned %s (use --force)\n",
                     cid.str().c_str(), how.c_str());
        status = 1;
        continue;
      }
    }
    if (repo->blocks().remove(cid)) {
      if (!f.quiet) std::printf("removed %s\n", cid.str().c_str());
    } else {
      std::fprintf(stderr, "cidrun: error: cannot remove %s: block not found\n", cid.str().c_str());
      status = 1;
    }
  }
  repo->blocks().sync();
  return status;
}

const Registrar reg("block", [](Command& app, Globals& g) {
  auto f = std::make_shared<BlockFlags>();
  auto cmd = app.add_subcommand("block", "Raw blocks in the local store (kubo's ipfs block)");
  cmd.require_subcommand();

  auto get = cmd.add_subcommand("get", "Write a block's raw bytes to stdout");
  get.add_option("cid", f->cid, "CID of the block").required();
  get.callback([f, &g] { g.exit_code = block_get(*f, g); });

  auto put = cmd.add_subcommand("put", "Store files (or stdin) as blocks and print their CIDs");
  put.add_option("files", f->files, "Files, one block each (stdin when none)");
  put.add_option("--cid-codec", f->codec, "raw (default) or dag-pb (checked to decode)");
  put.add_option("--mhtype", f->mhtype, "Multihash function: sha2-256");
  put.add_flag("--pin", f->pin, "Pin the new blocks");
  put.add_flag("--allow-big-block", f->allow_big, "Accept blocks over 1 MiB");
  put.callback([f, &g] { g.exit_code = block_put(*f, g); });

  auto stat = cmd.add_subcommand("stat", "Print a block's key and size");
  stat.add_option("cid", f->cid, "CID of the block").required();
  stat.callback([f, &g] { g.exit_code = block_stat(*f, g); });

  auto rm = cmd.add_subcommand("rm", "Remove blocks (pinned ones only with --force)");
  rm.add_option("cids", f->cids, "CIDs of the blocks").required();
  rm.add_flag("-f,--force", f->force, "Remove even blocks held by a pin");
  rm.add_flag("-q,--quiet", f->quiet, "Print nothing on success");
  rm.callback([f, &g] { g.exit_code = block_rm(*f, g); });
});

}  // namespace
}  // namespace cidrun::cli
