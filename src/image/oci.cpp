#include "image/oci.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <map>
#include <memory>

#include "image/layer.h"
#include "image/tar.h"
#include "util/error.h"
#include "util/fd.h"
#include "util/log.h"
#include "util/quote.h"
#include "util/stream.h"
#include "util/stream_compression.h"
#include "util/stream_read_ahead.h"

namespace cidrun::image {
namespace {

using nlohmann::json;

constexpr uint64_t kMaxJsonBlob = 4u << 20;  // manifests, indexes, configs
constexpr int kMaxIndexDepth = 4;

// "sha256:<64 lowercase hex>" -> the digest; anything else is refused (sha512 too: no image
// tool here writes it, and we could not verify it).
Sha256Digest parse_digest(const std::string& d, const std::string& what) {
  constexpr std::string_view kAlg = "sha256:";
  if (d.size() != kAlg.size() + 64 || d.compare(0, kAlg.size(), kAlg) != 0) {
    throw Error(what + ": digest " + quote(d) + " is not sha256:<64 hex digits>");
  }
  Sha256Digest out{};
  for (size_t i = 0; i < 32; ++i) {
    auto nib = [&](char c) -> int {
      if (c >= '0' && c <= '9') return c - '0';
      if (c >= 'a' && c <= 'f') return c - 'a' + 10;
      throw Error(what + ": digest " + quote(d) + " is not lowercase hex");
    };
    out[i] =
        static_cast<uint8_t>(nib(d[kAlg.size() + 2 * i]) << 4 | nib(d[kAlg.size() + 2 * i + 1]));
  }
  return out;
}

std::string digest_hex(const std::string& d) {
  return d.substr(7);
}

struct Descriptor {
  std::string media_type;
  std::string digest;
  Sha256Digest sha{};
  uint64_t size = 0;
  json annotations;
  json platform;
};

Descriptor descriptor(const json& j, const std::string& what) {
  if (!j.is_object()) throw Error(what + " is not a JSON object");
  Descriptor d;
  if (j.contains("mediaType")) {
    if (!j["mediaType"].is_string()) throw Error(what + ": mediaType is not a string");
    d.media_type = j["mediaType"];
  }
  if (!j.contains("digest") || !j["digest"].is_string()) throw Error(what + " has no digest");
  d.digest = j["digest"];
  d.sha = parse_digest(d.digest, what);
  if (!j.contains("size") || !j["size"].is_number_unsigned()) {
    throw Error(what + " has no size (or a negative one)");
  }
  d.size = j["size"];
  if (j.contains("annotations")) d.annotations = j["annotations"];
  if (j.contains("platform")) d.platform = j["platform"];
  return d;
}

// Where the blobs of one image are: a layout directory, or files inside a tar archive.
class Blobs {
 public:
  virtual ~Blobs() = default;
  // The bytes at path (relative, as the format names it); nullptr when there is none.
  virtual std::unique_ptr<ByteSource> open(const std::string& path, uint64_t& size) = 0;
  virtual const std::string& name() const = 0;

  std::unique_ptr<ByteSource> open_required(const std::string& path, uint64_t& size) {
    auto s = open(path, size);
    if (!s) throw Error(name() + " has no " + quote(path));
    return s;
  }

  // A small JSON file, read whole.
  json read_json(const std::string& path) {
    uint64_t size = 0;
    auto s = open_required(path, size);
    if (size > kMaxJsonBlob) throw Error(name() + ": " + quote(path) + " is too big for JSON");
    return parse(*s, size, path);
  }

  // A JSON blob named by its descriptor: size and digest verified.
  json read_json_blob(const Descriptor& d, const std::string& path, const std::string& what) {
    if (d.size > kMaxJsonBlob) throw Error(what + " claims " + std::to_string(d.size) + " bytes");
    uint64_t size = 0;
    auto s = open_required(path, size);
    VerifyingSource v(*s, ExpectedBlob{d.size, d.sha, what + " " + d.digest});
    return parse(v, d.size, what);
  }

 private:
  json parse(ByteSource& s, uint64_t size, const std::string& what) {
    Bytes data(static_cast<size_t>(size));
    size_t got = read_fill(s, data.data(), data.size());
    data.resize(got);
    drain(s);
    json j = json::parse(data.begin(), data.end(), nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) throw Error(name() + ": " + quote(what) + " is not valid JSON");
    return j;
  }
};

// A byte range of a file the caller keeps open: one member of a tar archive.
class RangeSource : public ByteSource {
 public:
  RangeSource(int fd, uint64_t offset, uint64_t size, std::string what)
      : fd_(fd), pos_(offset), left_(size), what_(std::move(what)) {}
  size_t read(uint8_t* buf, size_t n) override {
    if (left_ == 0) return 0;
    size_t want = static_cast<size_t>(std::min<uint64_t>(n, left_));
    for (;;) {
      ssize_t r = ::pread(fd_, buf, want, static_cast<off_t>(pos_));
      if (r < 0 && errno == EINTR) continue;
      if (r < 0) throw_errno("read " + what_);
      if (r == 0) throw Error(what_ + " ends early");
      pos_ += static_cast<uint64_t>(r);
      left_ -= static_cast<uint64_t>(r);
      return static_cast<size_t>(r);
    }
  }

 private:
  int fd_;
  uint64_t pos_;
  uint64_t left_;
  std::string what_;
};

class OwnedFdSource : public ByteSource {
 public:
  OwnedFdSource(UniqueFd fd, std::string what)
      : fd_(std::move(fd)), src_(fd_.get(), std::move(what)) {}
  size_t read(uint8_t* buf, size_t n) override { return src_.read(buf, n); }

 private:
  UniqueFd fd_;
  FdSource src_;
};

class DirBlobs : public Blobs {
 public:
  explicit DirBlobs(const std::string& dir) : name_(dir) {
    dir_.reset(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!dir_.valid()) throw_errno("open OCI layout " + quote(dir));
  }
  std::unique_ptr<ByteSource> open(const std::string& path, uint64_t& size) override {
    // Confined to the layout: a blob that is a symlink may point inside it, never out.
    open_how how{};
    how.flags = O_RDONLY | O_CLOEXEC;
    how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
    UniqueFd fd(
        static_cast<int>(::syscall(SYS_openat2, dir_.get(), path.c_str(), &how, sizeof how)));
    if (!fd.valid()) {
      if (errno == ENOENT) return nullptr;
      throw_errno("open " + quote(name_ + "/" + path));
    }
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) throw_errno("stat " + quote(path));
    if (!S_ISREG(st.st_mode)) throw Error(quote(name_ + "/" + path) + " is not a file");
    size = static_cast<uint64_t>(st.st_size);
    return std::make_unique<OwnedFdSource>(std::move(fd), name_ + "/" + path);
  }
  const std::string& name() const override { return name_; }

 private:
  std::string name_;
  UniqueFd dir_;
};

class TarBlobs : public Blobs {
 public:
  explicit TarBlobs(const std::string& file) : name_(file) {
    fd_.reset(::open(file.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd_.valid()) throw_errno("open " + quote(file));
    struct stat st {};
    if (::fstat(fd_.get(), &st) != 0) throw_errno("stat " + quote(file));
    if (!S_ISREG(st.st_mode)) throw Error(quote(file) + " is not a file");
    uint8_t magic[4] = {};
    if (::pread(fd_.get(), magic, sizeof magic, 0) == 4 &&
        ((magic[0] == 0x1f && magic[1] == 0x8b) ||
         (magic[0] == 0x28 && magic[1] == 0xb5 && magic[2] == 0x2f && magic[3] == 0xfd))) {
      throw Error(quote(file) +
                  " is compressed: an image archive is a plain tar (decompress it first)");
    }
    // One pass over the archive records where each member's bytes are; blobs are then read
    // in place, in any order, with no copy.
    FdSource src(fd_.get(), file);
    TarReader tar(src);
    TarEntry e;
    while (tar.next(e)) {
      if (e.type == TarEntryType::regular) {
        members_[e.path] = {tar.offset(), e.size};
      } else if (e.type == TarEntryType::hard_link) {
        auto it = members_.find(e.link_target);
        if (it != members_.end()) members_[e.path] = it->second;
      }
    }
  }
  std::unique_ptr<ByteSource> open(const std::string& path, uint64_t& size) override {
    auto it = members_.find(path);
    if (it == members_.end()) return nullptr;
    size = it->second.second;
    return std::make_unique<RangeSource>(fd_.get(), it->second.first, size, name_ + ":" + path);
  }
  const std::string& name() const override { return name_; }

 private:
  std::string name_;
  UniqueFd fd_;
  std::map<std::string, std::pair<uint64_t, uint64_t>> members_;
};

std::string blob_path(const Descriptor& d) {
  return "blobs/sha256/" + digest_hex(d.digest);
}

bool is_index(const std::string& media_type) {
  return media_type == "application/vnd.oci.image.index.v1+json" ||
         media_type == "application/vnd.docker.distribution.manifest.list.v2+json";
}

bool is_layer(const std::string& media_type) {
  static const char* kTypes[] = {
      "application/vnd.oci.image.layer.v1.tar",
      "application/vnd.oci.image.layer.v1.tar+gzip",
      "application/vnd.oci.image.layer.v1.tar+zstd",
      "application/vnd.oci.image.layer.nondistributable.v1.tar",
      "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
      "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
      "application/vnd.docker.image.rootfs.diff.tar",
      "application/vnd.docker.image.rootfs.diff.tar.gzip",
      "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
  };
  for (const char* t : kTypes) {
    if (media_type == t) return true;
  }
  return false;
}

// The manifest that `ref` names in an index (an OCI layout's index.json, or a nested image
// index chosen by platform).
Descriptor pick_manifest(Blobs& blobs, const json& index, const std::string& ref,
                         const std::string& what, int depth) {
  if (depth > kMaxIndexDepth) throw Error(what + ": image indexes nested too deeply");
  if (!index.is_object() || !index.contains("manifests") || !index["manifests"].is_array()) {
    throw Error(what + " has no manifests list");
  }
  std::vector<Descriptor> all;
  for (const auto& m : index["manifests"]) all.push_back(descriptor(m, what + " manifest"));
  std::vector<Descriptor> chosen;
  if (!ref.empty() && depth == 0) {
    for (auto& d : all) {
      if (d.annotations.is_object() &&
          d.annotations.contains("org.opencontainers.image.ref.name") &&
          d.annotations["org.opencontainers.image.ref.name"] == ref) {
        chosen.push_back(d);
      }
    }
    if (chosen.empty()) throw Error(what + " has no image named " + quote(ref));
  } else if (depth == 0) {
    chosen = all;
  } else {
    // A nested index: the manifest for this host's platform.
    std::string arch = host_architecture();
    for (auto& d : all) {
      if (d.platform.is_object() && d.platform.value("os", "") == "linux" &&
          d.platform.value("architecture", "") == arch) {
        chosen.push_back(d);
      }
    }
    if (chosen.empty()) throw Error(what + " has no image for linux/" + arch);
    chosen.resize(1);
  }
  if (chosen.size() != 1) {
    std::string refs;
    for (auto& d : all) {
      if (d.annotations.is_object() &&
          d.annotations.contains("org.opencontainers.image.ref.name")) {
        refs += " " + d.annotations["org.opencontainers.image.ref.name"].get<std::string>();
      }
    }
    throw Error(what + " holds " + std::to_string(all.size()) + " images: name one with :REF (" +
                (refs.empty() ? " unnamed" : refs) + " )");
  }
  Descriptor d = chosen[0];
  if (is_index(d.media_type)) {
    json nested = blobs.read_json_blob(d, blob_path(d), "image index");
    return pick_manifest(blobs, nested, ref, "image index " + d.digest, depth + 1);
  }
  return d;
}

// A layer's bytes as they arrive: the compressed blob checked against its descriptor, the
// tar stream under it hashed for the diff ID. Run whole on the read-ahead thread, so inflating
// and both hashes use one core while the tar is parsed and chunked on the other.
class LayerDecoder : public ByteSource {
 public:
  LayerDecoder(std::unique_ptr<ByteSource> raw, std::optional<ExpectedBlob> blob,
               const std::function<void(uint64_t)>& on_bytes)
      : raw_(std::move(raw)), counted_(*raw_), on_bytes_(on_bytes) {
    ByteSource* top = &counted_;
    if (blob) {
      verify_ = std::make_unique<VerifyingSource>(*top, std::move(*blob));
      top = verify_.get();
    }
    decompressed_ = open_decompressed(*top);
    diff_ = std::make_unique<HashingSource>(*decompressed_.source);
  }
  size_t read(uint8_t* buf, size_t n) override {
    uint64_t before = counted_.count();
    size_t got = diff_->read(buf, n);
    if (on_bytes_ && counted_.count() > before) on_bytes_(counted_.count() - before);
    return got;
  }
  Sha256Digest diff_id() { return diff_->digest(); }

 private:
  std::unique_ptr<ByteSource> raw_;
  CountingSource counted_;
  std::unique_ptr<VerifyingSource> verify_;
  Decompressed decompressed_;
  std::unique_ptr<HashingSource> diff_;
  const std::function<void(uint64_t)>& on_bytes_;
};

struct LayerRef {
  std::string path;
  std::optional<Descriptor> blob;  // OCI: the descriptor to check; docker-archive: none
  std::string what;
};

struct Loaded {
  json config;
  std::vector<LayerRef> layers;
};

std::vector<Sha256Digest> diff_ids(const json& config, const std::string& what) {
  if (!config.is_object() || !config.contains("rootfs") || !config["rootfs"].is_object() ||
      !config["rootfs"].contains("diff_ids") || !config["rootfs"]["diff_ids"].is_array()) {
    throw Error(what + " has no rootfs.diff_ids");
  }
  std::vector<Sha256Digest> out;
  for (const auto& d : config["rootfs"]["diff_ids"]) {
    if (!d.is_string()) throw Error(what + ": a diff ID is not a string");
    out.push_back(parse_digest(d, what + " diff ID"));
  }
  return out;
}

Loaded load_oci(Blobs& blobs, const std::string& ref) {
  json layout = blobs.read_json("oci-layout");
  if (!layout.is_object() || layout.value("imageLayoutVersion", "") != "1.0.0") {
    throw Error(blobs.name() + ": oci-layout is not imageLayoutVersion 1.0.0");
  }
  json index = blobs.read_json("index.json");
  Descriptor md = pick_manifest(blobs, index, ref, blobs.name() + "/index.json", 0);
  json manifest = blobs.read_json_blob(md, blob_path(md), "manifest");
  if (!manifest.is_object() || !manifest.contains("config") || !manifest.contains("layers") ||
      !manifest["layers"].is_array()) {
    throw Error("manifest " + md.digest + " has no config or layers");
  }
  Descriptor cd = descriptor(manifest["config"], "manifest config");
  Loaded out;
  out.config = blobs.read_json_blob(cd, blob_path(cd), "image config");
  size_t n = 0;
  for (const auto& l : manifest["layers"]) {
    Descriptor d = descriptor(l, "layer " + std::to_string(++n));
    if (!is_layer(d.media_type)) {
      throw Error("layer " + std::to_string(n) + " has media type " + quote(d.media_type) +
                  ", which is not an image layer");
    }
    out.layers.push_back({blob_path(d), d, "layer " + d.digest});
  }
  return out;
}

Loaded load_docker(Blobs& blobs, const std::string& ref) {
  json manifests = blobs.read_json("manifest.json");
  if (!manifests.is_array() || manifests.empty()) {
    throw Error(blobs.name() + ": manifest.json lists no image");
  }
  const json* chosen = nullptr;
  for (const auto& m : manifests) {
    if (!m.is_object()) throw Error(blobs.name() + ": manifest.json holds a non-object");
    bool match = ref.empty();
    if (!ref.empty() && m.contains("RepoTags") && m["RepoTags"].is_array()) {
      for (const auto& t : m["RepoTags"]) match |= t.is_string() && t == ref;
    }
    if (!match) continue;
    if (chosen) throw Error(blobs.name() + " holds several images: name one with :NAME:TAG");
    chosen = &m;
  }
  if (!chosen) throw Error(blobs.name() + " has no image tagged " + quote(ref));
  const json& m = *chosen;
  if (!m.contains("Config") || !m["Config"].is_string() || !m.contains("Layers") ||
      !m["Layers"].is_array()) {
    throw Error(blobs.name() + ": manifest.json entry without Config or Layers");
  }
  std::string config_path = m["Config"];
  Loaded out;
  // Docker names the config after its digest ("<hex>.json", or "blobs/sha256/<hex>"): check it
  // when it does.
  std::string base = config_path.substr(config_path.rfind('/') + 1);
  if (base.size() >= 64) {
    std::string hex = base.substr(0, 64);
    if (base.size() == 64 || base.substr(64) == ".json") {
      uint64_t size = 0;
      blobs.open_required(config_path, size);
      Descriptor d;
      d.digest = "sha256:" + hex;
      d.sha = parse_digest(d.digest, "image config");
      d.size = size;
      out.config = blobs.read_json_blob(d, config_path, "image config");
    }
  }
  if (out.config.is_null()) out.config = blobs.read_json(config_path);
  for (const auto& l : m["Layers"]) {
    if (!l.is_string()) throw Error(blobs.name() + ": a layer path is not a string");
    std::string p = l;
    out.layers.push_back({p, std::nullopt, "layer " + quote(p)});
  }
  return out;
}

}  // namespace

ImportResult import_oci(BlockStore& store, const ImportSource& source, const ImportOptions& opts) {
  std::unique_ptr<Blobs> blobs;
  if (source.kind == ImportSource::Kind::kOciLayout) {
    blobs = std::make_unique<DirBlobs>(source.path);
  } else {
    blobs = std::make_unique<TarBlobs>(source.path);
  }
  Loaded img = source.kind == ImportSource::Kind::kDockerArchive ? load_docker(*blobs, source.ref)
                                                                 : load_oci(*blobs, source.ref);
  std::vector<Sha256Digest> ids = diff_ids(img.config, "image config");
  if (ids.size() != img.layers.size()) {
    throw Error("the image config lists " + std::to_string(ids.size()) + " diff IDs for " +
                std::to_string(img.layers.size()) + " layers");
  }
  if (img.config.value("os", "linux") != "linux") {
    throw Error("the image is for " + quote(img.config.value("os", "")) + ", not linux");
  }
  uint64_t total = 0;
  for (const auto& l : img.layers) {
    uint64_t size = 0;
    blobs->open_required(l.path, size);
    if (l.blob && l.blob->size != size) {
      throw Error(l.what + " is " + std::to_string(size) + " bytes, its descriptor says " +
                  std::to_string(l.blob->size));
    }
    total += size;
  }
  if (opts.on_total) opts.on_total(total);

  ImportResult r;
  Tree tree;
  uint32_t n = 0;
  for (const auto& l : img.layers) {
    ++n;
    uint64_t size = 0;
    auto raw = blobs->open_required(l.path, size);
    std::optional<ExpectedBlob> expect;
    if (l.blob) expect = ExpectedBlob{l.blob->size, l.blob->sha, l.what};
    auto decoder = std::make_unique<LayerDecoder>(std::move(raw), std::move(expect), opts.on_bytes);
    LayerDecoder* dec = decoder.get();
    ReadAheadSource ahead(std::move(decoder), 8u << 20);
    TarReader tar(ahead);
    LayerStats ls = apply_layer(tree, store, tar, n);
    // The rest of the stream (tar padding, the compressor's trailer) must pass the checks too.
    drain(ahead);
    if (dec->diff_id() != ids[n - 1]) {
      throw Error(l.what + ": its content does not match diff ID " + std::to_string(n) +
                  " of the image config");
    }
    r.xattrs_dropped += ls.xattrs_dropped;
    r.input_bytes += size;
  }
  r.layers = n;
  r.image = build_image(store, tree, img.config);
  return r;
}

}  // namespace cidrun::image
