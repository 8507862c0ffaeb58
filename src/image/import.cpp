#include "image/import.h"

#include <sys/stat.h>
#include <sys/utsname.h>

#include "image/dir_import.h"
#include "image/oci.h"
#include "util/error.h"
#include "util/log.h"
#include "util/quote.h"

namespace cidrun::image {

std::string host_architecture() {
  utsname u{};
  ::uname(&u);
  std::string m = u.machine;
  if (m == "x86_64") return "amd64";
  if (m == "aarch64") return "arm64";
  if (m == "i686" || m == "i386") return "386";
  if (m.rfind("armv7", 0) == 0 || m.rfind("armv6", 0) == 0) return "arm";
  if (m == "ppc64le" || m == "s390x" || m == "riscv64") return m;
  return m;
}

ImportSource parse_import_source(const std::string& text) {
  auto colon = text.find(':');
  if (colon == std::string::npos || colon + 1 == text.size()) {
    throw Error("image source " + quote(text) +
                " must be rootfs:DIR, oci:DIR[:REF], oci-archive:FILE[:REF] or "
                "docker-archive:FILE");
  }
  std::string transport = text.substr(0, colon);
  std::string rest = text.substr(colon + 1);
  ImportSource s;
  if (transport == "rootfs") {
    s.kind = ImportSource::Kind::kRootfs;
    s.path = rest;
    return s;
  }
  if (transport == "docker-archive") {
    s.kind = ImportSource::Kind::kDockerArchive;
    // docker-archive:FILE[:NAME:TAG] names an image to write on export; on import a suffix picks
    // nothing we support, so a path that exists wins over a split.
    s.path = rest;
    struct stat st {};
    if (::stat(rest.c_str(), &st) != 0) {
      if (auto c = rest.find(':'); c != std::string::npos) {
        s.path = rest.substr(0, c);
        s.ref = rest.substr(c + 1);
      }
    }
    return s;
  }
  if (transport == "oci" || transport == "oci-archive") {
    s.kind = transport == "oci" ? ImportSource::Kind::kOciLayout : ImportSource::Kind::kOciArchive;
    s.path = rest;
    struct stat st {};
    // As skopeo does: PATH:REF splits at the last colon unless the whole text names a file.
    if (::stat(rest.c_str(), &st) != 0) {
      if (auto c = rest.rfind(':'); c != std::string::npos) {
        s.path = rest.substr(0, c);
        s.ref = rest.substr(c + 1);
      }
    }
    return s;
  }
  throw Error("unknown image transport " + quote(transport) +
              " (rootfs:, oci:, oci-archive: or docker-archive:)");
}

ImportResult import_image(BlockStore& store, const ImportSource& source,
                          const ImportOptions& opts) {
  if (source.kind != ImportSource::Kind::kRootfs) return import_oci(store, source, opts);
  struct stat st {};
  if (::stat(source.path.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    throw Error("rootfs:" + quote(source.path) + " is not a directory");
  }
  Tree tree;
  DirImportStats ds = read_directory(tree, store, source.path, opts.on_bytes);
  nlohmann::json config = opts.config.is_object() ? opts.config : nlohmann::json::object();
  if (!config.contains("architecture")) config["architecture"] = host_architecture();
  if (!config.contains("os")) config["os"] = "linux";
  if (!config.contains("config")) {
    config["config"] = {
        {"Env", {"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}}};
  }
  ImportResult r;
  r.image = build_image(store, tree, config);
  r.input_bytes = ds.bytes;
  r.xattrs_dropped = ds.xattrs_dropped;
  return r;
}

}  // namespace cidrun::image
