// cidrun ls [-l] CID[/path]: directory entries with CIDs, sizes and types (kubo's `ipfs ls`),
// plus UnixFS 1.5 modes and mtimes with -l. Basic and HAMT-sharded directories alike.
#include <cstdio>
#include <ctime>
#include <memory>
#include <nlohmann/json.hpp>

#include "cli/command.h"
#include "cli/content_store.h"
#include "store/repo.h"
#include "unixfs/reader.h"
#include "util/error.h"

namespace cidrun::cli {
namespace {

struct LsFlags {
  std::vector<std::string> paths;
  bool long_format = false;
  bool json = false;
  bool headers = false;
};

struct Row {
  std::string name;
  Cid cid;
  unixfs::NodeStat stat;
};

// kubo's JSON type numbers are UnixFS Data types: 1 directory, 2 file, 4 symlink.
int type_number(unixfs::NodeKind k) {
  switch (k) {
    case unixfs::NodeKind::kDirectory:
      return 1;
    case unixfs::NodeKind::kSymlink:
      return 4;
    case unixfs::NodeKind::kFile:
      break;
  }
  return 2;
}

// ls -l style: type letter then rwx triplets with s/S, t/T for setuid, setgid, sticky.
std::string mode_string(unixfs::NodeKind kind, std::optional<uint32_t> mode) {
  std::string s(1, kind == unixfs::NodeKind::kDirectory ? 'd'
                   : kind == unixfs::NodeKind::kSymlink ? 'l'
                                                        : '-');
  if (!mode) return s + "---------";
  uint32_t m = *mode;
  const char* rwx = "rwxrwxrwx";
  for (int i = 0; i < 9; ++i) s += (m & (0400u >> i)) ? rwx[i] : '-';
  auto special = [&](int pos, uint32_t bit, char set, char unset_x) {
    if (m & bit) s[static_cast<size_t>(pos)] = s[static_cast<size_t>(pos)] == 'x' ? set : unset_x;
  };
  special(3, 04000, 's', 'S');
  special(6, 02000, 's', 'S');
  special(9, 01000, 't', 'T');
  return s;
}

std::string mtime_string(const std::optional<unixfs_pb::UnixTime>& t) {
  if (!t) return "-";
  time_t secs = static_cast<time_t>(t->seconds);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  std::string s = buf;
  if (t->nanos) {
    char ns[16];
    std::snprintf(ns, sizeof ns, ".%09u", t->nanos);
    s += ns;
  }
  return s + "Z";
}

uint64_t display_size(const unixfs::NodeStat& st) {
  return st.kind == unixfs::NodeKind::kDirectory ? 0 : st.size;
}

int run_ls(const LsFlags& f, const Globals& g) {
  auto repo = Repo::open(repo_path(g));
  std::unique_ptr<exchange::FetchingStore> fetching;
  unixfs::Dag dag(content_store(*repo, fetching));
  nlohmann::json objects = nlohmann::json::array();
  for (const auto& p : f.paths) {
    auto [root, path] = unixfs::Dag::split_path(p);
    Cid cid = path.empty() ? root : dag.resolve(root, path);
    unixfs::NodeStat top = dag.stat(cid);
    std::vector<Row> rows;
    if (top.kind == unixfs::NodeKind::kDirectory) {
      dag.list(cid, [&](const unixfs::DirEntryRef& e) {
        rows.push_back({e.name, e.cid, dag.stat(e.cid)});
      });
    } else {
      rows.push_back({"", cid, top});  // kubo lists a file as itself, without a name
    }
    if (f.json) {
      nlohmann::json links = nlohmann::json::array();
      for (const auto& r : rows) {
        nlohmann::json l = {{"Name", r.name},
                            {"Hash", r.cid.str()},
                            {"Size", display_size(r.stat)},
                            {"Type", type_number(r.stat.kind)},
                            {"Target", r.stat.symlink_target}};
        if (r.stat.mode) {
          char m[8];
          std::snprintf(m, sizeof m, "%04o", *r.stat.mode & 07777);
          l["Mode"] = m;
        }
        if (r.stat.mtime) {
          l["Mtime"] = r.stat.mtime->seconds;
          if (r.stat.mtime->nanos) l["MtimeNsecs"] = r.stat.mtime->nanos;
        }
        links.push_back(std::move(l));
      }
      objects.push_back({{"Hash", p}, {"Links", std::move(links)}});
      continue;
    }
    if (f.paths.size() > 1) std::printf("%s:\n", p.c_str());
    if (f.headers)
      std::printf(f.long_format ? "Mode\tHash\tSize\tModTime\tName\n" : "Hash\tSize\tName\n");
    for (const auto& r : rows) {
      bool dir = r.stat.kind == unixfs::NodeKind::kDirectory;
      std::string size = dir ? "-" : std::to_string(r.stat.size);
      std::string name = r.name + (dir ? "/" : "");
      if (r.stat.kind == unixfs::NodeKind::kSymlink) name += " -> " + r.stat.symlink_target;
      if (f.long_format) {
        std::printf("%s %s %s %s %s\n", mode_string(r.stat.kind, r.stat.mode).c_str(),
                    r.cid.str().c_str(), size.c_str(), mtime_string(r.stat.mtime).c_str(),
                    name.c_str());
      } else {
        std::printf("%s %s %s\n", r.cid.str().c_str(), size.c_str(), name.c_str());
      }
    }
    if (f.paths.size() > 1) std::printf("\n");
  }
  if (f.json) std::printf("%s\n", nlohmann::json({{"Objects", objects}}).dump().c_str());
  return 0;
}

const Registrar reg("ls", [](Command& app, Globals& g) {
  auto f = std::make_shared<LsFlags>();
  auto cmd = app.add_subcommand("ls", "List directory entries (kubo's ipfs ls)");
  cmd.add_option("paths", f->paths, "CID or CID/path of directories").required();
  cmd.add_flag("-l,--long", f->long_format, "Also show mode and modification time");
  cmd.add_flag("-v,--headers", f->headers, "Print a header line");
  cmd.add_flag("--json", f->json, "Print JSON (kubo's Objects/Links shape, plus Mode/Mtime)");
  cmd.callback([f, &g] { g.exit_code = run_ls(*f, g); });
});

}  // namespace
}  // namespace cidrun::cli
