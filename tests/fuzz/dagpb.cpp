// dag-pb blocks and the UnixFS Data message inside them, as every reader decodes them (blocks
// from a pull, a CAR, a flatfs directory). Invariants: the strict dag-pb decoder refuses fields
// out of order or repeated, and its node re-encodes canonically (the block back byte for byte
// unless its varints were padded, which Go and JS accept too); the decoders that hand out views
// agree with the ones that copy; a UnixFS message re-encodes to one that decodes to the same
// fields.
#include "ipld/dagpb.h"
#include "fuzz.h"
#include "ipld/unixfs_pb.h"
#include "util/error.h"

using namespace cidrun;

namespace {

void unixfs_round_trips(ByteView msg) {
  unixfs_pb::Data d;
  try {
    d = unixfs_pb::decode(msg);
  } catch (const Error&) {
    return;
  }
  std::optional<ByteView> view;
  unixfs_pb::Data fields = unixfs_pb::decode_without_data(msg, view);
  FUZZ_CHECK(view.has_value() == d.data.has_value());
  if (view) FUZZ_CHECK(fuzz::same(*view, *d.data));
  FUZZ_CHECK(fuzz::same(unixfs_pb::encode(fields), unixfs_pb::encode([&] {
                          unixfs_pb::Data x = d;
                          x.data.reset();
                          return x;
                        }())));
  Bytes once = unixfs_pb::encode(d);
  FUZZ_CHECK(fuzz::same(unixfs_pb::encode(unixfs_pb::decode(once)), once));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ByteView block = fuzz::bytes_of(data, size);
  // The input as a UnixFS message on its own (the field a FUSE or exporter fast path reads).
  unixfs_round_trips(block);
  dagpb::Node node;
  try {
    node = dagpb::decode(block);
  } catch (const Error&) {
    return 0;
  }
  // Canonical re-encoding: a fixed point that decodes to the same node. The input itself may be
  // longer: a varint with redundant 0x80 continuation bytes is accepted, as the Go and JS dag-pb
  // decoders accept it (kubo serves such blocks); any other difference (field order, repeats)
  // would keep the length, and is refused.
  Bytes canonical = dagpb::encode(node);
  FUZZ_CHECK(fuzz::same(canonical, block) || canonical.size() < block.size());
  dagpb::Node again = dagpb::decode(canonical);
  FUZZ_CHECK(fuzz::same(dagpb::encode(again), canonical));
  FUZZ_CHECK(again.links.size() == node.links.size() && again.data == node.data);
  for (size_t i = 0; i < node.links.size(); ++i) {
    FUZZ_CHECK(again.links[i].hash == node.links[i].hash &&
               again.links[i].name == node.links[i].name &&
               again.links[i].tsize == node.links[i].tsize);
  }
  std::optional<ByteView> view;
  dagpb::Node links_only = dagpb::decode_without_data(block, view);
  FUZZ_CHECK(links_only.links.size() == node.links.size());
  FUZZ_CHECK(view.has_value() == node.data.has_value());
  if (node.data) {
    FUZZ_CHECK(fuzz::same(*view, *node.data));
    unixfs_round_trips(*node.data);
  }
  return 0;
}
