#include "ipld/dagpb.h"

#include "ipld/protobuf.h"
#include "util/error.h"

namespace cidrun::dagpb {
namespace {

Bytes link_body(const Link& link) {
  Bytes body;
  pb::put_bytes(body, 1, link.hash.bytes());
  if (link.name) pb::put_bytes(body, 2, as_bytes(*link.name));
  if (link.tsize) pb::put_uint(body, 3, *link.tsize);
  return body;
}

Link decode_link(ByteView data) {
  pb::Reader r(data);
  Link link;
  uint32_t last = 0;
  bool have_hash = false;
  while (!r.done()) {
    auto [field, wt] = r.tag();
    if (field <= last) throw Error("dag-pb: link fields out of order or repeated");
    last = field;
    if (field == 1 && wt == pb::kLen) {
      link.hash = Cid::from_bytes(r.bytes());
      have_hash = true;
    } else if (field == 2 && wt == pb::kLen) {
      ByteView n = r.bytes();
      link.name = std::string(as_string(n));
    } else if (field == 3 && wt == pb::kVarint) {
      link.tsize = r.varint();
    } else {
      throw Error("dag-pb: unexpected field " + std::to_string(field) + " in link");
    }
  }
  if (!have_hash) throw Error("dag-pb: link without Hash");
  return link;
}

}  // namespace

void encode_link(Bytes& out, const Link& link) {
  Bytes body = link_body(link);
  pb::put_bytes(out, 2, body);
}

size_t link_field_size(const Link& link) {
  size_t body = pb::len_field_size(1, link.hash.bytes().size());
  if (link.name) body += pb::len_field_size(2, link.name->size());
  if (link.tsize) body += 1 + varint_size(*link.tsize);
  return pb::len_field_size(2, body);
}

Bytes encode(const Node& node) {
  Bytes out;
  for (const auto& l : node.links) encode_link(out, l);
  if (node.data) pb::put_bytes(out, 1, *node.data);
  return out;
}

Node decode_without_data(ByteView block, std::optional<ByteView>& data) {
  pb::Reader r(block);
  Node node;
  data.reset();
  while (!r.done()) {
    auto [field, wt] = r.tag();
    if (field == 2 && wt == pb::kLen) {
      if (data) throw Error("dag-pb: Links after Data");
      node.links.push_back(decode_link(r.bytes()));
    } else if (field == 1 && wt == pb::kLen) {
      if (data) throw Error("dag-pb: duplicate Data");
      data = r.bytes();
    } else {
      throw Error("dag-pb: unexpected field " + std::to_string(field));
    }
  }
  return node;
}

Node decode(ByteView block) {
  std::optional<ByteView> data;
  Node node = decode_without_data(block, data);
  if (data) node.data = Bytes(data->begin(), data->end());
  return node;
}

}  // namespace cidrun::dagpb
