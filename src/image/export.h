// `image export IMAGE DEST`: a cidrun image out to the container world, as one layer holding
// the whole root filesystem (owners, xattrs, hard links, devices, nanosecond mtimes in PAX
// records; a hard link's header repeats its group's attributes, which containerd and podman
// apply to the inode) and the image's config:
//   oci:DIR[:REF]                  an OCI image layout (created, or added to: REF replaces an
//                                  image of the same name there); REF defaults to "latest"
//   oci-archive:FILE[:REF]         the same as one tar file
//   docker-archive:FILE[:NAME:TAG] what `docker load` / `podman load` read (uncompressed layer)
// Importing the result gives back the same image CID (docs/IMAGE-FORMAT.md says how the config
// round-trips). The layer is deterministic: the same image gives the same bytes.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "image/reader.h"
#include "util/stream_compression.h"

namespace cidrun::image {

struct ExportDest {
  enum class Kind { kOciLayout, kOciArchive, kDockerArchive };
  Kind kind = Kind::kOciLayout;
  std::string path;
  std::string ref;  // oci: REF; docker-archive: NAME:TAG (may be empty)
};

// Parses "TRANSPORT:PATH[:REF]"; throws Error naming the accepted forms.
ExportDest parse_export_dest(const std::string& text);

struct ExportOptions {
  Compression compression = Compression::gzip;  // of OCI layers (Docker archives: none)
  int level = 0;                                // 0: the compressor's default
  std::function<void(uint64_t)> on_bytes;       // file bytes written into the layer
};

struct ExportResult {
  std::string manifest_digest;  // OCI only
  std::string layer_digest;
  std::string diff_id;
  uint64_t layer_bytes = 0;
};

ExportResult export_image(ImageReader& reader, const ExportDest& dest,
                          const ExportOptions& opts = {});

}  // namespace cidrun::image
