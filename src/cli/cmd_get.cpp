// cidrun get CID[/path] [-o PATH]: writes a UnixFS tree to disk with its modes, mtimes and
// symlinks (kubo's `ipfs get`, target semantics in unixfs/exporter.h), safe against hostile DAGs.
#include <cstdio>
#include <memory>

#include "cli/command.h"
#include "cli/content_store.h"
#include "store/lease.h"
#include "store/repo.h"
#include "unixfs/exporter.h"
#include "unixfs/reader.h"
#include "util/error.h"
#include "util/progress.h"

namespace cidrun::cli {
namespace {

struct GetFlags {
  std::string path;
  std::string output;
  bool progress = false;
};

int run_get(const GetFlags& f, const Globals& g) {
  auto repo = Repo::open(repo_path(g));
  std::unique_ptr<exchange::FetchingStore> fetching;
  unixfs::Dag dag(content_store(*repo, fetching));
  auto [root, path] = unixfs::Dag::split_path(f.path);
  Cid cid = path.empty() ? root : dag.resolve(root, path);
  // kubo names the output after the last path component, else the CID as given.
  std::string name = root.str();
  if (!path.empty()) {
    std::string p = path;
    while (!p.empty() && p.back() == '/') p.pop_back();
    name = p.substr(p.rfind('/') + 1);
  }
  std::string out = f.output.empty() ? name : f.output;
  // The lease keeps `repo gc` from removing unpinned blocks we are still reading.
  Lease lease(*repo, cid);
  Progress progress("getting", dag.stat(cid).size, f.progress || Progress::stderr_is_tty());
  unixfs::ExportOptions opts;
  opts.on_bytes = [&](uint64_t n) { progress.add(n); };
  std::fprintf(stderr, "Saving file(s) to %s\n", out.c_str());
  auto stats = unixfs::export_tree(dag, cid, out, name, opts);
  progress.finish();
  return stats.written_path.empty() ? 1 : 0;
}

const Registrar reg("get", [](Command& app, Globals& g) {
  auto f = std::make_shared<GetFlags>();
  auto cmd = app.add_subcommand("get", "Write a file or directory tree to disk (kubo's ipfs get)");
  cmd.add_option("path", f->path, "CID or CID/path").required();
  cmd.add_option("-o,--output", f->output,
                 "Where to write (default: the name); a directory root becomes this directory, "
                 "which must not exist or be empty");
  cmd.add_flag("-p,--progress", f->progress, "Show a progress bar");
  cmd.callback([f, &g] { g.exit_code = run_get(*f, g); });
});

}  // namespace
}  // namespace cidrun::cli
