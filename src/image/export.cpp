#include "image/export.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "image/tar.h"
#include "store/staging.h"
#include "util/error.h"
#include "util/fd.h"
#include "util/quote.h"
#include "util/random.h"
#include "util/stream.h"

namespace cidrun::image {
namespace {

using nlohmann::json;

constexpr const char* kRefAnnotation = "org.opencontainers.image.ref.name";

std::string hex(const Sha256Digest& d) {
  return to_hex(ByteView(d.data(), d.size()));
}

TarEntry tar_entry(const std::string& path, TarEntryType type, const Attr& a) {
  TarEntry t;
  t.path = path;
  t.type = type;
  t.mode = a.mode;
  t.uid = a.uid;
  t.gid = a.gid;
  t.mtime_sec = a.mtime_sec;
  t.mtime_nsec = a.mtime_nsec;
  for (const auto& x : a.xattrs) t.xattrs[x.name] = x.value;
  return t;
}

// The image's root filesystem as one tar layer, in the canonical walk order (a hard link's
// first name always comes before it).
//
// A hard link's header carries its group's attributes, as GNU tar's, docker's and containerd's
// writers make it: containerd and podman apply a link entry's owner, xattrs, mode and mtime to
// the inode it joins (a header of zeros left containerd's copy of the group owned by root, mode
// 0, mtime 1970; a chown also clears security.capability), while umoci and our import take a
// group's attributes from its first name and ignore the link's.
void write_layer(ImageReader& r, ByteSink& out, const std::function<void(uint64_t)>& on_bytes) {
  TarWriter tw(out);
  ImageVisitor v;
  v.enter = [&](const std::string& path, const DirView& d) {
    tw.add(tar_entry(path, TarEntryType::directory, d.self));
  };
  v.entry = [&](const std::string& path, const DirEntryView& e) {
    if (!e.hardlink.empty()) {
      // The reader gives a secondary name its group's attributes.
      TarEntry t = tar_entry(path, TarEntryType::hard_link, e.attr);
      t.link_target = e.hardlink;
      tw.add(t);
      return;
    }
    switch (e.kind) {
      case Kind::kFile: {
        TarEntry t = tar_entry(path, TarEntryType::regular, e.attr);
        t.size = e.size;
        tw.add(t);
        unixfs::FileReader reader(r.dag(), e.node);
        uint64_t n = 0;
        reader.stream([&](ByteView chunk) {
          tw.write(chunk);
          n += chunk.size();
        });
        if (n != e.size) throw Error(quote(path) + ": content is not the size its node claims");
        if (on_bytes) on_bytes(n);
        break;
      }
      case Kind::kSymlink: {
        TarEntry t = tar_entry(path, TarEntryType::symlink, e.attr);
        t.link_target = e.target;
        tw.add(t);
        break;
      }
      case Kind::kCharDevice:
      case Kind::kBlockDevice: {
        TarEntry t = tar_entry(
            path,
            e.kind == Kind::kCharDevice ? TarEntryType::char_device : TarEntryType::block_device,
            e.attr);
        t.dev_major = e.major;
        t.dev_minor = e.minor;
        tw.add(t);
        break;
      }
      case Kind::kFifo:
        tw.add(tar_entry(path, TarEntryType::fifo, e.attr));
        break;
      case Kind::kDirectory:
        break;
    }
  };
  walk_image(r, v);
  tw.finish();
}

// A file written under a temporary name in dir and renamed once complete.
class TempFile {
 public:
  explicit TempFile(const std::string& dir) {
    path_ = dir + "/.cidrun-tmp-" + std::to_string(::getpid()) + "-" + std::to_string(random_u64());
    fd_.reset(::open(path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
    if (!fd_.valid()) throw_errno("create " + path_);
  }
  ~TempFile() {
    if (!path_.empty()) ::unlink(path_.c_str());
  }
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;
  int fd() const { return fd_.get(); }
  const std::string& path() const { return path_; }
  void keep_as(const std::string& final_path) {
    if (::fsync(fd_.get()) != 0) throw_errno("fsync " + path_);
    fd_.reset();
    if (::rename(path_.c_str(), final_path.c_str()) != 0) throw_errno("rename to " + final_path);
    path_.clear();
  }

 private:
  std::string path_;
  UniqueFd fd_;
};

struct Blob {
  std::string digest;  // sha256:...
  uint64_t size = 0;
};

// Writes bytes as blobs/sha256/<hex> under layout (kept as is when already there).
Blob put_json_blob(const std::string& layout, const json& j) {
  std::string text = j.dump();
  Sha256Digest d = sha256(as_bytes(text));
  Blob b{"sha256:" + hex(d), text.size()};
  std::string path = layout + "/blobs/sha256/" + hex(d);
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) write_file_atomic(path, as_bytes(text), true, 0644);
  return b;
}

json export_config(ImageReader& r, const std::string& diff_id) {
  json c = r.config();
  c["rootfs"] = {{"type", "layers"}, {"diff_ids", {diff_id}}};
  if (c.contains("history") && c["history"].is_array() && !c["history"].empty()) {
    // One layer: every step but the last made none.
    auto& h = c["history"];
    for (size_t i = 0; i + 1 < h.size(); ++i) h[i]["empty_layer"] = true;
  }
  return c;
}

std::string media_type(Compression c) {
  switch (c) {
    case Compression::gzip:
      return "application/vnd.oci.image.layer.v1.tar+gzip";
    case Compression::zstd:
      return "application/vnd.oci.image.layer.v1.tar+zstd";
    case Compression::none:
      break;
  }
  return "application/vnd.oci.image.layer.v1.tar";
}

ExportResult write_oci_layout(ImageReader& r, const std::string& layout, const std::string& ref,
                              const ExportOptions& opts) {
  make_dirs(layout + "/blobs/sha256", 0755);
  ExportResult out;
  TempFile tmp(layout + "/blobs/sha256");
  {
    FdSink file(tmp.fd(), tmp.path());
    CountingSink counted(file);
    HashingSink blob_hash(counted);
    std::unique_ptr<ByteSink> compressor;
    if (opts.compression == Compression::gzip) {
      GzipOptions g;
      if (opts.level) g.level = opts.level;
      compressor = std::make_unique<GzipSink>(blob_hash, g);
    } else if (opts.compression == Compression::zstd) {
      ZstdOptions z;
      if (opts.level) z.level = opts.level;
      compressor = std::make_unique<ZstdSink>(blob_hash, z);
    }
    ByteSink& into = compressor ? *compressor : static_cast<ByteSink&>(blob_hash);
    HashingSink diff_hash(into);
    write_layer(r, diff_hash, opts.on_bytes);
    out.diff_id = "sha256:" + hex(diff_hash.digest());
    out.layer_digest = "sha256:" + hex(blob_hash.digest());
    out.layer_bytes = counted.count();
  }
  tmp.keep_as(layout + "/blobs/sha256/" + out.layer_digest.substr(7));

  Blob config = put_json_blob(layout, export_config(r, out.diff_id));
  json manifest = {
      {"schemaVersion", 2},
      {"mediaType", "application/vnd.oci.image.manifest.v1+json"},
      {"config",
       {{"mediaType", "application/vnd.oci.image.config.v1+json"},
        {"digest", config.digest},
        {"size", config.size}}},
      {"layers",
       {{{"mediaType", media_type(opts.compression)},
         {"digest", out.layer_digest},
         {"size", out.layer_bytes}}}},
      {"annotations", {{"org.cidrun.image", r.cid().str()}}},
  };
  Blob m = put_json_blob(layout, manifest);
  out.manifest_digest = m.digest;

  // index.json: an existing layout keeps its other images; one named `ref` is replaced.
  json index = {{"schemaVersion", 2},
                {"mediaType", "application/vnd.oci.image.index.v1+json"},
                {"manifests", json::array()}};
  std::string index_path = layout + "/index.json";
  struct stat st {};
  if (::stat(index_path.c_str(), &st) == 0) {
    json old = json::parse(read_text_file(index_path), nullptr, /*allow_exceptions=*/false);
    if (!old.is_object() || !old.contains("manifests") || !old["manifests"].is_array()) {
      throw Error(quote(index_path) + " is not an OCI index; refusing to change it");
    }
    index = old;
    json kept = json::array();
    for (const auto& d : old["manifests"]) {
      bool same = d.is_object() && d.contains("annotations") && d["annotations"].is_object() &&
                  d["annotations"].value(kRefAnnotation, "") == ref;
      if (!same) kept.push_back(d);
    }
    index["manifests"] = kept;
  }
  index["manifests"].push_back({{"mediaType", "application/vnd.oci.image.manifest.v1+json"},
                                {"digest", m.digest},
                                {"size", m.size},
                                {"annotations", {{kRefAnnotation, ref}}}});
  write_file_atomic(layout + "/oci-layout", as_bytes(R"({"imageLayoutVersion":"1.0.0"})"), true,
                    0644);
  write_file_atomic(index_path, as_bytes(index.dump()), true, 0644);
  return out;
}

// An archive of files: fixed owner, mode and time, so the same content gives the same bytes.
class ArchiveWriter {
 public:
  ArchiveWriter(int fd, const std::string& what) : sink_(fd, what), tar_(sink_) {}
  void dir(const std::string& path) {
    TarEntry e;
    e.path = path;
    e.type = TarEntryType::directory;
    e.mode = 0755;
    tar_.add(e);
  }
  void bytes(const std::string& path, ByteView data) {
    TarEntry e = file_entry(path, data.size());
    tar_.add(e);
    tar_.write(data);
  }
  void file(const std::string& path, const std::string& from) {
    UniqueFd fd(::open(from.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd.valid()) throw_errno("open " + from);
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) throw_errno("stat " + from);
    tar_.add(file_entry(path, static_cast<uint64_t>(st.st_size)));
    Bytes buf(1 << 20);
    for (;;) {
      size_t n = read_full(fd.get(), buf.data(), buf.size(), from);
      if (n == 0) break;
      tar_.write(ByteView(buf.data(), n));
    }
  }
  void finish() { tar_.finish(); }

 private:
  static TarEntry file_entry(const std::string& path, uint64_t size) {
    TarEntry e;
    e.path = path;
    e.type = TarEntryType::regular;
    e.mode = 0644;
    e.size = size;
    return e;
  }
  FdSink sink_;
  TarWriter tar_;
};

std::string parent_of(const std::string& path) {
  auto slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

ExportResult write_oci_archive(ImageReader& r, const ExportDest& dest, const ExportOptions& opts) {
  std::string dir = parent_of(dest.path);
  std::string layout =
      dir + "/.cidrun-layout-" + std::to_string(::getpid()) + "-" + std::to_string(random_u64());
  ExportResult out;
  try {
    out = write_oci_layout(r, layout, dest.ref.empty() ? "latest" : dest.ref, opts);
    TempFile tmp(dir);
    ArchiveWriter a(tmp.fd(), tmp.path());
    a.bytes("oci-layout", as_bytes(read_text_file(layout + "/oci-layout")));
    a.bytes("index.json", as_bytes(read_text_file(layout + "/index.json")));
    a.dir("blobs");
    a.dir("blobs/sha256");
    UniqueFd bd(::open((layout + "/blobs/sha256").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!bd.valid()) throw_errno("open " + layout);
    auto names = dir_entries(bd.get(), layout);
    std::sort(names.begin(), names.end());
    const std::string blob_dir = layout + "/blobs/sha256/";
    for (const auto& n : names) a.file("blobs/sha256/" + n, blob_dir + n);
    a.finish();
    tmp.keep_as(dest.path);
  } catch (...) {
    remove_tree(AT_FDCWD, layout);
    throw;
  }
  remove_tree(AT_FDCWD, layout);
  return out;
}

ExportResult write_docker_archive(ImageReader& r, const ExportDest& dest,
                                  const ExportOptions& opts) {
  std::string dir = parent_of(dest.path);
  ExportResult out;
  TempFile layer(dir);
  {
    FdSink file(layer.fd(), layer.path());
    CountingSink counted(file);
    HashingSink diff_hash(counted);
    write_layer(r, diff_hash, opts.on_bytes);
    out.diff_id = "sha256:" + hex(diff_hash.digest());
    out.layer_digest = out.diff_id;
    out.layer_bytes = counted.count();
  }
  std::string config_text = export_config(r, out.diff_id).dump();
  std::string config_hex = hex(sha256(as_bytes(config_text)));
  std::string layer_dir = out.diff_id.substr(7);
  json repo_tags = json::array();
  json repositories = json::object();
  if (!dest.ref.empty()) {
    repo_tags.push_back(dest.ref);
    auto colon = dest.ref.rfind(':');
    std::string name = colon == std::string::npos ? dest.ref : dest.ref.substr(0, colon);
    std::string tag = colon == std::string::npos ? "latest" : dest.ref.substr(colon + 1);
    repositories[name] = {{tag, layer_dir}};
  }
  json manifest = json::array({{{"Config", config_hex + ".json"},
                                {"RepoTags", repo_tags},
                                {"Layers", {layer_dir + "/layer.tar"}}}});
  TempFile tmp(dir);
  ArchiveWriter a(tmp.fd(), tmp.path());
  a.bytes(config_hex + ".json", as_bytes(config_text));
  a.dir(layer_dir);
  a.bytes(layer_dir + "/VERSION", as_bytes("1.0"));
  a.file(layer_dir + "/layer.tar", layer.path());
  a.bytes("manifest.json", as_bytes(manifest.dump()));
  if (!repositories.empty()) a.bytes("repositories", as_bytes(repositories.dump()));
  a.finish();
  tmp.keep_as(dest.path);
  return out;
}

}  // namespace

ExportDest parse_export_dest(const std::string& text) {
  auto colon = text.find(':');
  if (colon == std::string::npos || colon + 1 == text.size()) {
    throw Error("export destination " + quote(text) +
                " must be oci:DIR[:REF], oci-archive:FILE[:REF] or docker-archive:FILE[:NAME:TAG]");
  }
  std::string transport = text.substr(0, colon);
  std::string rest = text.substr(colon + 1);
  ExportDest d;
  if (transport == "oci" || transport == "oci-archive") {
    d.kind = transport == "oci" ? ExportDest::Kind::kOciLayout : ExportDest::Kind::kOciArchive;
    auto c = rest.find(':');
    d.path = rest.substr(0, c);
    if (c != std::string::npos) d.ref = rest.substr(c + 1);
  } else if (transport == "docker-archive") {
    d.kind = ExportDest::Kind::kDockerArchive;
    auto c = rest.find(':');
    d.path = rest.substr(0, c);
    if (c != std::string::npos) d.ref = rest.substr(c + 1);
  } else {
    throw Error("unknown export transport " + quote(transport) +
                " (oci:, oci-archive: or docker-archive:)");
  }
  if (d.path.empty()) throw Error("export destination " + quote(text) + " names no path");
  return d;
}

ExportResult export_image(ImageReader& reader, const ExportDest& dest, const ExportOptions& opts) {
  switch (dest.kind) {
    case ExportDest::Kind::kOciLayout:
      return write_oci_layout(reader, dest.path, dest.ref.empty() ? "latest" : dest.ref, opts);
    case ExportDest::Kind::kOciArchive:
      return write_oci_archive(reader, dest, opts);
    case ExportDest::Kind::kDockerArchive:
      return write_docker_archive(reader, dest, opts);
  }
  throw Error("unknown export destination");
}

}  // namespace cidrun::image
