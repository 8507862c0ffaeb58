// dag-pb (multicodec 0x70): the block format of UnixFS.
// Spec: https://ipld.io/specs/codecs/dag-pb/spec/ — canonical form: Links (field 2) before Data
// (field 1); inside a link Hash, Name, Tsize; links sorted by Name bytes (done by the builder).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "multiformats/cid.h"
#include "util/bytes.h"

namespace cidrun::dagpb {

struct Link {
  Cid hash;
  std::optional<std::string> name;  // Go writes Name="" on file links: keep "absent" vs "empty"
  std::optional<uint64_t> tsize;
};

struct Node {
  std::vector<Link> links;
  std::optional<Bytes> data;
};

Bytes encode(const Node& node);
// Appends the encoding of one link (field 2) to out.
void encode_link(Bytes& out, const Link& link);
// Encoded size of one link field, framing included (used for HAMT "block" size estimation).
size_t link_field_size(const Link& link);

// Strict decoder per the spec: field order, wire types, no unknown fields, no duplicate Data,
// Hash required and a valid CID. Throws cidrun::Error for any other byte string.
Node decode(ByteView block);
// The same decoder, leaving Node::data unset: the Data field, when there is one, is returned in
// `data` as a view into block (a reader that copies file data straight from a block file needs
// to know where the data lies, not the bytes).
Node decode_without_data(ByteView block, std::optional<ByteView>& data);

}  // namespace cidrun::dagpb
