// The blocks of a cidrun image (docs/IMAGE-FORMAT.md is the specification): the image root's
// header, the per-directory metadata (DirMeta) and the start set. Encoders write the canonical
// bytes; decoders are strict (field order, no duplicates, no unknown fields, ranges checked), so
// one block has exactly one meaning and a hostile block gives a clear error.
#pragma once

#include <compare>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ipld/dagpb.h"
#include "util/bytes.h"

namespace cidrun::image {

inline constexpr std::string_view kImageMagic = "cidrun-image";
inline constexpr uint64_t kImageVersion = 1;

// Limits every reader enforces (the format document lists them).
inline constexpr size_t kMaxNameLen = 255;
inline constexpr size_t kMaxXattrNameLen = 255;
inline constexpr size_t kMaxXattrValueLen = 64 * 1024;
inline constexpr size_t kMaxXattrsPerEntry = 64 * 1024;  // bytes of names and values together
inline constexpr size_t kMaxLinkPathLen = 4096;
inline constexpr size_t kMaxDirDepth = 256;
inline constexpr size_t kMaxStartSetLinks = 16384;
// A metadata node bigger than this is paged (pages stay below it).
inline constexpr size_t kMetaPageLimit = 256 * 1024;

struct Xattr {
  std::string name;
  Bytes value;
  friend bool operator==(const Xattr&, const Xattr&) = default;
};

struct Attr {
  uint32_t mode = 0;  // permission bits with setuid/setgid/sticky (07777)
  uint32_t uid = 0;
  uint32_t gid = 0;
  int64_t mtime_sec = 0;
  uint32_t mtime_nsec = 0;
  std::vector<Xattr> xattrs;  // sorted by name, unique
  friend bool operator==(const Attr&, const Attr&) = default;
};

enum class EntryType : uint8_t {
  kFile = 0,
  kSymlink = 1,
  kCharDevice = 2,
  kBlockDevice = 3,
  kFifo = 4,
  kHardlink = 5,
};

// What a name is, once the metadata and the tree are joined.
enum class Kind : uint8_t { kDirectory, kFile, kSymlink, kCharDevice, kBlockDevice, kFifo };

struct MetaEntry {
  std::string name;
  EntryType type = EntryType::kFile;
  Attr attr;  // unused for hard links
  uint32_t major = 0;
  uint32_t minor = 0;
  std::string link;    // hard links: the path of the group's first name
  uint64_t nlink = 0;  // the first name of a group: its number of names (0: not in a group)
};

struct DirMeta {
  std::optional<Attr> self;        // absent in pages
  std::vector<MetaEntry> entries;  // non-directory names, sorted, unique
};

Bytes encode_dir_meta(const DirMeta& m);
// Throws Error describing the first violation of the format.
DirMeta decode_dir_meta(ByteView data);

struct ImageHeader {
  uint64_t version = kImageVersion;
  uint64_t files = 0;
  uint64_t directories = 0;
  uint64_t symlinks = 0;
  uint64_t specials = 0;
  uint64_t content_bytes = 0;
};

Bytes encode_header(const ImageHeader& h);
// nullopt when data is not an image header (its magic is missing: e.g. UnixFS data); throws
// Error for a header with the magic but an unsupported version or malformed fields.
std::optional<ImageHeader> decode_header(ByteView data);

Bytes encode_start_set(std::string_view command);
std::string decode_start_set(ByteView data);

// Checks an xattr list as the format demands (sorted, unique, sizes); names the problem.
void check_xattrs(const std::vector<Xattr>& xattrs);

// Whether an xattr name may be stored in an image: user.*, security.* and the POSIX ACLs.
// trusted.* (overlayfs keeps its own state there) and other system.* names never are.
bool storable_xattr(std::string_view name);

}  // namespace cidrun::image
