// What a Trustless Gateway request asks for, parsed and checked before any block is read.
// Spec: https://specs.ipfs.tech/http-gateways/trustless-gateway/ (and IPIP-412 for the CAR
// content type parameters). Pure functions: the HTTP server only moves strings in and out.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "exchange/block_source.h"
#include "multiformats/cid.h"

namespace cidrun::gateway {

enum class Format { kRaw, kCar };

// entity-bytes=from:to, inclusive; negative values count from the end; to = nullopt for "*".
struct ByteRange {
  int64_t from = 0;
  std::optional<int64_t> to;
};

struct TrustlessRequest {
  Cid cid;
  std::string path;  // below cid, without leading '/'; empty for the root
  Format format = Format::kRaw;
  exchange::DagScope scope = exchange::DagScope::kAll;
  std::optional<ByteRange> entity_bytes;
  bool dups = false;               // CAR with duplicate blocks (dups=y) instead of each block once
  bool format_from_query = false;  // ?format= decided (else Accept did: send Content-Location)
};

struct Rejection {
  int status;
  std::string message;
};

using QueryLookup = std::function<std::optional<std::string>(std::string_view name)>;

// url_path: the percent-decoded path ("/ipfs/{cid}[/{path}]"); accept: the Accept header ("" when
// absent). Returns the request or the HTTP error the spec asks for (400, 406, 501).
std::variant<TrustlessRequest, Rejection> parse_request(std::string_view url_path,
                                                        const QueryLookup& query,
                                                        std::string_view accept);

// "from:to" with the spec's forms ("0:*", "-1024:*", "499:-1000"); nullopt when malformed.
std::optional<ByteRange> parse_entity_bytes(std::string_view text);

// The byte interval [first, last] a range selects in an entity of `size` bytes, or nullopt when
// it selects nothing (the response is then the root block alone, as the spec says).
std::optional<std::pair<uint64_t, uint64_t>> resolve_range(const ByteRange& r, uint64_t size);

// An HTTP Range header (RFC 9110 14.2) over a body of `size` bytes. Only the bytes unit and a
// single range are honoured: several ranges, another unit or a malformed field mean the whole
// body (200), which the RFC allows.
struct HttpRange {
  enum class Kind { kWhole, kPart, kUnsatisfiable };
  Kind kind = Kind::kWhole;
  uint64_t first = 0;  // kPart: the bytes [first, last]
  uint64_t last = 0;
};
HttpRange parse_http_range(std::string_view header, uint64_t size);

}  // namespace cidrun::gateway
