// The tar codec under image import and export: a reader for the tar streams of OCI/Docker layers
// (and whatever GNU tar, Go's archive/tar, Python's tarfile and libarchive write), and a writer
// whose output is byte-for-byte deterministic.
//
// Reader: formats and what is checked
// - POSIX ustar (name split into prefix/name; star's 131-byte prefix), PAX extended headers ('x'),
//   GNU long names and link names ('L', 'K'), old GNU and V7 headers; octal or base-256 numbers.
// - Every header's checksum (unsigned or signed sum, as historic writers disagree).
// - Entry types: regular ('0', '\0', contiguous '7'), hard link, symlink, char and block device,
//   directory, fifo. A V7 '\0' entry whose name ends in '/' is a directory. Anything else (GNU
//   sparse 'S' or GNU.sparse.* records, dumpdir 'D', multi-volume 'M', volume label 'V', vendor
//   types) is an error naming it.
// - Content: only regular files have content. A directory's size field is ignored (every reader
//   does); a link, device or fifo with a non-zero size is refused, because readers disagree on
//   whether data follows it (GNU tar skips it, Go and Python do not), and an archive that parses
//   two ways could hide entries from one of them.
// - Paths (kMaxPathBytes at most) are normalised: leading "/" and "./" dropped, "//" and "."
//   components collapsed, a trailing "/" dropped; ".." anywhere is an error, the root ("./", "/")
//   is "" and must be a directory. Hard-link targets are normalised the same way; symlink targets
//   are kept verbatim (what they point to is the caller's concern).
// - PAX: records are checked ("LEN key=value\n", LEN exact), a header holds at most
//   kMaxPaxHeaderBytes; a NUL in a path, link path, user or group name, or in any key, is an
//   error. Understood keys: path, linkpath, size, uid, gid, uname, gname, mtime (decimal seconds
//   with a fraction, may be negative), SCHILY.xattr.NAME (raw bytes), LIBARCHIVE.xattr.NAME
//   (URL-encoded name, base64 value; must agree with a SCHILY record of the same name),
//   SCHILY.devmajor/devminor. Ignored: atime, ctime, comment, charset, hdrcharset (values are
//   taken as bytes), other vendor keys (SCHILY.acl.* included: ACLs reach images as
//   system.posix_acl_* xattrs). The last record of a key wins, as in every reader.
// - Global PAX headers ('g'): GNU tar and Python apply them to later entries, Go's archive/tar
//   hands them to the caller and containerd and Docker ignore them; so a 'g' that sets anything
//   is refused. One holding only comment/charset/hdrcharset records (git archive writes its commit
//   as a comment) is accepted and ignored.
// - Two 'x', two 'L' or two 'K' headers for one entry, or an 'L'/'K' and a PAX record for the same
//   field, are errors (readers pick different ones). So is a meta header with no entry after it.
// - Sizes above kMaxEntryBytes, negative numbers, uid/gid above 2^32-1 are errors.
// - End: two zero blocks. A stream that ends cleanly at a header boundary (no zero blocks, or
//   one) is accepted, as Go's archive/tar does; a zero block followed by a header is an error
//   (GNU tar and Python would stop there and Go fails: refusing keeps the entries seen the same for
//   all). Nothing after the end is read: the caller drains the source (util/stream.h drain()) so
//   that a decompressor checks its trailer and a hashing source sees every byte.
// - A truncated stream (in a header, a meta header's content, an entry's content or padding) is
//   an error. Every message is one line starting "tar: " and names the entry or the offset.
// What the reader does not decide: whiteouts, trusted.* xattrs, device nodes, owners, where
// a hard link may point. The caller applies its policy to the entries.
//
// Writer: ustar headers, plus a PAX header only for what ustar cannot hold (a path that does not
// fit name/prefix, a link target over 100 bytes, sizes >= 8 GiB, ids >= 2^21, user or group
// names over 32 bytes, an mtime with nanoseconds or outside 0..8^11-1, xattrs). PAX records come
// in a fixed order (path, linkpath, size, uid, gid, uname, gname, mtime, then SCHILY.xattr.* by
// name; values are bytes, with no hdrcharset record); the PAX header's own name is fixed
// ("DIR/PaxHeaders/NAME", mtime 0). Directories are written with a trailing "/", the root as
// "./". The archive ends with two zero blocks. Same entries and content, same bytes.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "util/bytes.h"
#include "util/stream.h"

namespace cidrun::image {

inline constexpr size_t kMaxPathBytes = 4095;          // PATH_MAX less its NUL
inline constexpr size_t kMaxPaxHeaderBytes = 1 << 20;  // as Go's archive/tar
inline constexpr uint64_t kMaxEntryBytes = uint64_t{1} << 40;

enum class TarEntryType { regular, directory, symlink, hard_link, char_device, block_device, fifo };
std::string_view tar_entry_type_name(TarEntryType type);

struct TarEntry {
  std::string path;  // normalised; "" is the root directory
  TarEntryType type = TarEntryType::regular;
  uint32_t mode = 0;  // permission, setuid, setgid and sticky bits (07777)
  uint32_t uid = 0;
  uint32_t gid = 0;
  std::string uname;
  std::string gname;
  int64_t mtime_sec = 0;    // seconds since the epoch, rounded down
  uint32_t mtime_nsec = 0;  // 0 to 999,999,999, after mtime_sec
  uint64_t size = 0;        // content bytes; always 0 but for regular files
  std::string link_target;  // symlink: verbatim; hard link: a normalised path
  uint32_t dev_major = 0;   // char and block devices
  uint32_t dev_minor = 0;
  std::map<std::string, Bytes> xattrs;  // by name; values are raw bytes

  bool operator==(const TarEntry&) const = default;
};

class TarReader {
 public:
  explicit TarReader(ByteSource& source) : source_(source) {}

  // The next entry, after skipping what is left of the current one's content; false at the end
  // of the archive (and on every later call).
  bool next(TarEntry& entry);
  // The current entry's content, read straight from the source into buf: up to n bytes, 0 at the
  // end of the content. Throws when the stream ends before the content does.
  size_t read(uint8_t* buf, size_t n);
  uint64_t remaining() const { return remaining_; }
  // Bytes of the archive consumed so far.
  uint64_t offset() const { return offset_; }

 private:
  enum class Skipped { content, padding };
  void read_exact(uint8_t* buf, size_t n, const char* what);
  void skip(uint64_t n, Skipped what);
  void finish_entry();

  ByteSource& source_;
  uint64_t offset_ = 0;
  uint64_t remaining_ = 0;  // content of the current entry not read yet
  uint64_t padding_ = 0;    // zeros after it, up to the next 512-byte boundary
  std::string current_;     // the current entry's path, for messages
  std::string pax_data_;    // the last PAX header's records (kept: entries are built from it)
  Bytes scratch_;           // what skipped content is read into
  bool ended_ = false;
};

class TarWriter {
 public:
  explicit TarWriter(ByteSink& sink) : sink_(sink) {}

  // Writes the entry's header(s); a regular file's entry.size bytes of content follow through
  // write(). The entry is checked first: a path or hard-link target that is not normalised, a
  // NUL in a name, content on a non-regular entry, mode bits outside 07777, a device number
  // above 07777777, an xattr name with '=' are errors.
  void add(const TarEntry& entry);
  // Content of the current regular file (passed to the sink as is); more than its size is an
  // error.
  void write(ByteView data);
  // The end of the archive (two zero blocks), then the sink's finish(). Errors when the last
  // file's content is incomplete.
  void finish();

 private:
  void require_complete() const;

  ByteSink& sink_;
  Bytes pending_;  // padding of the last content, written with the next header
  uint64_t remaining_ = 0;
  std::string current_;
  bool finished_ = false;
};

// libFuzzer entry: reads `input` as a tar archive to its end, content included. A cidrun::Error
// is the expected outcome of bad input; a crash, a hang or any other exception is a bug.
void fuzz_tar_reader(ByteView input);

}  // namespace cidrun::image
