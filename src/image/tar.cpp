#include "image/tar.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <limits>
#include <optional>
#include <vector>

#include "util/error.h"

namespace cidrun::image {
namespace {

constexpr size_t kBlock = 512;
constexpr uint64_t kMaxOctal11 = 077777777777;  // a 12-byte field: 11 octal digits
constexpr uint64_t kMaxOctal7 = 07777777;       // an 8-byte field: 7 octal digits

struct Field {
  size_t offset;
  size_t size;
};
constexpr Field kName{0, 100};
constexpr Field kMode{100, 8};
constexpr Field kUid{108, 8};
constexpr Field kGid{116, 8};
constexpr Field kSize{124, 12};
constexpr Field kMtime{136, 12};
constexpr Field kChecksum{148, 8};
constexpr size_t kTypeflag = 156;
constexpr Field kLinkname{157, 100};
constexpr Field kMagic{257, 6};
constexpr Field kVersion{263, 2};
constexpr Field kUname{265, 32};
constexpr Field kGname{297, 32};
constexpr Field kDevmajor{329, 8};
constexpr Field kDevminor{337, 8};
constexpr Field kPrefix{345, 155};
constexpr Field kStarPrefix{345, 131};  // star keeps atime and ctime after a shorter prefix
constexpr Field kStarTrailer{508, 4};

using Block = std::array<uint8_t, kBlock>;

std::string quote(std::string_view s);

// Where an error is: a header's offset and, once known, the entry's name; or (the writer's) a
// ready-made description. Turned into text only when an error is thrown: the reader builds one
// per header.
struct Where {
  uint64_t header_at = 0;
  const std::string* name = nullptr;
  const std::string* text = nullptr;
};

void append_part(std::string& message, std::string_view part) {
  message.append(part);
}

void append_part(std::string& message, const Where& where) {
  if (where.text) {
    message += *where.text;
    return;
  }
  if (where.name) message += "entry " + quote(*where.name) + " (";
  message += "header at byte " + std::to_string(where.header_at);
  if (where.name) message += ")";
}

// Throws "tar: " and the parts, appended (strings, views, literals, a Where).
template <typename... Parts>
[[noreturn]] void fail(const Parts&... parts) {
  std::string message = "tar: ";
  (append_part(message, parts), ...);
  throw Error(message);
}

// A name as it can be shown on one line: quoted, bytes outside printable ASCII escaped, long
// names cut.
std::string quote(std::string_view s) {
  constexpr size_t kShown = 160;
  std::string out = "'";
  for (size_t i = 0; i < s.size() && i < kShown; ++i) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c < 0x7f && c != '\\' && c != '\'') {
      out += static_cast<char>(c);
    } else {
      static const char* const kHex = "0123456789abcdef";
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  if (s.size() > kShown) out += "...";
  return out + "'";
}

std::string_view field_bytes(const Block& b, Field f) {
  return {reinterpret_cast<const char*>(b.data()) + f.offset, f.size};
}

// A string field: up to its first NUL (a full field has none).
std::string field_string(const Block& b, Field f) {
  std::string_view v = field_bytes(b, f);
  return std::string(v.substr(0, v.find('\0')));
}

bool all_zero(const Block& b) {
  return std::all_of(b.begin(), b.end(), [](uint8_t x) { return x == 0; });
}

// An octal or base-256 number field. Octal: optional leading spaces or NULs, digits, then only
// spaces or NULs (an empty field is 0). Base-256 (GNU, first byte 0x80 or 0xff): a big-endian
// two's-complement number.
int64_t parse_number(const Block& b, Field f, const char* name, const Where& where) {
  const uint8_t* p = b.data() + f.offset;
  if (p[0] & 0x80) {
    uint8_t invert = (p[0] & 0x40) ? 0xff : 0;
    uint64_t x = 0;
    for (size_t i = 0; i < f.size; ++i) {
      uint8_t c = p[i] ^ invert;
      if (i == 0) c &= 0x7f;
      if (x >> 56) fail(where, ": the ", name, " field overflows");
      x = x << 8 | c;
    }
    if (x >> 63) fail(where, ": the ", name, " field overflows");
    return invert ? ~static_cast<int64_t>(x) : static_cast<int64_t>(x);
  }
  size_t i = 0;
  while (i < f.size && (p[i] == ' ' || p[i] == 0)) ++i;
  uint64_t v = 0;
  size_t digits = 0;
  for (; i < f.size && p[i] >= '0' && p[i] <= '7'; ++i, ++digits) {
    if (v >> 60) fail(where, ": the ", name, " field overflows");
    v = v * 8 + (p[i] - '0');
  }
  for (; i < f.size; ++i) {
    if (p[i] != ' ' && p[i] != 0) {
      fail(where, ": the ", name, " field is not an octal number: ", quote(field_bytes(b, f)));
    }
  }
  if (v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
    fail(where, ": the ", name, " field overflows");
  }
  return static_cast<int64_t>(v);
}

uint64_t parse_unsigned(const Block& b, Field f, const char* name, const Where& where,
                        uint64_t max) {
  int64_t v = parse_number(b, f, name, where);
  if (v < 0) fail(where, ": negative ", name, " ", std::to_string(v));
  if (static_cast<uint64_t>(v) > max) {
    fail(where, ": ", name, " ", std::to_string(v), " is above the limit of ", std::to_string(max));
  }
  return static_cast<uint64_t>(v);
}

void check_checksum(const Block& b, const Where& where) {
  uint64_t unsigned_sum = 0;
  int64_t signed_sum = 0;
  for (size_t i = 0; i < kBlock; ++i) {
    uint8_t c = (i >= kChecksum.offset && i < kChecksum.offset + kChecksum.size) ? ' ' : b[i];
    unsigned_sum += c;
    signed_sum += static_cast<int8_t>(c);
  }
  int64_t stored = parse_number(b, kChecksum, "checksum", where);
  if (stored != static_cast<int64_t>(unsigned_sum) && stored != signed_sum) {
    fail(where, ": header checksum mismatch (stored ", std::to_string(stored), ", computed ",
         std::to_string(unsigned_sum), "): not a tar header, or a corrupt one");
  }
}

enum class Format { v7, ustar, star, gnu };

Format detect_format(const Block& b) {
  std::string_view magic = field_bytes(b, kMagic);
  std::string_view version = field_bytes(b, kVersion);
  if (magic == std::string_view("ustar\0", 6) && version == "00") {
    return field_bytes(b, kStarTrailer) == std::string_view("tar\0", 4) ? Format::star
                                                                        : Format::ustar;
  }
  if (magic == "ustar " && version == std::string_view(" \0", 2)) return Format::gnu;
  return Format::v7;
}

// "a/./b//c/" -> "a/b/c"; "./" and "/" -> "". ".." is an error.
std::string normalize(std::string_view raw, const Where& where, const char* what) {
  std::string out;
  out.reserve(raw.size());
  size_t i = 0;
  while (i <= raw.size()) {
    size_t j = raw.find('/', i);
    if (j == std::string_view::npos) j = raw.size();
    std::string_view part = raw.substr(i, j - i);
    if (part == "..") fail(where, ": ", what, " ", quote(raw), " has a '..' component");
    if (!part.empty() && part != ".") {
      if (!out.empty()) out += '/';
      out += part;
    }
    i = j + 1;
  }
  if (out.size() > kMaxPathBytes) {
    fail(where, ": ", what, " of ", std::to_string(out.size()), " bytes is longer than ",
         std::to_string(kMaxPathBytes));
  }
  return out;
}

bool is_digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

uint64_t parse_decimal(std::string_view s, const Where& where, std::string_view key, uint64_t max) {
  if (!is_digits(s)) fail(where, ": PAX record ", key, "=", quote(s), " is not a number");
  uint64_t v = 0;
  for (char c : s) {
    if (v > (max - static_cast<uint64_t>(c - '0')) / 10) {
      fail(where, ": PAX record ", key, "=", s, " is above the limit of ", std::to_string(max));
    }
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  return v;
}

// PAX mtime: [-]SECONDS[.FRACTION]; a negative time counts back from the epoch, so -1.25 is
// 1.25 s before it (second -2, 750,000,000 ns).
void parse_pax_time(std::string_view s, const Where& where, TarEntry& e) {
  std::string_view all = s;
  bool negative = !s.empty() && s[0] == '-';
  if (negative) s.remove_prefix(1);
  std::string_view secs = s.substr(0, s.find('.'));
  std::string_view frac = secs.size() < s.size() ? s.substr(secs.size() + 1) : std::string_view();
  if (!is_digits(secs) || (!frac.empty() && !is_digits(frac))) {
    fail(where, ": PAX record mtime=", quote(all), " is not a decimal time");
  }
  auto max_secs = static_cast<uint64_t>(std::numeric_limits<int64_t>::max() - 1);
  uint64_t sec = parse_decimal(secs, where, "mtime", max_secs);
  uint32_t nsec = 0;
  for (size_t i = 0; i < 9; ++i) nsec = nsec * 10 + (i < frac.size() ? frac[i] - '0' : 0);
  if (!negative) {
    e.mtime_sec = static_cast<int64_t>(sec);
    e.mtime_nsec = nsec;
  } else if (nsec == 0) {
    e.mtime_sec = -static_cast<int64_t>(sec);
    e.mtime_nsec = 0;
  } else {
    e.mtime_sec = -static_cast<int64_t>(sec) - 1;
    e.mtime_nsec = 1000000000 - nsec;
  }
}

// An entry's PAX records, in the order they came; they point into the header's bytes.
using PaxRecords = std::vector<std::pair<std::string_view, std::string_view>>;

// "LEN key=value\n" records, LEN counting the whole record.
PaxRecords parse_pax(std::string_view data, const Where& where) {
  PaxRecords records;
  size_t pos = 0;
  auto bad = [&](std::string_view detail) {
    fail(where, ": malformed PAX record at byte ", std::to_string(pos), detail);
  };
  while (pos < data.size()) {
    size_t space = data.find(' ', pos);
    if (space == std::string_view::npos || space == pos || space - pos > 7) bad("");
    std::string_view len_text = data.substr(pos, space - pos);
    if (!is_digits(len_text)) bad("");
    size_t len = 0;
    for (char c : len_text) len = len * 10 + static_cast<size_t>(c - '0');
    // At least "N k=\n".
    if (len < len_text.size() + 4 || len > data.size() - pos) bad(" (bad length)");
    std::string_view record = data.substr(space + 1, pos + len - space - 1);
    if (record.back() != '\n') bad(" (no newline at its end)");
    record.remove_suffix(1);
    size_t eq = record.find('=');
    if (eq == std::string_view::npos || eq == 0) bad(" (no key)");
    std::string_view key = record.substr(0, eq);
    std::string_view value = record.substr(eq + 1);
    if (key.find('\0') != std::string_view::npos) bad(" (a NUL in its key)");
    if ((key == "path" || key == "linkpath" || key == "uname" || key == "gname") &&
        value.find('\0') != std::string_view::npos) {
      fail(where, ": PAX record ", key, " holds a NUL byte");
    }
    records.emplace_back(key, value);
    pos += len;
  }
  return records;
}

int base64_value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

// Standard base64, padding optional (libarchive writes none).
std::optional<Bytes> base64_decode(std::string_view s) {
  while (!s.empty() && s.back() == '=') s.remove_suffix(1);
  if (s.size() % 4 == 1) return std::nullopt;
  Bytes out;
  uint32_t acc = 0;
  int bits = 0;
  for (char c : s) {
    int v = base64_value(c);
    if (v < 0) return std::nullopt;
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<uint8_t>(acc >> bits));
    }
  }
  return out;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::optional<std::string> url_decode(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out += s[i];
      continue;
    }
    if (i + 2 >= s.size()) return std::nullopt;
    int hi = hex_value(s[i + 1]);
    int lo = hex_value(s[i + 2]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out += static_cast<char>(hi * 16 + lo);
    i += 2;
  }
  return out;
}

constexpr std::string_view kSchilyXattr = "SCHILY.xattr.";
constexpr std::string_view kLibarchiveXattr = "LIBARCHIVE.xattr.";

// Applies an entry's PAX records in order (so the last record of a key wins, as in every
// reader); the GNU long names were applied before and may not be overridden.
void apply_pax(const PaxRecords& pax, const Where& where, bool have_long_name, bool have_long_link,
               std::string& name, std::string& linkname, uint64_t& size, TarEntry& e) {
  std::map<std::string, Bytes> libarchive_xattrs;
  for (const auto& [key, value] : pax) {
    if (key == "path") {
      if (have_long_name) fail(where, ": both a GNU long name and a PAX path");
      name.assign(value);
    } else if (key == "linkpath") {
      if (have_long_link) fail(where, ": both a GNU long link name and a PAX linkpath");
      linkname.assign(value);
    } else if (key == "size") {
      size = parse_decimal(value, where, key, kMaxEntryBytes);
    } else if (key == "uid") {
      e.uid = static_cast<uint32_t>(parse_decimal(value, where, key, UINT32_MAX));
    } else if (key == "gid") {
      e.gid = static_cast<uint32_t>(parse_decimal(value, where, key, UINT32_MAX));
    } else if (key == "uname") {
      e.uname.assign(value);
    } else if (key == "gname") {
      e.gname.assign(value);
    } else if (key == "mtime") {
      parse_pax_time(value, where, e);
    } else if (key == "SCHILY.devmajor") {
      e.dev_major = static_cast<uint32_t>(parse_decimal(value, where, key, UINT32_MAX));
    } else if (key == "SCHILY.devminor") {
      e.dev_minor = static_cast<uint32_t>(parse_decimal(value, where, key, UINT32_MAX));
    } else if (key.starts_with(kSchilyXattr)) {
      std::string xname(key.substr(kSchilyXattr.size()));
      if (xname.empty()) fail(where, ": PAX record ", key, " names no xattr");
      e.xattrs[xname] = to_bytes(value);
    } else if (key.starts_with(kLibarchiveXattr)) {
      auto xname = url_decode(key.substr(kLibarchiveXattr.size()));
      auto xvalue = base64_decode(value);
      if (!xname || xname->empty() || xname->find('\0') != std::string::npos || !xvalue) {
        fail(where, ": malformed PAX record ", quote(key));
      }
      libarchive_xattrs[*xname] = *xvalue;
    } else if (key.starts_with("GNU.sparse.")) {
      fail(where, ": a GNU sparse file (PAX record ", key, "): sparse files are not supported");
    }
  }
  for (auto& [xname, xvalue] : libarchive_xattrs) {
    auto it = e.xattrs.find(xname);
    if (it == e.xattrs.end()) {
      e.xattrs.emplace(xname, std::move(xvalue));
    } else if (it->second != xvalue) {
      fail(where, ": xattr ", quote(xname),
           " has different values in its SCHILY and LIBARCHIVE records");
    }
  }
}

}  // namespace

std::string_view tar_entry_type_name(TarEntryType type) {
  switch (type) {
    case TarEntryType::regular:
      return "regular file";
    case TarEntryType::directory:
      return "directory";
    case TarEntryType::symlink:
      return "symlink";
    case TarEntryType::hard_link:
      return "hard link";
    case TarEntryType::char_device:
      return "character device";
    case TarEntryType::block_device:
      return "block device";
    case TarEntryType::fifo:
      return "fifo";
  }
  return "unknown";
}

// ---- reader -----------------------------------------------------------------------------------

void TarReader::read_exact(uint8_t* buf, size_t n, const char* what) {
  size_t got = read_fill(source_, buf, n);
  offset_ += got;
  if (got < n)
    fail("the archive is truncated in ", std::string(what), " (at byte ", std::to_string(offset_),
         ")");
}

void TarReader::skip(uint64_t n, Skipped what) {
  if (scratch_.empty()) scratch_.resize(65536);  // once: zeroing it per skip was 10% of a read
  while (n > 0) {
    size_t want = static_cast<size_t>(std::min<uint64_t>(n, scratch_.size()));
    size_t got = source_.read(scratch_.data(), want);
    if (got == 0) {
      fail("the archive is truncated in ",
           what == Skipped::content ? "the content of " : "the padding after ", quote(current_),
           " (at byte ", std::to_string(offset_), ", ", std::to_string(n), " bytes missing)");
    }
    offset_ += got;
    n -= got;
  }
}

void TarReader::finish_entry() {
  if (remaining_ > 0) {
    skip(remaining_, Skipped::content);
    remaining_ = 0;
  }
  if (padding_ > 0) {
    skip(padding_, Skipped::padding);
    padding_ = 0;
  }
}

size_t TarReader::read(uint8_t* buf, size_t n) {
  if (remaining_ == 0 || n == 0) return 0;
  size_t want = static_cast<size_t>(std::min<uint64_t>(n, remaining_));
  size_t got = source_.read(buf, want);
  if (got == 0) {
    fail("the archive is truncated in the content of ", quote(current_), " (at byte ",
         std::to_string(offset_), ", ", std::to_string(remaining_), " bytes missing)");
  }
  offset_ += got;
  remaining_ -= got;
  return got;
}

bool TarReader::next(TarEntry& entry) {
  if (ended_) return false;
  finish_entry();
  std::optional<PaxRecords> pax;
  std::optional<std::string> long_name;
  std::optional<std::string> long_link;
  auto meta_pending = [&] { return pax || long_name || long_link; };
  auto end = [&](uint64_t at) {
    if (meta_pending()) {
      fail("the archive ends (at byte ", std::to_string(at),
           ") after a PAX or GNU long-name header with no entry after it");
    }
    ended_ = true;
    return false;
  };
  Block b{};
  for (;;) {
    uint64_t at = offset_;
    Where where{.header_at = at};
    size_t got = read_fill(source_, b.data(), kBlock);
    offset_ += got;
    if (got == 0) return end(at);
    if (got < kBlock) fail("the archive is truncated in the ", where);
    if (all_zero(b)) {
      got = read_fill(source_, b.data(), kBlock);
      offset_ += got;
      if (got == 0 || (got == kBlock && all_zero(b))) return end(at);
      if (got < kBlock)
        fail("the archive is truncated after the zero block at byte ", std::to_string(at));
      fail("a zero block at byte ", std::to_string(at),
           " is followed by a header: the end of the archive is ambiguous");
    }
    check_checksum(b, where);
    char type = static_cast<char>(b[kTypeflag]);
    uint64_t size = parse_unsigned(b, kSize, "size", where, kMaxEntryBytes);
    uint64_t padded = (size + kBlock - 1) / kBlock * kBlock;

    // A meta header's content, into `data` (checked against its limit before it is read).
    auto read_meta = [&](std::string& data, size_t limit, const char* what) {
      if (size > limit) {
        fail(where, ": ", what, " of ", std::to_string(size), " bytes is over the limit of ",
             std::to_string(limit));
      }
      data.resize(static_cast<size_t>(padded));
      read_exact(reinterpret_cast<uint8_t*>(data.data()), data.size(), what);
      data.resize(static_cast<size_t>(size));
    };
    std::string meta;
    switch (type) {
      case 'x':
        if (pax) fail(where, ": two PAX headers for one entry");
        // The records point into pax_data_, which lives until the next entry.
        read_meta(pax_data_, kMaxPaxHeaderBytes, "a PAX header");
        pax = parse_pax(pax_data_, where);
        continue;
      case 'g':
        read_meta(meta, kMaxPaxHeaderBytes, "a global PAX header");
        for (const auto& [key, value] : parse_pax(meta, where)) {
          if (key != "comment" && key != "charset" && key != "hdrcharset") {
            fail(where, ": a global PAX header sets ", quote(key),
                 ": refused, since readers disagree on it (GNU tar applies it to later entries, "
                 "Go's archive/tar and containerd ignore it)");
          }
        }
        continue;
      case 'L':
      case 'K': {
        auto& slot = type == 'L' ? long_name : long_link;
        if (slot)
          fail(where, ": two GNU long ", (type == 'L' ? "names" : "link names"), " for one entry");
        read_meta(meta, kMaxPathBytes + 1, "a GNU long name");
        slot = meta.substr(0, meta.find('\0'));
        continue;
      }
      default:
        break;
    }

    // An entry.
    Format format = detect_format(b);
    std::string name;
    if (format == Format::ustar || format == Format::star) {
      std::string prefix = field_string(b, format == Format::star ? kStarPrefix : kPrefix);
      name = field_string(b, kName);
      if (!prefix.empty()) name.insert(0, prefix + "/");
    } else {
      name = field_string(b, kName);
    }
    std::string linkname = field_string(b, kLinkname);
    if (long_name) name = *long_name;
    if (long_link) linkname = *long_link;
    Where entry_where{.header_at = at, .name = &name};

    TarEntry e;
    e.mode =
        static_cast<uint32_t>(parse_unsigned(b, kMode, "mode", entry_where, UINT32_MAX)) & 07777;
    e.uid = static_cast<uint32_t>(parse_unsigned(b, kUid, "uid", entry_where, UINT32_MAX));
    e.gid = static_cast<uint32_t>(parse_unsigned(b, kGid, "gid", entry_where, UINT32_MAX));
    e.mtime_sec = parse_number(b, kMtime, "mtime", entry_where);
    bool device = type == '3' || type == '4';
    if (format != Format::v7) {
      e.uname = field_string(b, kUname);
      e.gname = field_string(b, kGname);
      if (device) {
        e.dev_major = static_cast<uint32_t>(
            parse_unsigned(b, kDevmajor, "devmajor", entry_where, UINT32_MAX));
        e.dev_minor = static_cast<uint32_t>(
            parse_unsigned(b, kDevminor, "devminor", entry_where, UINT32_MAX));
      }
    }
    if (pax) {
      apply_pax(*pax, entry_where, long_name.has_value(), long_link.has_value(), name, linkname,
                size, e);
    }
    if (!device) e.dev_major = e.dev_minor = 0;

    bool dir_name = name.ends_with('/');
    switch (type) {
      case '\0':
        e.type = dir_name ? TarEntryType::directory : TarEntryType::regular;
        break;
      case '0':
      case '7':
        if (dir_name) fail(entry_where, ": a regular file with a directory's name");
        e.type = TarEntryType::regular;
        break;
      case '1':
        e.type = TarEntryType::hard_link;
        break;
      case '2':
        e.type = TarEntryType::symlink;
        break;
      case '3':
        e.type = TarEntryType::char_device;
        break;
      case '4':
        e.type = TarEntryType::block_device;
        break;
      case '5':
        e.type = TarEntryType::directory;
        break;
      case '6':
        e.type = TarEntryType::fifo;
        break;
      case 'S':
        fail(entry_where, ": a GNU sparse file (type 'S'): sparse files are not supported");
      case 'D':
        fail(entry_where, ": a GNU incremental dump directory (type 'D') is not supported");
      case 'M':
        fail(entry_where, ": a GNU multi-volume continuation (type 'M') is not supported");
      case 'V':
        fail(entry_where, ": a GNU volume label (type 'V') is not supported");
      default: {
        std::string shown = type >= 0x21 && type < 0x7f ? std::string("'") + type + "'"
                                                        : quote(std::string(1, type));
        fail(entry_where, ": unsupported entry type ", shown);
      }
    }

    if (e.type == TarEntryType::regular) {
      e.size = size;
    } else if (e.type != TarEntryType::directory && size != 0) {
      fail(entry_where, ": a ", std::string(tar_entry_type_name(e.type)), " with a size of ",
           std::to_string(size), " (readers disagree on whether content follows it)");
    }
    e.path = normalize(name, entry_where, "the path");
    if (e.path.empty() && e.type != TarEntryType::directory) {
      fail(entry_where, ": the root is a ", std::string(tar_entry_type_name(e.type)),
           ", not a directory");
    }
    if (e.type == TarEntryType::hard_link) {
      e.link_target = normalize(linkname, entry_where, "the hard link target");
      if (e.link_target.empty()) fail(entry_where, ": a hard link to the root or to nothing");
    } else if (e.type == TarEntryType::symlink) {
      if (linkname.size() > kMaxPathBytes) {
        fail(entry_where, ": a symlink target of ", std::to_string(linkname.size()),
             " bytes is longer than ", std::to_string(kMaxPathBytes));
      }
      e.link_target = linkname;
    }

    // Content that is not the entry's (a directory's size field) is not in the stream.
    remaining_ = e.size;
    padding_ = (kBlock - e.size % kBlock) % kBlock;
    current_ = e.path;
    entry = std::move(e);
    return true;
  }
}

// ---- writer -----------------------------------------------------------------------------------

namespace {

void put_string(Block& b, Field f, std::string_view s) {
  std::memcpy(b.data() + f.offset, s.data(), std::min(s.size(), f.size));
}

// Zero-padded octal digits filling all but the field's last byte, which stays NUL.
void put_octal(Block& b, Field f, uint64_t v) {
  for (size_t i = f.size - 1; i-- > 0;) {
    b[f.offset + i] = static_cast<uint8_t>('0' + (v & 7));
    v >>= 3;
  }
}

void put_checksum(Block& b) {
  std::memset(b.data() + kChecksum.offset, ' ', kChecksum.size);
  uint64_t sum = 0;
  for (uint8_t c : b) sum += c;
  // Six digits, NUL, space: what every tar writes.
  for (size_t i = 6; i-- > 0;) {
    b[kChecksum.offset + i] = static_cast<uint8_t>('0' + (sum & 7));
    sum >>= 3;
  }
  b[kChecksum.offset + 6] = 0;
}

struct Header {
  std::string name;
  std::string prefix;
  uint32_t mode = 0;
  uint64_t uid = 0;
  uint64_t gid = 0;
  uint64_t size = 0;
  uint64_t mtime = 0;
  char type = '0';
  std::string linkname;
  std::string uname;
  std::string gname;
  uint32_t dev_major = 0;
  uint32_t dev_minor = 0;
};

Block encode(const Header& h) {
  Block b{};
  put_string(b, kName, h.name);
  put_octal(b, kMode, h.mode);
  put_octal(b, kUid, h.uid);
  put_octal(b, kGid, h.gid);
  put_octal(b, kSize, h.size);
  put_octal(b, kMtime, h.mtime);
  b[kTypeflag] = static_cast<uint8_t>(h.type);
  put_string(b, kLinkname, h.linkname);
  put_string(b, kMagic, std::string_view("ustar\0", 6));
  put_string(b, kVersion, "00");
  put_string(b, kUname, h.uname);
  put_string(b, kGname, h.gname);
  put_octal(b, kDevmajor, h.dev_major);
  put_octal(b, kDevminor, h.dev_minor);
  put_string(b, kPrefix, h.prefix);
  put_checksum(b);
  return b;
}

// Splits a path into ustar's prefix and name (at a '/', prefix <= 155 bytes, name 1-100 bytes).
bool split_ustar(const std::string& path, std::string& prefix, std::string& name) {
  if (path.size() <= kName.size) {
    prefix.clear();
    name = path;
    return true;
  }
  for (size_t i = std::min(path.size() - 1, kPrefix.size); i > 0; --i) {
    if (path[i] != '/') continue;
    size_t rest = path.size() - i - 1;
    if (rest == 0) continue;  // a directory's trailing '/': the name would be empty
    if (rest > kName.size) return false;
    prefix = path.substr(0, i);
    name = path.substr(i + 1);
    return true;
  }
  return false;
}

std::string pax_record(std::string_view key, std::string_view value) {
  size_t rest = 1 + key.size() + 1 + value.size() + 1;  // " key=value\n"
  size_t total = rest;
  for (;;) {
    size_t next = rest + std::to_string(total).size();
    if (next == total) break;
    total = next;
  }
  std::string r = std::to_string(total);
  r += ' ';
  r += key;
  r += '=';
  r += value;
  r += '\n';
  return r;
}

std::string pax_time(int64_t sec, uint32_t nsec) {
  if (nsec == 0) return std::to_string(sec);
  std::string sign;
  uint64_t whole = 0;
  uint32_t frac = nsec;
  if (sec < 0) {
    // second -2 + 750,000,000 ns is -1.25 s
    sign = "-";
    whole = static_cast<uint64_t>(-(sec + 1));
    frac = 1000000000 - nsec;
  } else {
    whole = static_cast<uint64_t>(sec);
  }
  std::string digits = std::to_string(frac);
  digits.insert(0, 9 - digits.size(), '0');
  while (digits.back() == '0') digits.pop_back();
  return sign + std::to_string(whole) + "." + digits;
}

void append_block(Bytes& out, const Block& b) {
  out.insert(out.end(), b.begin(), b.end());
}

void append_padding(Bytes& out, uint64_t size) {
  out.resize(out.size() + static_cast<size_t>((kBlock - size % kBlock) % kBlock), 0);
}

}  // namespace

void TarWriter::require_complete() const {
  if (remaining_ > 0) {
    fail("writer: ", std::to_string(remaining_), " bytes of the content of ", quote(current_),
         " were not written");
  }
}

void TarWriter::add(const TarEntry& e) {
  if (finished_) fail("writer: add after finish");
  require_complete();
  std::string where_text = "writer: entry " + quote(e.path);
  Where where{.text = &where_text};
  std::string normal = normalize(e.path, where, "the path");
  if (normal != e.path) fail(where, ": the path is not normalised (expected ", quote(normal), ")");
  if (e.path.empty() && e.type != TarEntryType::directory)
    fail(where, ": the root must be a directory");
  if (e.mode & ~07777u) fail(where, ": mode bits outside 07777");
  if (e.mtime_nsec >= 1000000000) fail(where, ": mtime nanoseconds out of range");
  if (e.type != TarEntryType::regular && e.size != 0) {
    fail(where, ": a ", std::string(tar_entry_type_name(e.type)), " cannot have content");
  }
  if (e.size > kMaxEntryBytes) fail(where, ": size above the limit");
  bool device = e.type == TarEntryType::char_device || e.type == TarEntryType::block_device;
  if (device && (e.dev_major > kMaxOctal7 || e.dev_minor > kMaxOctal7)) {
    fail(where, ": device numbers above 07777777");
  }
  if (!device && (e.dev_major != 0 || e.dev_minor != 0)) {
    fail(where, ": device numbers on a ", std::string(tar_entry_type_name(e.type)));
  }
  bool has_link = e.type == TarEntryType::hard_link || e.type == TarEntryType::symlink;
  if (has_link != !e.link_target.empty()) {
    fail(where, (has_link ? ": no link target" : ": a link target on a non-link entry"));
  }
  if (e.type == TarEntryType::hard_link &&
      normalize(e.link_target, where, "the hard link target") != e.link_target) {
    fail(where, ": the hard link target is not normalised");
  }
  if (e.link_target.size() > kMaxPathBytes || e.link_target.find('\0') != std::string::npos) {
    fail(where, ": the link target is too long or holds a NUL");
  }
  for (const std::string& s : {e.uname, e.gname}) {
    if (s.find('\0') != std::string::npos) fail(where, ": a user or group name holds a NUL");
  }
  for (const auto& [xname, value] : e.xattrs) {
    if (xname.empty() || xname.find('=') != std::string::npos ||
        xname.find('\0') != std::string::npos) {
      fail(where, ": xattr name ", quote(xname), " cannot be written (empty, '=' or NUL)");
    }
  }

  Header h;
  std::vector<std::pair<std::string, std::string>> pax;
  std::string hdr_path = e.path.empty()                      ? "./"
                         : e.type == TarEntryType::directory ? e.path + "/"
                                                             : e.path;
  // Values go in as bytes. POSIX asks for hdrcharset=BINARY before values that are not UTF-8,
  // but GNU tar 1.34 warns about that keyword, and every reader keeps such values as bytes
  // without it (Python falls back to surrogate escapes).
  auto pax_string = [&](const char* key, const std::string& value) {
    pax.emplace_back(key, value);
  };
  if (!split_ustar(hdr_path, h.prefix, h.name)) {
    h.name = hdr_path.substr(0, kName.size);
    pax_string("path", hdr_path);
  }
  if (e.link_target.size() <= kLinkname.size) {
    h.linkname = e.link_target;
  } else {
    h.linkname = e.link_target.substr(0, kLinkname.size);
    pax_string("linkpath", e.link_target);
  }
  if (e.size <= kMaxOctal11) {
    h.size = e.size;
  } else {
    pax.emplace_back("size", std::to_string(e.size));
  }
  if (e.uid <= kMaxOctal7) {
    h.uid = e.uid;
  } else {
    pax.emplace_back("uid", std::to_string(e.uid));
  }
  if (e.gid <= kMaxOctal7) {
    h.gid = e.gid;
  } else {
    pax.emplace_back("gid", std::to_string(e.gid));
  }
  if (e.uname.size() <= kUname.size) {
    h.uname = e.uname;
  } else {
    pax_string("uname", e.uname);
  }
  if (e.gname.size() <= kGname.size) {
    h.gname = e.gname;
  } else {
    pax_string("gname", e.gname);
  }
  bool octal_time =
      e.mtime_nsec == 0 && e.mtime_sec >= 0 && static_cast<uint64_t>(e.mtime_sec) <= kMaxOctal11;
  h.mtime =
      static_cast<uint64_t>(std::clamp<int64_t>(e.mtime_sec, 0, static_cast<int64_t>(kMaxOctal11)));
  if (!octal_time) pax.emplace_back("mtime", pax_time(e.mtime_sec, e.mtime_nsec));
  for (const auto& [xname, value] : e.xattrs) {
    pax.emplace_back(std::string(kSchilyXattr) + xname, std::string(as_string(value)));
  }
  h.mode = e.mode;
  h.dev_major = e.dev_major;
  h.dev_minor = e.dev_minor;
  switch (e.type) {
    case TarEntryType::regular:
      h.type = '0';
      break;
    case TarEntryType::hard_link:
      h.type = '1';
      break;
    case TarEntryType::symlink:
      h.type = '2';
      break;
    case TarEntryType::char_device:
      h.type = '3';
      break;
    case TarEntryType::block_device:
      h.type = '4';
      break;
    case TarEntryType::directory:
      h.type = '5';
      break;
    case TarEntryType::fifo:
      h.type = '6';
      break;
  }

  Bytes out = std::move(pending_);
  pending_.clear();
  if (!pax.empty()) {
    std::string records;
    for (const auto& [key, value] : pax) records += pax_record(key, value);
    size_t slash = e.path.rfind('/');
    std::string dir = slash == std::string::npos ? "" : e.path.substr(0, slash + 1);
    std::string base = slash == std::string::npos ? e.path : e.path.substr(slash + 1);
    Header x;
    x.name = (dir + "PaxHeaders/" + base).substr(0, kName.size);
    x.mode = 0644;
    x.size = records.size();
    x.type = 'x';
    append_block(out, encode(x));
    out.insert(out.end(), records.begin(), records.end());
    append_padding(out, records.size());
  }
  append_block(out, encode(h));
  sink_.write(out);
  current_ = e.path;
  remaining_ = e.type == TarEntryType::regular ? e.size : 0;
  if (remaining_ == 0) return;
  // The padding after the content goes out with the next header (fewer, larger writes).
  pending_.assign(static_cast<size_t>((kBlock - e.size % kBlock) % kBlock), 0);
}

void TarWriter::write(ByteView data) {
  if (data.size() > remaining_) {
    fail("writer: more content than the ", std::to_string(remaining_), " bytes left of ",
         quote(current_));
  }
  sink_.write(data);
  remaining_ -= data.size();
}

void TarWriter::finish() {
  if (finished_) return;
  require_complete();
  Bytes out = std::move(pending_);
  pending_.clear();
  out.resize(out.size() + 2 * kBlock, 0);
  sink_.write(out);
  finished_ = true;
  sink_.finish();
}

void fuzz_tar_reader(ByteView input) {
  try {
    MemorySource src(input);
    TarReader reader(src);
    TarEntry e;
    std::array<uint8_t, 4096> buf{};
    while (reader.next(e)) {
      while (reader.read(buf.data(), buf.size()) > 0) {
      }
    }
  } catch (const Error&) {
  }
}

}  // namespace cidrun::image
