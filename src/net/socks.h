// SOCKS client handshakes on a connection already open to the proxy: SOCKS5 (RFC 1928) with the
// username/password method (RFC 1929), and SOCKS4 with its 4a extension (the proxy resolves the
// name). Afterwards the connection is a plain byte stream to the origin, for HTTP or for TLS.
// proxy.h says which scheme means what; http_client.cpp is the only caller.
#pragma once

#include <cstdint>
#include <string>

#include "net/conn.h"
#include "net/proxy.h"

namespace cidrun::net {

// Asks proxy p (connected on c) for a stream to host:port, resolving host here first unless p
// resolves names itself. Throws Error with one line naming the proxy (never its credentials):
// a refusal with the proxy's reason, a proxy that is not SOCKS, closes, or does not finish the
// handshake by `deadline` (timeout_ms is only for the message).
void socks_connect(Conn& c, const Proxy& p, const std::string& host, uint16_t port,
                   Clock::time_point deadline, long timeout_ms);

}  // namespace cidrun::net
