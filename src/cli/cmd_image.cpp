// cidrun image import|unpack|export|inspect|ls|rm: images (docs/IMAGE-FORMAT.md) in and out of
// the container world's formats, and their local names.
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>

#include "cli/command.h"
#include "cli/content_store.h"
#include "cli/roots.h"
#include "image/export.h"
#include "image/import.h"
#include "image/meta_pack.h"
#include "image/reader.h"
#include "image/unpack.h"
#include "store/lease.h"
#include "store/pins.h"
#include "store/repo.h"
#include "store/repo_lock.h"
#include "store/staging.h"
#include "util/error.h"
#include "util/progress.h"
#include "util/quote.h"

namespace cidrun::cli {
namespace {

struct ImageFlags {
  std::string source;
  std::vector<std::string> tags;
  bool quiet = false;
  bool progress = false;
  std::string config_file;
  std::string image;
  std::string dest;
  bool rootless = false;
  bool json = false;
  std::vector<std::string> names;
  std::string compression = "gzip";
  int level = 0;
};

int image_import(const ImageFlags& f, const Globals& g) {
  for (const auto& t : f.tags) Repo::check_name(t);
  image::ImportSource source = image::parse_import_source(f.source);
  image::ImportOptions opts;
  if (!f.config_file.empty()) {
    if (source.kind != image::ImportSource::Kind::kRootfs) {
      throw Error("--config applies to rootfs: sources only (the others carry their own)");
    }
    std::string text = read_text_file(f.config_file);
    opts.config = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (!opts.config.is_object()) throw Error(quote(f.config_file) + " is not a JSON object");
  }
  auto repo = Repo::open(repo_path(g));
  // Shared for the whole run: gc must not run between the commit and the pin or name.
  RepoLock lock(*repo, RepoLock::Mode::kShared);
  StagingArea staging(*repo);
  Progress progress("importing", 0, !f.quiet && (f.progress || Progress::stderr_is_tty()));
  opts.on_bytes = [&](uint64_t n) { progress.add(n); };
  opts.on_total = [&](uint64_t n) { progress.set_total(n); };
  image::ImportResult r = image::import_image(staging.store(), source, opts);
  staging.commit_reachable(r.image.root.cid);
  progress.finish();
  const Cid& cid = r.image.root.cid;
  image::write_image_pack(*repo, repo->blocks(), cid);
  if (f.tags.empty()) {
    pin_checked(*repo, cid, PinType::kRecursive);
  } else {
    for (const auto& t : f.tags) repo->set_name(t, cid);
  }
  if (!f.quiet) {
    const auto& h = r.image.header;
    std::fprintf(
        stderr, "imported %llu files, %llu directories, %llu symlinks, %llu special files",
        static_cast<unsigned long long>(h.files), static_cast<unsigned long long>(h.directories),
        static_cast<unsigned long long>(h.symlinks), static_cast<unsigned long long>(h.specials));
    if (r.layers)
      std::fprintf(stderr, " from %llu layers", static_cast<unsigned long long>(r.layers));
    std::fprintf(stderr, "\n");
    for (const auto& t : f.tags) std::fprintf(stderr, "named %s\n", t.c_str());
  }
  std::printf("%s\n", cid.str().c_str());
  return 0;
}

int image_unpack(const ImageFlags& f, const Globals& g) {
  auto repo = Repo::open(repo_path(g));
  std::unique_ptr<exchange::FetchingStore> fetching;
  unixfs::Dag dag(content_store(*repo, fetching));
  Cid cid = resolve_root(*repo, f.image);
  Lease lease(*repo, cid);
  image::ImageReader reader(dag, cid);
  image::UnpackOptions opts;
  opts.ownership =
      (f.rootless || ::geteuid() != 0) ? image::Ownership::kAsCaller : image::Ownership::kKeep;
  Progress progress("unpacking", reader.root().header.content_bytes,
                    f.progress || Progress::stderr_is_tty());
  opts.on_bytes = [&](uint64_t n) { progress.add(n); };
  image::UnpackStats s = image::unpack_image(reader, f.dest, opts);
  progress.finish();
  if (s.skipped > 0) {
    std::fprintf(stderr, "skipped %llu device nodes or xattrs that need root\n",
                 static_cast<unsigned long long>(s.skipped));
  }
  return 0;
}

int image_export(const ImageFlags& f, const Globals& g) {
  image::ExportDest dest = image::parse_export_dest(f.dest);
  image::ExportOptions opts;
  if (f.compression == "gzip") {
    opts.compression = Compression::gzip;
  } else if (f.compression == "zstd") {
    opts.compression = Compression::zstd;
  } else if (f.compression == "none") {
    opts.compression = Compression::none;
  } else {
    throw Error("--compression must be gzip, zstd or none");
  }
  opts.level = f.level;
  auto repo = Repo::open(repo_path(g));
  std::unique_ptr<exchange::FetchingStore> fetching;
  unixfs::Dag dag(content_store(*repo, fetching));
  Cid cid = resolve_root(*repo, f.image);
  Lease lease(*repo, cid);
  image::ImageReader reader(dag, cid);
  Progress progress("exporting", reader.root().header.content_bytes,
                    f.progress || Progress::stderr_is_tty());
  opts.on_bytes = [&](uint64_t n) { progress.add(n); };
  image::ExportResult r = image::export_image(reader, dest, opts);
  progress.finish();
  if (!r.manifest_digest.empty()) std::printf("%s\n", r.manifest_digest.c_str());
  return 0;
}

nlohmann::json describe(image::ImageReader& r, const Repo& repo) {
  const auto& h = r.root().header;
  nlohmann::json names = nlohmann::json::array();
  for (const auto& [name, cid] : repo.names()) {
    if (cid == r.cid()) names.push_back(name);
  }
  nlohmann::json j = {
      {"Cid", r.cid().str()},
      {"Names", names},
      {"Rootfs", r.root().rootfs.str()},
      {"Meta", r.root().meta.str()},
      {"ConfigCid", r.root().config.str()},
      {"Config", r.config()},
      {"Files", h.files},
      {"Directories", h.directories},
      {"Symlinks", h.symlinks},
      {"Specials", h.specials},
      {"ContentBytes", h.content_bytes},
  };
  if (r.root().startset) j["StartSet"] = r.root().startset->str();
  return j;
}

int image_inspect(const ImageFlags& f, const Globals& g) {
  auto repo = Repo::open(repo_path(g));
  std::unique_ptr<exchange::FetchingStore> fetching;
  unixfs::Dag dag(content_store(*repo, fetching));
  image::ImageReader reader(dag, resolve_root(*repo, f.image));
  std::printf("%s\n", describe(reader, *repo).dump(2).c_str());
  return 0;
}

int image_ls(const ImageFlags& f, const Globals& g) {
  auto repo = Repo::open(repo_path(g));
  unixfs::Dag dag(repo->blocks());
  nlohmann::json all = nlohmann::json::array();
  if (!f.json && !f.quiet) std::printf("%-40s %-60s %12s  %s\n", "NAME", "CID", "SIZE", "CREATED");
  for (const auto& [name, cid] : repo->names()) {
    if (f.quiet) {
      std::printf("%s\n", name.c_str());
      continue;
    }
    uint64_t size = 0;
    std::string created;
    try {
      image::ImageReader r(dag, cid);
      size = r.root().header.content_bytes;
      auto c = r.config();
      if (c.contains("created") && c["created"].is_string()) created = c["created"];
    } catch (const Error&) {
      created = "(not here)";
    }
    if (f.json) {
      all.push_back(
          {{"Name", name}, {"Cid", cid.str()}, {"ContentBytes", size}, {"Created", created}});
    } else {
      std::printf("%-40s %-60s %12llu  %s\n", name.c_str(), cid.str().c_str(),
                  static_cast<unsigned long long>(size), created.c_str());
    }
  }
  if (f.json) std::printf("%s\n", all.dump(2).c_str());
  return 0;
}

int image_rm(const ImageFlags& f, const Globals& g) {
  auto repo = Repo::open(repo_path(g), Repo::OpenMode::kMustExist);
  int status = 0;
  for (const auto& n : f.names) {
    bool removed = false;
    try {
      removed = repo->remove_name(n);
    } catch (const Error&) {
    }
    if (!removed && n.find(':') == std::string::npos) {
      try {
        removed = repo->remove_name(n + ":latest");
      } catch (const Error&) {
      }
    }
    if (!removed) {
      // A CID: the pin an untagged import made.
      try {
        Cid c = Cid::parse(n);
        removed = repo->unpin(c, PinType::kRecursive);
      } catch (const Error&) {
      }
    }
    if (removed) {
      std::printf("removed %s\n", n.c_str());
    } else {
      std::fprintf(stderr, "cidrun: error: no image named %s\n", quote(n).c_str());
      status = 1;
    }
  }
  return status;
}

const Registrar reg("image", [](Command& app, Globals& g) {
  auto f = std::make_shared<ImageFlags>();
  auto cmd = app.add_subcommand("image", "Images: import, unpack, export, inspect, names");
  cmd.require_subcommand();

  auto imp = cmd.add_subcommand(
      "import", "Import rootfs:DIR, oci:DIR[:REF], oci-archive:FILE[:REF] or docker-archive:FILE");
  imp.add_option("source", f->source, "The image to import").required();
  imp.add_option("-t,--tag", f->tags, "Name the image (repeatable); default: pin it")
      .one_value_each();
  imp.add_flag("-q,--quiet", f->quiet, "Print only the image CID");
  imp.add_flag("-p,--progress", f->progress, "Show a progress bar");
  imp.add_option("--config", f->config_file, "rootfs: only: an OCI image config JSON file");
  imp.callback([f, &g] { g.exit_code = image_import(*f, g); });

  auto unp = cmd.add_subcommand("unpack", "Write an image's root filesystem with full fidelity");
  unp.add_option("image", f->image, "Image name or CID").required();
  unp.add_option("dir", f->dest, "Directory to create (or an empty one)").required();
  unp.add_flag("--rootless", f->rootless,
               "Keep the caller's ownership; skip device nodes (the default when not root)");
  unp.add_flag("-p,--progress", f->progress, "Show a progress bar");
  unp.callback([f, &g] { g.exit_code = image_unpack(*f, g); });

  auto exp = cmd.add_subcommand(
      "export",
      "Export as oci:DIR[:REF], oci-archive:FILE[:REF] or docker-archive:FILE[:NAME:TAG]");
  exp.add_option("image", f->image, "Image name or CID").required();
  exp.add_option("dest", f->dest, "Where to write").required();
  exp.add_option("--compression", f->compression,
                 "OCI layer compression: gzip (default), zstd, none");
  exp.add_option("--level", f->level, "Compression level (0: the default)");
  exp.add_flag("-p,--progress", f->progress, "Show a progress bar");
  exp.callback([f, &g] { g.exit_code = image_export(*f, g); });

  auto ins = cmd.add_subcommand("inspect", "Describe an image as JSON");
  ins.add_option("image", f->image, "Image name or CID").required();
  ins.callback([f, &g] { g.exit_code = image_inspect(*f, g); });

  auto ls = cmd.add_subcommand("ls", "List image names");
  ls.add_flag("--json", f->json, "Print JSON");
  ls.add_flag("-q,--quiet", f->quiet, "Print only the names");
  ls.callback([f, &g] { g.exit_code = image_ls(*f, g); });

  auto rm = cmd.add_subcommand("rm", "Remove image names (or an untagged image's pin)");
  rm.add_option("names", f->names, "Names or CIDs").required();
  rm.callback([f, &g] { g.exit_code = image_rm(*f, g); });
});

}  // namespace
}  // namespace cidrun::cli
