// What `pull` does with a source's bytes: response heads (interim ones included), bodies framed
// by Content-Length, chunked coding or the connection's end, error bodies kept for messages,
// through http::Client over a real socket (fuzz/loopback_peer.h). The three ways a body is taken
// (collected, into a reused buffer, streamed to a callback) are all used. Invariants: a
// successful body never exceeds the limit asked for, and a collected body reports its size.
#include "fuzz.h"
#include "loopback_peer.h"
#include "net/http_client.h"

using namespace cidrun;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static fuzz::LoopbackPeer peer;
  static Bytes reused;
  peer.answer_with(fuzz::text_of(data, size));
  http::Client client(http::ClientOptions{.proxy = net::ProxyConfig()});
  http::Request q;
  q.url = "http://127.0.0.1:" + std::to_string(peer.port()) + "/ipfs/bafkqaaa?format=raw";
  q.connect_timeout_ms = 2000;
  q.head_timeout_ms = 2000;
  q.total_timeout_ms = 4000;
  q.max_body = 64 * 1024;
  uint64_t streamed = 0;
  switch (size % 3) {
    case 0:
      break;
    case 1:
      q.body_buffer = &reused;
      break;
    default:
      q.on_body = [&](ByteView b) {
        streamed += b.size();
        return true;
      };
  }
  http::Response r = client.perform(q);
  if (r.ok()) {
    FUZZ_CHECK(r.body_size <= q.max_body || q.on_body);
    if (!q.on_body && !q.body_buffer) FUZZ_CHECK(r.body.size() == r.body_size);
  }
  (void)r.describe();
  return 0;
}
