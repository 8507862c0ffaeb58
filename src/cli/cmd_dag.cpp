// cidrun dag export|import: DAGs as CAR files (kubo's `ipfs dag export/import`).
// export streams a CARv1 in DFS pre-order without duplicates; import reads CARv1/CARv2, verifies
// every block into a staging area and commits each file whole, then pins the roots.
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <memory>

#include "cli/command.h"
#include "ipld/car.h"
#include "store/lease.h"
#include "store/pins.h"
#include "store/repo.h"
#include "store/repo_lock.h"
#include "store/staging.h"
#include "unixfs/reader.h"
#include "util/error.h"
#include "util/fd.h"
#include "util/progress.h"

namespace cidrun::cli {
namespace {

struct DagFlags {
  std::string root;
  std::string output;
  std::vector<std::string> files;
  bool pin_roots = true;
  bool stats = false;
  bool silent = false;
  bool progress = false;
};

int dag_export(const DagFlags& f, const Globals& g) {
  auto repo = Repo::open(repo_path(g), Repo::OpenMode::kMustExist);
  auto [root, path] = unixfs::Dag::split_path(f.root);
  Cid cid = root;
  if (!path.empty()) {
    unixfs::Dag dag(repo->blocks());
    cid = dag.resolve(root, path);
  }
  if (!repo->blocks().has(cid)) throw NotFound("block " + cid.str() + " is not in the local store");
  Lease lease(*repo, cid);
  // To a file: write beside it and rename at the end, so a failed export leaves no partial CAR.
  UniqueFd file;
  std::string tmp;
  int fd = STDOUT_FILENO;
  if (!f.output.empty() && f.output != "-") {
    tmp = f.output + ".tmp-" + std::to_string(::getpid());
    file.reset(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    if (!file.valid()) throw_errno("create " + tmp);
    fd = file.get();
  }
  Progress progress("exporting", 0, f.progress);
  try {
    car::Writer writer(fd, {cid}, tmp.empty() ? "stdout" : tmp);
    unixfs::walk_dag(repo->blocks(), cid, [&](const Cid& c, ByteView block) {
      writer.add(c, block);
      progress.add(block.size(), 1);
      return true;
    });
    writer.flush();
    if (!tmp.empty()) {
      if (::fsync(fd) != 0) throw_errno("fsync " + tmp);
      if (::rename(tmp.c_str(), f.output.c_str()) != 0) throw_errno("rename " + tmp);
    }
  } catch (...) {
    if (!tmp.empty()) ::unlink(tmp.c_str());
    throw;
  }
  progress.finish();
  return 0;
}

struct ImportTotals {
  uint64_t blocks = 0;
  uint64_t bytes = 0;
};

// Reads one CAR whole into a staging area, then commits it; nothing reaches the store unless
// every block of the file verified.
std::vector<Cid> import_one(Repo& repo, const std::string& name, ImportTotals& totals) {
  UniqueFd owned;
  int fd = STDIN_FILENO;
  if (name != "-") {
    owned.reset(::open(name.c_str(), O_RDONLY | O_CLOEXEC));
    if (!owned.valid()) throw_errno("open " + name);
    fd = owned.get();
  }
  car::Reader reader(fd, name == "-" ? "stdin" : name);
  StagingArea staging(repo);
  Cid cid;
  Bytes block;
  ImportTotals here;
  while (reader.next(cid, block)) {
    staging.store().put(cid, block);
    ++here.blocks;
    here.bytes += block.size();
  }
  staging.commit();
  totals.blocks += here.blocks;
  totals.bytes += here.bytes;
  return reader.roots();
}

int dag_import(const DagFlags& f, const Globals& g) {
  auto repo = Repo::open(repo_path(g));
  // Shared for the whole run: gc may not remove committed blocks before their roots are pinned.
  RepoLock lock(*repo, RepoLock::Mode::kShared);
  std::vector<std::string> files = f.files.empty() ? std::vector<std::string>{"-"} : f.files;
  ImportTotals totals;
  std::vector<Cid> roots;
  std::string failure;
  for (const auto& file : files) {
    try {
      for (auto& r : import_one(*repo, file, totals)) roots.push_back(std::move(r));
    } catch (const Error& e) {
      // Earlier files are committed: pin their roots below, then report this one.
      failure = std::string(e.what()) + " (nothing from this file was imported)";
      break;
    }
  }
  // kubo's lines on stdout (a failed pin included), and the error, like every error, on stderr.
  std::string pin_failure;
  size_t pins_failed = 0;
  if (f.pin_roots) {
    for (const auto& root : roots) {
      std::string result = "success";
      try {
        pin_checked(*repo, root, PinType::kRecursive);
      } catch (const Error& e) {
        result = std::string("FAILED: ") + e.what();
        if (pins_failed++ == 0) pin_failure = "cannot pin root " + root.str() + ": " + e.what();
      }
      if (!f.silent) std::printf("Pinned root\t%s\t%s\n", root.str().c_str(), result.c_str());
    }
  }
  if (f.stats && !f.silent) {
    std::printf("Imported %llu blocks (%llu bytes)\n",
                static_cast<unsigned long long>(totals.blocks),
                static_cast<unsigned long long>(totals.bytes));
  }
  if (pins_failed > 1) {
    pin_failure += " (and " + std::to_string(pins_failed - 1) + " more roots not pinned)";
  }
  if (!failure.empty()) {
    throw Error(pin_failure.empty() ? failure : failure + "; also " + pin_failure);
  }
  if (!pin_failure.empty()) throw Error(pin_failure);
  return 0;
}

const Registrar reg("dag", [](Command& app, Globals& g) {
  auto f = std::make_shared<DagFlags>();
  auto cmd = app.add_subcommand("dag", "DAGs as CAR files (kubo's ipfs dag export/import)");
  cmd.require_subcommand();

  auto exp = cmd.add_subcommand("export", "Stream a DAG as a CARv1 (DFS order, no duplicates)");
  exp.add_option("root", f->root, "CID (or CID/path) of the root").required();
  exp.add_option("-o,--output", f->output, "Write to this file instead of stdout");
  exp.add_flag("-p,--progress", f->progress, "Show progress");
  exp.callback([f, &g] { g.exit_code = dag_export(*f, g); });

  auto imp = cmd.add_subcommand("import", "Import CARv1/CARv2 files; pin their roots");
  imp.add_option("files", f->files, "CAR files (stdin when none or '-')");
  imp.add_flag("--pin-roots", f->pin_roots,
               "Pin the roots (default true; --pin-roots=false to skip)");
  imp.add_flag("--stats", f->stats, "Print the number of blocks and bytes imported");
  imp.add_flag("--silent", f->silent, "Print nothing");
  imp.callback([f, &g] { g.exit_code = dag_import(*f, g); });
});

}  // namespace
}  // namespace cidrun::cli
