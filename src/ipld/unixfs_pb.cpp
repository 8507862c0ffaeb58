#include "ipld/unixfs_pb.h"

#include "ipld/protobuf.h"
#include "multiformats/cid.h"
#include "util/error.h"

namespace cidrun::unixfs_pb {
namespace {

void put_int64(Bytes& out, uint32_t field, int64_t v) {
  // proto2 int64: negative values are 10-byte two's complement varints (pre-1970 mtimes).
  pb::put_uint(out, field, static_cast<uint64_t>(v));
}

void encode_after_data(const Data& d, Bytes& out) {
  if (d.filesize) pb::put_uint(out, 3, *d.filesize);
  for (uint64_t b : d.blocksizes) pb::put_uint(out, 4, b);
  if (d.hash_type) pb::put_uint(out, 5, *d.hash_type);
  if (d.fanout) pb::put_uint(out, 6, *d.fanout);
  if (d.mode) pb::put_uint(out, 7, *d.mode);
  if (d.mtime) {
    Bytes t;
    put_int64(t, 1, d.mtime->seconds);
    if (d.mtime->nanos > 0) pb::put_fixed32(t, 2, d.mtime->nanos);
    pb::put_bytes(out, 8, t);
  }
}

}  // namespace

Bytes encode(const Data& d) {
  Bytes out;
  pb::put_uint(out, 1, static_cast<uint64_t>(d.type));
  if (d.data) pb::put_bytes(out, 2, *d.data);
  encode_after_data(d, out);
  return out;
}

void encode_split(const Data& d, ByteView chunk, Bytes& head, Bytes& tail) {
  head.clear();
  tail.clear();
  pb::put_uint(head, 1, static_cast<uint64_t>(d.type));
  if (!chunk.empty()) {
    pb::put_tag(head, 2, pb::kLen);
    put_varint(head, chunk.size());
  }
  encode_after_data(d, tail);
}

Data decode(ByteView bytes) {
  std::optional<ByteView> data;
  Data d = decode_without_data(bytes, data);
  if (data) d.data = Bytes(data->begin(), data->end());
  return d;
}

Data decode_without_data(ByteView bytes, std::optional<ByteView>& data) {
  pb::Reader r(bytes);
  Data d;
  data.reset();
  bool have_type = false;
  while (!r.done()) {
    auto [field, wt] = r.tag();
    switch (field) {
      case 1: {
        if (wt != pb::kVarint) throw Error("unixfs: bad Type wire type");
        uint64_t t = r.varint();
        if (t > 5) throw Error("unixfs: unknown node type " + std::to_string(t));
        d.type = static_cast<Type>(t);
        have_type = true;
        break;
      }
      case 2: {
        if (wt != pb::kLen) throw Error("unixfs: bad Data wire type");
        data = r.bytes();  // a repeated field: the last one counts (proto2)
        break;
      }
      case 3:
        if (wt != pb::kVarint) throw Error("unixfs: bad filesize wire type");
        d.filesize = r.varint();
        break;
      case 4:
        if (wt == pb::kVarint) {
          d.blocksizes.push_back(r.varint());
        } else if (wt == pb::kLen) {  // packed encoding, accepted from other writers
          pb::Reader packed(r.bytes());
          while (!packed.done()) d.blocksizes.push_back(packed.varint());
        } else {
          throw Error("unixfs: bad blocksizes wire type");
        }
        break;
      case 5:
        if (wt != pb::kVarint) throw Error("unixfs: bad hashType wire type");
        d.hash_type = r.varint();
        break;
      case 6:
        if (wt != pb::kVarint) throw Error("unixfs: bad fanout wire type");
        d.fanout = r.varint();
        break;
      case 7:
        if (wt != pb::kVarint) throw Error("unixfs: bad mode wire type");
        d.mode = static_cast<uint32_t>(r.varint());
        break;
      case 8: {
        if (wt != pb::kLen) throw Error("unixfs: bad mtime wire type");
        pb::Reader t(r.bytes());
        UnixTime ut;
        while (!t.done()) {
          auto [f, w] = t.tag();
          if (f == 1 && w == pb::kVarint) {
            ut.seconds = static_cast<int64_t>(t.varint());
          } else if (f == 2 && w == pb::kFixed32) {
            ut.nanos = t.fixed32();
            if (ut.nanos == 0 || ut.nanos > 999999999)
              throw Error("unixfs: mtime nanoseconds out of range");
          } else {
            t.skip(w);
          }
        }
        d.mtime = ut;
        break;
      }
      default:
        r.skip(wt);  // proto2: unknown fields are legal and ignored
    }
  }
  if (!have_type) throw Error("unixfs: Data message without Type");
  if (d.fanout && (*d.fanout == 0 || *d.fanout > 1024 || (*d.fanout & (*d.fanout - 1)) != 0)) {
    throw Error("unixfs: HAMT fanout must be a power of two up to 1024");
  }
  return d;
}

uint64_t checked_file_size(const Cid& cid, uint64_t own_bytes,
                           const std::vector<uint64_t>& blocksizes, size_t links,
                           std::optional<uint64_t> filesize) {
  if (blocksizes.size() != links) {
    throw Error(cid.str() + ": file node has " + std::to_string(links) + " links but " +
                std::to_string(blocksizes.size()) + " blocksizes");
  }
  uint64_t sum = own_bytes;
  for (uint64_t bs : blocksizes) {
    if (__builtin_add_overflow(sum, bs, &sum)) throw Error(cid.str() + ": blocksizes overflow");
  }
  if (filesize && *filesize != sum) {
    throw Error(cid.str() + ": filesize " + std::to_string(*filesize) +
                " does not match its data and blocksizes (" + std::to_string(sum) + ")");
  }
  return sum;
}

}  // namespace cidrun::unixfs_pb
