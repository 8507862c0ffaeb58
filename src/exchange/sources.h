// The concrete block sources behind open_source(); see block_source.h for the URL forms.
#pragma once

#include <memory>
#include <string>

#include "exchange/block_source.h"

namespace cidrun::exchange {

// base: "http://HOST:PORT" (no trailing slash).
std::unique_ptr<BlockSource> make_gateway_source(std::string url, std::string base);
std::unique_ptr<BlockSource> make_kubo_source(std::string url, std::string base);
std::unique_ptr<BlockSource> make_car_source(std::string url, const std::string& path);
std::unique_ptr<BlockSource> make_flatfs_source(std::string url, const std::string& dir);
// "/ip4/H/tcp/P/p2p/ID": a libp2p peer asked over bitswap.
std::unique_ptr<BlockSource> make_bitswap_source(std::string url);
// "routing+http://HOST:PORT": providers found through a Delegated Routing V1 server; base is
// "http://HOST:PORT".
std::unique_ptr<BlockSource> make_routing_source(std::string url, std::string base);

// Whether an HTTP source at this URL is asked for coded (compressed) answers when
// CIDRUN_COMPRESS does not say: yes, except for hosts on this machine or a local network
// (loopback, 10/8, 172.16/12, 192.168/16, 169.254/16, IPv6 ::1, fc00::/7, fe80::/10, "localhost"),
// where the link is fast and coding would only cost CPU (a zstd stream codes about 200 MB/s).
bool codes_by_default(std::string_view url);

// "/ip4/127.0.0.1/tcp/5001" (or /ip6, /dns*) -> "http://127.0.0.1:5001"; "" when not understood.
std::string multiaddr_to_http(std::string_view maddr);

}  // namespace cidrun::exchange
