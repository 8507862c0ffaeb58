// What commands accept where a CID is expected: an image name (`image import --tag NAME`,
// "NAME" alone meaning "NAME:latest" too) or a CID, optionally followed by a path.
#pragma once

#include <string>
#include <utility>

#include "store/repo.h"
#include "unixfs/reader.h"

namespace cidrun::cli {

// The CID a name stands for, or the CID the text spells (see unixfs::Dag::split_path), with the
// path after it. Throws Error when the text is neither.
std::pair<Cid, std::string> split_root(const Repo& repo, const std::string& text);

// The same without a path: throws Error when the text has one.
Cid resolve_root(const Repo& repo, const std::string& text);

}  // namespace cidrun::cli
