#include "image/format.h"

#include <algorithm>

#include "ipld/protobuf.h"
#include "unixfs/exporter.h"
#include "util/error.h"

namespace cidrun::image {
namespace {

uint64_t zigzag(int64_t v) {
  return (static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63);
}
int64_t unzigzag(uint64_t v) {
  return static_cast<int64_t>(v >> 1) ^ -static_cast<int64_t>(v & 1);
}

void put_attr(Bytes& out, const Attr& a) {
  pb::put_uint(out, 1, a.mode);
  if (a.uid != 0) pb::put_uint(out, 2, a.uid);
  if (a.gid != 0) pb::put_uint(out, 3, a.gid);
  if (a.mtime_sec != 0) pb::put_uint(out, 4, zigzag(a.mtime_sec));
  if (a.mtime_nsec != 0) pb::put_uint(out, 5, a.mtime_nsec);
  for (const auto& x : a.xattrs) {
    Bytes xb;
    pb::put_bytes(xb, 1, as_bytes(x.name));
    pb::put_bytes(xb, 2, x.value);
    pb::put_bytes(out, 6, xb);
  }
}

void put_entry(Bytes& out, const MetaEntry& e) {
  pb::put_bytes(out, 1, as_bytes(e.name));
  if (e.type != EntryType::kFile) pb::put_uint(out, 2, static_cast<uint64_t>(e.type));
  if (e.type != EntryType::kHardlink) {
    Bytes a;
    put_attr(a, e.attr);
    pb::put_bytes(out, 3, a);
  }
  if (e.major != 0) pb::put_uint(out, 4, e.major);
  if (e.minor != 0) pb::put_uint(out, 5, e.minor);
  if (!e.link.empty()) pb::put_bytes(out, 6, as_bytes(e.link));
  if (e.nlink != 0) pb::put_uint(out, 7, e.nlink);
}

// Reads the fields of one message in order: each call names the next field it accepts; fields
// must come in increasing number, each at most once (repeated fields may repeat).
class StrictReader {
 public:
  StrictReader(ByteView data, const char* what) : r_(data), what_(what) {}

  // True when the next field is `field` with wire type wt (and consumes its tag).
  bool next_is(uint32_t field, pb::WireType wt) {
    if (!pending_) {
      if (r_.done()) return false;
      pending_ = r_.tag();
      if (pending_->first < last_) fail("fields out of order");
      if (pending_->first == last_ && !repeating_) fail("a field appears twice");
    }
    if (pending_->first != field) return false;
    if (pending_->second != wt) fail("wrong wire type for field " + std::to_string(field));
    repeating_ = false;
    last_ = field;
    pending_.reset();
    return true;
  }
  // For repeated fields: allows the field just read to come again.
  void allow_repeat() { repeating_ = true; }
  uint64_t varint() { return r_.varint(); }
  ByteView bytes() { return r_.bytes(); }
  // Every field was consumed.
  void finish() {
    if (pending_ || !r_.done()) {
      uint32_t f = pending_ ? pending_->first : 0;
      fail("unknown or misplaced field " + std::to_string(f));
    }
  }
  [[noreturn]] void fail(const std::string& why) const {
    throw Error(std::string(what_) + ": " + why);
  }

 private:
  pb::Reader r_;
  const char* what_;
  std::optional<std::pair<uint32_t, pb::WireType>> pending_;
  uint32_t last_ = 0;
  bool repeating_ = false;
};

uint32_t to_u32(uint64_t v, const char* field) {
  if (v > UINT32_MAX) throw Error(std::string(field) + " out of range: " + std::to_string(v));
  return static_cast<uint32_t>(v);
}

Attr read_attr(ByteView data) {
  StrictReader r(data, "image metadata attributes");
  Attr a;
  if (!r.next_is(1, pb::kVarint)) r.fail("mode is missing");
  uint64_t mode = r.varint();
  if (mode > 07777) r.fail("mode " + std::to_string(mode) + " is above 07777");
  a.mode = static_cast<uint32_t>(mode);
  if (r.next_is(2, pb::kVarint)) a.uid = to_u32(r.varint(), "uid");
  if (r.next_is(3, pb::kVarint)) a.gid = to_u32(r.varint(), "gid");
  if (r.next_is(4, pb::kVarint)) a.mtime_sec = unzigzag(r.varint());
  if (r.next_is(5, pb::kVarint)) {
    uint64_t ns = r.varint();
    if (ns > 999999999) r.fail("mtime nanoseconds out of range");
    a.mtime_nsec = static_cast<uint32_t>(ns);
  }
  while (r.next_is(6, pb::kLen)) {
    r.allow_repeat();
    StrictReader x(r.bytes(), "image metadata xattr");
    Xattr xa;
    if (!x.next_is(1, pb::kLen)) x.fail("name is missing");
    xa.name = std::string(as_string(x.bytes()));
    if (!x.next_is(2, pb::kLen)) x.fail("value is missing");
    ByteView v = x.bytes();
    xa.value.assign(v.begin(), v.end());
    x.finish();
    a.xattrs.push_back(std::move(xa));
  }
  r.finish();
  check_xattrs(a.xattrs);
  return a;
}

MetaEntry read_entry(ByteView data) {
  StrictReader r(data, "image metadata entry");
  MetaEntry e;
  if (!r.next_is(1, pb::kLen)) r.fail("name is missing");
  e.name = std::string(as_string(r.bytes()));
  if (!unixfs::is_safe_name(e.name) || e.name.size() > kMaxNameLen) {
    r.fail("unsafe or over-long name");
  }
  if (r.next_is(2, pb::kVarint)) {
    uint64_t t = r.varint();
    if (t == 0 || t > static_cast<uint64_t>(EntryType::kHardlink)) {
      r.fail("unknown entry type " + std::to_string(t));
    }
    e.type = static_cast<EntryType>(t);
  }
  bool hardlink = e.type == EntryType::kHardlink;
  if (r.next_is(3, pb::kLen)) {
    if (hardlink) r.fail("a hard link carries attributes");
    e.attr = read_attr(r.bytes());
  } else if (!hardlink) {
    r.fail("attributes are missing");
  }
  if (r.next_is(4, pb::kVarint)) e.major = to_u32(r.varint(), "device major");
  if (r.next_is(5, pb::kVarint)) e.minor = to_u32(r.varint(), "device minor");
  bool device = e.type == EntryType::kCharDevice || e.type == EntryType::kBlockDevice;
  if (!device && (e.major != 0 || e.minor != 0)) r.fail("device numbers on a non-device");
  if (r.next_is(6, pb::kLen)) {
    ByteView l = r.bytes();
    e.link = std::string(as_string(l));
  }
  if (hardlink != !e.link.empty()) r.fail("a hard link needs a link path, and only it");
  if (e.link.size() > kMaxLinkPathLen) r.fail("link path too long");
  if (r.next_is(7, pb::kVarint)) {
    e.nlink = r.varint();
    if (e.nlink < 2 || hardlink) r.fail("bad nlink");
  }
  r.finish();
  return e;
}

}  // namespace

bool storable_xattr(std::string_view name) {
  return name.starts_with("user.") || name.starts_with("security.") ||
         name == "system.posix_acl_access" || name == "system.posix_acl_default";
}

void check_xattrs(const std::vector<Xattr>& xattrs) {
  size_t total = 0;
  for (size_t i = 0; i < xattrs.size(); ++i) {
    const auto& x = xattrs[i];
    if (x.name.empty() || x.name.size() > kMaxXattrNameLen ||
        x.name.find('\0') != std::string::npos) {
      throw Error("xattr name is empty, over-long or contains NUL");
    }
    if (!storable_xattr(x.name)) throw Error("xattr '" + x.name + "' may not be stored");
    if (x.value.size() > kMaxXattrValueLen) throw Error("xattr '" + x.name + "' is too large");
    if (i > 0 && !(xattrs[i - 1].name < x.name)) throw Error("xattrs not sorted or not unique");
    total += x.name.size() + x.value.size();
  }
  if (total > kMaxXattrsPerEntry) throw Error("xattrs of one entry exceed 64 KiB");
}

Bytes encode_dir_meta(const DirMeta& m) {
  Bytes out;
  if (m.self) {
    Bytes a;
    put_attr(a, *m.self);
    pb::put_bytes(out, 1, a);
  }
  for (const auto& e : m.entries) {
    Bytes eb;
    put_entry(eb, e);
    pb::put_bytes(out, 2, eb);
  }
  return out;
}

DirMeta decode_dir_meta(ByteView data) {
  StrictReader r(data, "image metadata");
  DirMeta m;
  if (r.next_is(1, pb::kLen)) m.self = read_attr(r.bytes());
  while (r.next_is(2, pb::kLen)) {
    r.allow_repeat();
    m.entries.push_back(read_entry(r.bytes()));
    if (m.entries.size() > 1 && !(m.entries[m.entries.size() - 2].name < m.entries.back().name)) {
      r.fail("entries not sorted or not unique");
    }
  }
  r.finish();
  // One encoding per meaning: anything that re-encodes differently (non-minimal varints) is
  // refused, so a block cannot be read two ways.
  if (encode_dir_meta(m) != Bytes(data.begin(), data.end())) r.fail("not in canonical form");
  return m;
}

Bytes encode_header(const ImageHeader& h) {
  Bytes out;
  pb::put_bytes(out, 1, as_bytes(kImageMagic));
  pb::put_uint(out, 2, h.version);
  if (h.files) pb::put_uint(out, 3, h.files);
  if (h.directories) pb::put_uint(out, 4, h.directories);
  if (h.symlinks) pb::put_uint(out, 5, h.symlinks);
  if (h.specials) pb::put_uint(out, 6, h.specials);
  if (h.content_bytes) pb::put_uint(out, 7, h.content_bytes);
  return out;
}

std::optional<ImageHeader> decode_header(ByteView data) {
  // The magic first: anything else (a UnixFS Data message starts with byte 0x08) is no image.
  Bytes magic;
  pb::put_bytes(magic, 1, as_bytes(kImageMagic));
  if (data.size() < magic.size() || !std::equal(magic.begin(), magic.end(), data.begin())) {
    return std::nullopt;
  }
  StrictReader r(data, "image header");
  ImageHeader h;
  r.next_is(1, pb::kLen);
  r.bytes();
  if (!r.next_is(2, pb::kVarint)) r.fail("version is missing");
  h.version = r.varint();
  if (h.version != kImageVersion) {
    throw Error("image format version " + std::to_string(h.version) +
                " is not supported (this cidrun reads version 1)");
  }
  if (r.next_is(3, pb::kVarint)) h.files = r.varint();
  if (r.next_is(4, pb::kVarint)) h.directories = r.varint();
  if (r.next_is(5, pb::kVarint)) h.symlinks = r.varint();
  if (r.next_is(6, pb::kVarint)) h.specials = r.varint();
  if (r.next_is(7, pb::kVarint)) h.content_bytes = r.varint();
  r.finish();
  if (encode_header(h) != Bytes(data.begin(), data.end())) r.fail("not in canonical form");
  return h;
}

Bytes encode_start_set(std::string_view command) {
  Bytes out;
  if (!command.empty()) pb::put_bytes(out, 1, as_bytes(command));
  return out;
}

std::string decode_start_set(ByteView data) {
  StrictReader r(data, "start set");
  std::string command;
  if (r.next_is(1, pb::kLen)) command = std::string(as_string(r.bytes()));
  r.finish();
  return command;
}

}  // namespace cidrun::image
