// cidrun repo stat|verify|gc: the health and size of the local store.
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>

#include "cli/command.h"
#include "image/gc.h"
#include "image/meta_pack.h"
#include "store/gc.h"
#include "store/reachable.h"
#include "store/repo.h"
#include "store/repo_lock.h"
#include "store/verify.h"
#include "util/error.h"
#include "util/log.h"

namespace cidrun::cli {
namespace {

struct RepoFlags {
  bool json = false;
  bool size_only = false;
  bool repair = false;
  bool quiet = false;
};

int repo_stat(const RepoFlags& f, const Globals& g) {
  auto repo = Repo::open(repo_path(g), Repo::OpenMode::kMustExist);
  uint64_t blocks = 0;
  uint64_t bytes = 0;
  repo->blocks().for_each([&](ByteView mh) {
    try {
      auto size = repo->blocks().size(cid_of_multihash(mh));
      if (!size) return;  // removed while we counted
      ++blocks;
      bytes += *size;
    } catch (const Error&) {
      // A file whose name is not a multihash is not a block.
    }
  });
  if (f.json) {
    nlohmann::json j = {{"RepoSize", bytes}, {"RepoPath", repo->path()}};
    if (!f.size_only) j["NumObjects"] = blocks;
    std::printf("%s\n", j.dump().c_str());
  } else {
    if (!f.size_only) std::printf("NumObjects: %llu\n", static_cast<unsigned long long>(blocks));
    std::printf("RepoSize:   %llu\n", static_cast<unsigned long long>(bytes));
    std::printf("RepoPath:   %s\n", repo->path().c_str());
  }
  return 0;
}

int repo_verify(const RepoFlags& f, const Globals& g) {
  auto repo = Repo::open(repo_path(g), Repo::OpenMode::kMustExist);
  auto r = verify_repo(*repo, f.repair, [](const std::string& line) {
    std::printf("%s\n", line.c_str());
    std::fflush(stdout);
  });
  if (r.ok()) {
    std::printf("verify complete, all %llu blocks validated.\n",
                static_cast<unsigned long long>(r.blocks));
    return 0;
  }
  std::fprintf(stderr,
               "cidrun: error: verify found %zu corrupt, %zu unreadable and %zu missing blocks "
               "(of %llu)%s\n",
               r.corrupt.size(), r.unreadable.size(), r.missing.size(),
               static_cast<unsigned long long>(r.blocks),
               f.repair ? "; corrupt ones removed" : "; --repair removes corrupt ones");
  return 1;
}

int repo_gc(const RepoFlags& f, const Globals& g) {
  auto repo = Repo::open(repo_path(g), Repo::OpenMode::kMustExist);
  // Checkouts first: an image whose root is no longer pinned or leased goes with its blocks.
  auto ir = image::collect_images(*repo);
  auto r = collect_garbage(*repo, [&](const Cid& cid) {
    if (!f.quiet) std::printf("removed %s\n", cid.str().c_str());
  });
  // Then the cached files: a block reference (kept or not by the line above) may name one.
  ir.files = image::sweep_image_files(*repo);
  {
    // Then the metadata packs of images whose blocks went (a pack is a copy, see meta_pack.h).
    RepoLock lock(*repo, RepoLock::Mode::kExclusive);
    size_t packs = image::sweep_meta_packs(*repo, repo->blocks());
    if (packs) log::debug("repo gc: removed " + std::to_string(packs) + " metadata packs");
  }
  if (!f.quiet) {
    std::fprintf(stderr, "removed %llu blocks (%llu bytes), kept %llu\n",
                 static_cast<unsigned long long>(r.blocks_removed),
                 static_cast<unsigned long long>(r.bytes_removed),
                 static_cast<unsigned long long>(r.blocks_kept));
    std::fprintf(stderr,
                 "removed %llu image checkouts and %llu cached files (%llu bytes); kept %llu "
                 "checkouts and %llu cached files (%llu bytes)\n",
                 static_cast<unsigned long long>(ir.checkouts_removed),
                 static_cast<unsigned long long>(ir.files.files_removed),
                 static_cast<unsigned long long>(ir.files.bytes_removed),
                 static_cast<unsigned long long>(ir.checkouts_kept),
                 static_cast<unsigned long long>(ir.files.files_kept),
                 static_cast<unsigned long long>(ir.files.bytes_kept));
  }
  return 0;
}

const Registrar reg("repo", [](Command& app, Globals& g) {
  auto f = std::make_shared<RepoFlags>();
  auto cmd = app.add_subcommand("repo", "The local block store: stat, verify, gc");
  cmd.require_subcommand();

  auto stat = cmd.add_subcommand("stat", "Number of blocks and their total size");
  stat.add_flag("--json", f->json, "Print JSON");
  stat.add_flag("-s,--size-only", f->size_only, "Only the size");
  stat.callback([f, &g] { g.exit_code = repo_stat(*f, g); });

  auto verify = cmd.add_subcommand("verify", "Rehash every block; check pinned DAGs are complete");
  verify.add_flag("--repair", f->repair, "Remove corrupt blocks");
  verify.callback([f, &g] { g.exit_code = repo_verify(*f, g); });

  auto gc = cmd.add_subcommand("gc", "Remove blocks no pin or running operation needs");
  gc.add_flag("-q,--quiet", f->quiet, "Print nothing");
  gc.callback([f, &g] { g.exit_code = repo_gc(*f, g); });
});

}  // namespace
}  // namespace cidrun::cli
