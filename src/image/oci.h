// OCI image layouts and archives, and Docker archives, in and out (image/import.h and
// image/export.h say what each transport is).
#pragma once

#include "image/import.h"

namespace cidrun::image {

// Reads the manifest, config and layers of an oci:, oci-archive: or docker-archive: source,
// verifying every digest, and applies the layers in order.
ImportResult import_oci(BlockStore& store, const ImportSource& source, const ImportOptions& opts);

}  // namespace cidrun::image
