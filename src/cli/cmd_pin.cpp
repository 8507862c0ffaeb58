// cidrun pin add|rm|ls: roots that `repo gc` keeps (kubo's `ipfs pin`).
#include <cstdio>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>

#include "cli/command.h"
#include "store/pins.h"
#include "store/repo.h"
#include "store/repo_lock.h"
#include "unixfs/reader.h"
#include "util/error.h"

namespace cidrun::cli {
namespace {

struct PinFlags {
  std::vector<std::string> paths;
  bool recursive = true;
  bool direct = false;
  std::string type = "all";
  bool json = false;
  bool quiet = false;
};

Cid resolve_arg(BlockStore& store, const std::string& text) {
  auto [root, path] = unixfs::Dag::split_path(text);
  if (path.empty()) return root;
  unixfs::Dag dag(store);
  return dag.resolve(root, path);
}

int pin_add(const PinFlags& f, const Globals& g) {
  auto repo = Repo::open(repo_path(g));
  // Shared: gc must not run between our completeness check and the pin file landing.
  RepoLock lock(*repo, RepoLock::Mode::kShared);
  PinType type = (f.direct || !f.recursive) ? PinType::kDirect : PinType::kRecursive;
  for (const auto& p : f.paths) {
    Cid cid = resolve_arg(repo->blocks(), p);
    pin_checked(*repo, cid, type);
    std::printf("pinned %s %s\n", cid.str().c_str(),
                type == PinType::kRecursive ? "recursively" : "directly");
  }
  return 0;
}

int pin_rm(const PinFlags& f, const Globals& g) {
  auto repo = Repo::open(repo_path(g), Repo::OpenMode::kMustExist);
  for (const auto& p : f.paths) {
    Cid cid = resolve_arg(repo->blocks(), p);
    unpin_checked(*repo, cid);
    std::printf("unpinned %s\n", cid.str().c_str());
  }
  return 0;
}

int pin_ls(const PinFlags& f, const Globals& g) {
  if (f.type != "all" && f.type != "recursive" && f.type != "direct" && f.type != "indirect") {
    throw Error("--type must be all, recursive, direct or indirect");
  }
  auto repo = Repo::open(repo_path(g), Repo::OpenMode::kMustExist);
  // Name order, and one type per CID with kubo's precedence: recursive, direct, indirect.
  std::map<std::string, std::string> keys;
  for (const auto& [cid, t] : repo->pins()) {
    std::string type = t == PinType::kRecursive ? "recursive" : "direct";
    if (f.type != "all" && f.type != type) continue;
    auto& slot = keys[cid.str()];
    if (slot != "recursive") slot = type;
  }
  if (f.type == "all" || f.type == "indirect") {
    for_each_indirect(*repo, [&](const Cid& c) { keys.emplace(c.str(), "indirect"); });
  }
  if (!f.paths.empty()) {
    std::map<std::string, std::string> wanted;
    for (const auto& p : f.paths) {
      Cid cid = resolve_arg(repo->blocks(), p);
      auto it = keys.find(cid.str());
      if (it == keys.end()) throw Error("path '" + p + "' is not pinned");
      wanted.insert(*it);
    }
    keys = std::move(wanted);
  }
  if (f.json) {
    nlohmann::json j = {{"Keys", nlohmann::json::object()}};
    for (const auto& [cid, type] : keys) j["Keys"][cid] = {{"Type", type}};
    std::printf("%s\n", j.dump().c_str());
    return 0;
  }
  for (const auto& [cid, type] : keys) {
    if (f.quiet) {
      std::printf("%s\n", cid.c_str());
    } else {
      std::printf("%s %s\n", cid.c_str(), type.c_str());
    }
  }
  return 0;
}

const Registrar reg("pin", [](Command& app, Globals& g) {
  auto f = std::make_shared<PinFlags>();
  auto cmd = app.add_subcommand("pin", "Keep DAGs from garbage collection (kubo's ipfs pin)");
  cmd.require_subcommand();

  auto add = cmd.add_subcommand("add", "Pin CIDs (recursively by default); the DAG must be local");
  add.add_option("paths", f->paths, "CID or CID/path").required();
  add.add_flag("-r,--recursive", f->recursive,
               "Pin the whole DAG (default; --recursive=false: one block)");
  add.add_flag("--direct", f->direct, "Pin only the block itself");
  add.callback([f, &g] { g.exit_code = pin_add(*f, g); });

  auto rm = cmd.add_subcommand("rm", "Remove pins");
  rm.add_option("paths", f->paths, "CID or CID/path").required();
  rm.callback([f, &g] { g.exit_code = pin_rm(*f, g); });

  auto ls = cmd.add_subcommand("ls", "List pinned CIDs");
  ls.add_option("paths", f->paths, "Only these CIDs");
  ls.add_option("-t,--type", f->type, "all, recursive, direct or indirect");
  ls.add_flag("--json", f->json, "Print JSON ({\"Keys\": {cid: {\"Type\": ...}}})");
  ls.add_flag("-q,--quiet", f->quiet, "Print only CIDs");
  ls.callback([f, &g] { g.exit_code = pin_ls(*f, g); });
});

}  // namespace
}  // namespace cidrun::cli
