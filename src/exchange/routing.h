// The Delegated Routing V1 HTTP API (https://specs.ipfs.tech/routing/http-routing-v1/, IPIP-337
// and IPIP-417 for peer records): provider records, what they mean as block sources, and the
// client that asks a router.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "multiformats/cid.h"

namespace cidrun::exchange::routing {

inline constexpr std::string_view kTransportBitswap = "transport-bitswap";
inline constexpr std::string_view kTransportGateway = "transport-ipfs-gateway-http";
// More records than this in one answer are ignored (a router is a hint, not a trusted party).
inline constexpr size_t kMaxProviders = 256;

// A "peer" record (older "bitswap" records are read as peer records with transport-bitswap).
struct Provider {
  std::string id;  // peer ID text
  std::vector<std::string> addrs;
  std::vector<std::string> protocols;  // empty: unknown, bitswap assumed
};

// Parses a JSON ({"Providers":[...]}) or NDJSON (one record per line) answer. Records of other
// schemas and malformed records are skipped; a body that is not JSON at all throws Error.
std::vector<Provider> parse_providers(std::string_view body, bool ndjson);
std::string provider_json(const Provider& p);  // one record, as a JSON object

// The source URLs a provider can be asked with: "/ip4/H/tcp/P/p2p/ID" for bitswap over TCP,
// "http(s)://H:P" for a trustless gateway (addresses ending in /http, /https or /tls/http).
std::vector<std::string> provider_sources(const Provider& p);

// GET base/routing/v1/providers/{cid}. Throws Error for an unreachable router or an HTTP error
// other than 404 (which means none).
std::vector<Provider> find_providers(const std::string& base, const Cid& cid);

}  // namespace cidrun::exchange::routing
