// The UnixFS Data message carried in dag-pb's Data field (UnixFS 1.5, with mode and mtime).
// Spec: https://specs.ipfs.tech/unixfs/ — fields are written in field-number order, as Go does.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "util/bytes.h"

namespace cidrun {
class Cid;
}

namespace cidrun::unixfs_pb {

enum class Type : uint8_t {
  kRaw = 0,
  kDirectory = 1,
  kFile = 2,
  kMetadata = 3,
  kSymlink = 4,
  kHamtShard = 5
};

struct UnixTime {
  int64_t seconds = 0;
  uint32_t nanos = 0;  // 0 = absent; 1..999999999 otherwise
  friend bool operator==(const UnixTime&, const UnixTime&) = default;
};

struct Data {
  Type type = Type::kRaw;
  std::optional<Bytes> data;
  std::optional<uint64_t> filesize;
  std::vector<uint64_t> blocksizes;
  std::optional<uint64_t> hash_type;
  std::optional<uint64_t> fanout;
  std::optional<uint32_t> mode;
  std::optional<UnixTime> mtime;
};

Bytes encode(const Data& d);
// Writes the message with `data` given separately, so a leaf can be encoded around its chunk
// without copying the chunk: returns the bytes before the chunk in `head` and after it in `tail`.
void encode_split(const Data& d, ByteView chunk, Bytes& head, Bytes& tail);

// Decodes; throws cidrun::Error on malformed input, an unknown Type, fanout that is not a power
// of two up to 1024, or nanoseconds out of range.
Data decode(ByteView bytes);
// The same decoder, leaving Data::data unset: the Data field is returned in `data` as a view into
// bytes (the last one when a message repeats it, as protobuf and decode() take it).
Data decode_without_data(ByteView bytes, std::optional<ByteView>& data);

// The bytes a file node holds by its own account: its own data (own_bytes) plus its children's
// blocksizes. Checks what every reader must before trusting them (cat, get's copier, stat): one
// blocksize per link, no overflow, and the sum equal to filesize when the node states one.
// Throws Error naming cid otherwise.
uint64_t checked_file_size(const Cid& cid, uint64_t own_bytes,
                           const std::vector<uint64_t>& blocksizes, size_t links,
                           std::optional<uint64_t> filesize);

inline constexpr uint64_t kHashMurmur3 = 0x22;

}  // namespace cidrun::unixfs_pb
