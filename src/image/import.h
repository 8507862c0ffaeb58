// `image import SOURCE`: the container world's image formats (skopeo/podman transport
// spellings) -> a cidrun image, every byte checked on the way in:
//   rootfs:DIR              a root directory taken with everything it holds (image/dir_import.h)
//   oci:DIR[:REF]           an OCI image layout directory
//   oci-archive:FILE[:REF]  the same as a tar file
//   docker-archive:FILE     what `docker save` / `podman save` write
// OCI layers are applied as the image spec says (image/layer.h); blob digests and layer diff IDs
// are verified. All blocks go to the given store, which the caller stages: an import that fails
// leaves nothing behind.
#pragma once

#include <functional>
#include <string>

#include <nlohmann/json.hpp>

#include "image/builder.h"
#include "store/blockstore.h"

namespace cidrun::image {

struct ImportSource {
  enum class Kind { kRootfs, kOciLayout, kOciArchive, kDockerArchive };
  Kind kind = Kind::kRootfs;
  std::string path;
  std::string ref;  // oci: and oci-archive: only; empty = the only image there
};

// Parses "TRANSPORT:PATH[:REF]"; throws Error naming the accepted forms.
ImportSource parse_import_source(const std::string& text);

struct ImportOptions {
  // rootfs: only: the OCI config to give the image (architecture/os default to this host's).
  nlohmann::json config;
  std::function<void(uint64_t)> on_bytes;  // input bytes consumed (progress)
  std::function<void(uint64_t)> on_total;  // total input bytes, once known
};

struct ImportResult {
  BuiltImage image;
  uint64_t layers = 0;
  uint64_t input_bytes = 0;     // bytes read from the source (compressed layers as they are)
  uint64_t xattrs_dropped = 0;  // trusted.* and other unstorable xattrs left out
};

ImportResult import_image(BlockStore& store, const ImportSource& source,
                          const ImportOptions& opts = {});

// The OCI name of this host's architecture ("amd64", "arm64"...).
std::string host_architecture();

}  // namespace cidrun::image
