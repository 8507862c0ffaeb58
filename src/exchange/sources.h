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

// "/ip4/127.0.0.1/tcp/5001" (or /ip6, /dns*) -> "http://127.0.0.1:5001"; "" when not understood.
std::string multiaddr_to_http(std::string_view maddr);

}  // namespace cidrun::exchange
