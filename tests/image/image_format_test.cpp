// The image blocks (docs/IMAGE-FORMAT.md): canonical encodings that decode back to the same
// values, and strict decoders that refuse every other byte string with a clear error.
#include <gtest/gtest.h>

#include "image/format.h"
#include "image/image.h"
#include "ipld/dagpb.h"
#include "ipld/protobuf.h"
#include "store/memstore.h"
#include "util/error.h"

namespace cidrun::image {
namespace {

Attr sample_attr() {
  Attr a;
  a.mode = 04755;
  a.uid = 1000;
  a.gid = 42;
  a.mtime_sec = -86400 * 365;  // before 1970
  a.mtime_nsec = 123456789;
  a.xattrs = {{"security.capability", Bytes{1, 0, 0, 2}}, {"user.empty", Bytes{}}};
  return a;
}

DirMeta sample_meta() {
  DirMeta m;
  m.self = Attr{.mode = 0755};
  MetaEntry f;
  f.name = "file";
  f.attr = sample_attr();
  f.nlink = 2;
  MetaEntry dev;
  dev.name = "null";
  dev.type = EntryType::kCharDevice;
  dev.attr.mode = 0666;
  dev.major = 1;
  dev.minor = 3;
  MetaEntry link;
  link.name = "other";
  link.type = EntryType::kHardlink;
  link.link = "dir/file";
  m.entries = {f, dev, link};
  return m;
}

TEST(ImageFormat, DirMetaRoundTrips) {
  DirMeta m = sample_meta();
  Bytes enc = encode_dir_meta(m);
  DirMeta back = decode_dir_meta(enc);
  ASSERT_TRUE(back.self);
  EXPECT_EQ(*back.self, *m.self);
  ASSERT_EQ(back.entries.size(), 3u);
  EXPECT_EQ(back.entries[0].attr, sample_attr());
  EXPECT_EQ(back.entries[0].nlink, 2u);
  EXPECT_EQ(back.entries[1].type, EntryType::kCharDevice);
  EXPECT_EQ(back.entries[1].major, 1u);
  EXPECT_EQ(back.entries[1].minor, 3u);
  EXPECT_EQ(back.entries[2].type, EntryType::kHardlink);
  EXPECT_EQ(back.entries[2].link, "dir/file");
  EXPECT_EQ(encode_dir_meta(back), enc);
}

TEST(ImageFormat, DefaultsAreOmittedAndModeIsAlwaysWritten) {
  DirMeta m;
  m.self = Attr{};  // mode 0: still written
  Bytes enc = encode_dir_meta(m);
  // field 1 (len 2) { field 1 varint 0 }
  EXPECT_EQ(enc, (Bytes{0x0a, 0x02, 0x08, 0x00}));
}

TEST(ImageFormat, RefusesWhatIsNotCanonical) {
  Bytes enc = encode_dir_meta(sample_meta());
  // A non-minimal varint for the self mode: same value, other bytes.
  DirMeta self_only;
  self_only.self = Attr{.mode = 5};
  Bytes canonical = encode_dir_meta(self_only);
  Bytes padded = {0x0a, 0x03, 0x08, 0x85, 0x00};
  EXPECT_NO_THROW(decode_dir_meta(canonical));
  EXPECT_THROW(decode_dir_meta(padded), Error);
  // Fields out of order: entries before self.
  Bytes swapped;
  Bytes entry;
  pb::put_bytes(entry, 1, as_bytes("a"));
  Bytes attr;
  pb::put_uint(attr, 1, 0644);
  pb::put_bytes(entry, 3, attr);
  pb::put_bytes(swapped, 2, entry);
  pb::put_bytes(swapped, 1, attr);
  EXPECT_THROW(decode_dir_meta(swapped), Error);
  // Truncated.
  EXPECT_THROW(decode_dir_meta(ByteView(enc).first(enc.size() - 1)), Error);
  // An unknown field.
  Bytes unknown = canonical;
  pb::put_uint(unknown, 9, 1);
  EXPECT_THROW(decode_dir_meta(unknown), Error);
}

TEST(ImageFormat, RefusesBadEntries) {
  auto with_entry = [](const MetaEntry& e) {
    DirMeta m;
    m.self = Attr{.mode = 0755};
    m.entries = {e};
    return encode_dir_meta(m);
  };
  MetaEntry e;
  e.attr.mode = 0644;
  for (const char* bad : {"", ".", "..", "a/b"}) {
    e.name = bad;
    EXPECT_THROW(decode_dir_meta(with_entry(e)), Error) << bad;
  }
  e.name = std::string("nul\0x", 5);
  EXPECT_THROW(decode_dir_meta(with_entry(e)), Error);
  e.name = std::string(256, 'x');
  EXPECT_THROW(decode_dir_meta(with_entry(e)), Error);
  e.name = "ok";
  e.attr.mode = 010000;
  EXPECT_THROW(decode_dir_meta(with_entry(e)), Error);
  e.attr.mode = 0644;
  e.attr.mtime_nsec = 1000000000;
  EXPECT_THROW(decode_dir_meta(with_entry(e)), Error);
  e.attr.mtime_nsec = 0;
  e.attr.xattrs = {{"trusted.overlay.opaque", Bytes{'y'}}};
  EXPECT_THROW(decode_dir_meta(with_entry(e)), Error);
  e.attr.xattrs = {{"user.b", {}}, {"user.a", {}}};
  EXPECT_THROW(decode_dir_meta(with_entry(e)), Error);
  e.attr.xattrs = {};
  e.major = 1;  // device numbers on a regular file
  EXPECT_THROW(decode_dir_meta(with_entry(e)), Error);
  e.major = 0;
  e.type = EntryType::kHardlink;  // a hard link without a path
  EXPECT_THROW(decode_dir_meta(with_entry(e)), Error);
  // Unsorted names.
  DirMeta m;
  m.self = Attr{.mode = 0755};
  MetaEntry a;
  a.name = "b";
  MetaEntry b;
  b.name = "a";
  m.entries = {a, b};
  EXPECT_THROW(decode_dir_meta(encode_dir_meta(m)), Error);
  m.entries = {a, a};
  EXPECT_THROW(decode_dir_meta(encode_dir_meta(m)), Error);
}

TEST(ImageFormat, HeaderRoundTripsAndTellsImagesFromUnixfs) {
  ImageHeader h;
  h.files = 5200;
  h.directories = 700;
  h.content_bytes = 193u << 20;
  Bytes enc = encode_header(h);
  auto back = decode_header(enc);
  ASSERT_TRUE(back);
  EXPECT_EQ(back->files, 5200u);
  EXPECT_EQ(back->directories, 700u);
  // A UnixFS Data message (a directory: 08 01) is no image.
  EXPECT_FALSE(decode_header(Bytes{0x08, 0x01}));
  EXPECT_FALSE(decode_header(Bytes{}));
  // Another version is refused by name.
  Bytes v2;
  pb::put_bytes(v2, 1, as_bytes(kImageMagic));
  pb::put_uint(v2, 2, 2);
  try {
    decode_header(v2);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("version 2"), std::string::npos);
  }
}

TEST(ImageFormat, ImageRootNeedsItsThreeLinks) {
  MemoryStore store;
  Cid raw = Cid::of(1, kCodecRaw, as_bytes("{}"));
  Cid pb = Cid::of(1, kCodecDagPb, dagpb::encode(dagpb::Node{}));
  Linked root = put_image_root(store, ImageHeader{}, {raw, 2}, {pb, 0}, {pb, 0}, std::nullopt);
  auto parsed = parse_image_root(root.cid, *store.get(root.cid));
  ASSERT_TRUE(parsed);
  EXPECT_EQ(parsed->config, raw);
  EXPECT_FALSE(parsed->startset);

  dagpb::Node missing;
  missing.data = encode_header(ImageHeader{});
  missing.links.push_back({raw, std::string("config"), 2});
  Bytes b = dagpb::encode(missing);
  EXPECT_THROW(parse_image_root(Cid::of(1, kCodecDagPb, b), b), Error);

  dagpb::Node wrong_codec;
  wrong_codec.data = encode_header(ImageHeader{});
  wrong_codec.links = {
      {pb, std::string("config"), 0}, {pb, std::string("meta"), 0}, {pb, std::string("rootfs"), 0}};
  b = dagpb::encode(wrong_codec);
  EXPECT_THROW(parse_image_root(Cid::of(1, kCodecDagPb, b), b), Error);

  // A plain UnixFS directory is simply not an image.
  dagpb::Node dir;
  dir.data = Bytes{0x08, 0x01};
  b = dagpb::encode(dir);
  EXPECT_FALSE(parse_image_root(Cid::of(1, kCodecDagPb, b), b));
}

TEST(ImageFormat, MetaNodesKeepStructureLinksFirstAndRefuseMixups) {
  DirMeta m;
  m.self = Attr{.mode = 0755};
  dagpb::Node node;
  node.data = encode_dir_meta(m);
  Cid child = Cid::of(1, kCodecDagPb, as_bytes("x"));
  node.links.push_back({raw_alias(child), std::nullopt, 1});
  node.links.push_back({child, std::string("sub"), 10});
  Bytes b = dagpb::encode(node);
  MetaNode parsed = parse_meta_node(Cid::of(1, kCodecDagPb, b), b, MetaNodeKind::kDirectory);
  ASSERT_EQ(parsed.structure.size(), 1u);
  EXPECT_EQ(parsed.structure[0].codec(), kCodecRaw);
  ASSERT_EQ(parsed.subdirs.size(), 1u);
  EXPECT_EQ(parsed.subdirs[0].first, "sub");
  // A page may not carry the directory's own attributes.
  EXPECT_THROW(parse_meta_node(Cid::of(1, kCodecDagPb, b), b, MetaNodeKind::kPage), Error);

  // A structure link after a named one, or a dag-pb structure link, is refused.
  dagpb::Node late = node;
  std::swap(late.links[0], late.links[1]);
  b = dagpb::encode(late);
  EXPECT_THROW(parse_meta_node(Cid::of(1, kCodecDagPb, b), b, MetaNodeKind::kDirectory), Error);
  dagpb::Node pb_structure = node;
  pb_structure.links[0].hash = child;
  b = dagpb::encode(pb_structure);
  EXPECT_THROW(parse_meta_node(Cid::of(1, kCodecDagPb, b), b, MetaNodeKind::kDirectory), Error);
  // A name that is both an entry and a subdirectory.
  DirMeta both = m;
  MetaEntry e;
  e.name = "sub";
  e.attr.mode = 0644;
  both.entries = {e};
  dagpb::Node dup = node;
  dup.data = encode_dir_meta(both);
  b = dagpb::encode(dup);
  EXPECT_THROW(parse_meta_node(Cid::of(1, kCodecDagPb, b), b, MetaNodeKind::kDirectory), Error);
}

}  // namespace
}  // namespace cidrun::image
