// cidrun cat CID[/path]: a file's bytes to stdout, streamed leaf by leaf (kubo's `ipfs cat`).
#include <unistd.h>

#include <cstdio>
#include <memory>

#include "cli/command.h"
#include "cli/content_store.h"
#include "store/repo.h"
#include "unixfs/reader.h"
#include "util/error.h"
#include "util/fd.h"

namespace cidrun::cli {
namespace {

struct CatFlags {
  std::vector<std::string> paths;
  int64_t offset = 0;
  int64_t length = -1;
};

int run_cat(const CatFlags& f, const Globals& g) {
  if (f.offset < 0) throw Error("--offset must not be negative");
  if (f.length < -1) throw Error("--length must not be negative");
  auto repo = Repo::open(repo_path(g));
  std::unique_ptr<exchange::FetchingStore> fetching;
  unixfs::Dag dag(content_store(*repo, fetching));
  // kubo applies --offset/--length across the concatenation of all arguments.
  auto skip = static_cast<uint64_t>(f.offset);
  uint64_t left = f.length < 0 ? UINT64_MAX : static_cast<uint64_t>(f.length);
  for (const auto& p : f.paths) {
    if (left == 0) break;
    auto [root, path] = unixfs::Dag::split_path(p);
    Cid cid = path.empty() ? root : dag.resolve(root, path);
    if (dag.stat(cid).kind == unixfs::NodeKind::kDirectory)
      throw Error(p + " is a directory, not a file");
    unixfs::FileReader reader(dag, cid);
    uint64_t size = reader.size();
    if (skip >= size) {
      skip -= size;
      continue;
    }
    uint64_t n = std::min(left, size - skip);
    reader.stream_range(skip, n, [](ByteView chunk) {
      write_full(STDOUT_FILENO, chunk.data(), chunk.size(), "stdout");
    });
    skip = 0;
    left -= n;
  }
  return 0;
}

const Registrar reg("cat", [](Command& app, Globals& g) {
  auto f = std::make_shared<CatFlags>();
  auto cmd = app.add_subcommand("cat", "Write the contents of files to stdout (kubo's ipfs cat)");
  cmd.add_option("paths", f->paths, "CID or CID/path of files").required();
  cmd.add_option("-o,--offset", f->offset, "Byte offset to begin reading from");
  cmd.add_option("-l,--length", f->length, "Maximum number of bytes to read");
  cmd.callback([f, &g] { g.exit_code = run_cat(*f, g); });
});

}  // namespace
}  // namespace cidrun::cli
