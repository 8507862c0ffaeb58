#include "exchange/block_source.h"

#include <sys/stat.h>

#include <algorithm>
#include <cstdlib>

#include "exchange/car_stream.h"
#include "exchange/sources.h"
#include "p2p/multiaddr.h"
#include "util/fd.h"
#include "util/sha256.h"

namespace cidrun::exchange {
namespace {

bool starts_with(std::string_view s, std::string_view p) {
  return s.substr(0, p.size()) == p;
}

std::string strip_slashes(std::string s) {
  while (!s.empty() && s.back() == '/') s.pop_back();
  return s;
}

bool file_exists(const std::string& p) {
  struct stat st {};
  return ::stat(p.c_str(), &st) == 0;
}

// Blocks arrive on many workers at once: sha256_shared hashes two of them together when it can.
bool hashes_to(const Cid& cid, ByteView data) {
  if (cid.hash_code() != kHashSha256) return cid.matches(data);
  Sha256Digest h = sha256_shared(data);
  ByteView d = cid.digest();
  return d.size() == h.size() && std::equal(d.begin(), d.end(), h.begin());
}

}  // namespace

std::optional<ByteView> BlockSource::get_into(const Cid& cid, Bytes& scratch) {
  auto b = get(cid);
  if (!b) return std::nullopt;
  scratch = std::move(*b);
  return ByteView(scratch);
}

bool BlockSource::get_car(const Cid&, DagScope, const CarBlockHandler&) {
  throw Error(url() + " cannot stream CAR files");
}

void verify_block(const std::string& source, const Cid& cid, ByteView data) {
  if (data.size() > kMaxBlockSize) {
    throw SourceError(source + ": block " + cid.str() + " is " + std::to_string(data.size()) +
                      " bytes, over the 2 MiB block limit");
  }
  if (!hashes_to(cid, data)) {
    throw SourceError(source + ": sent bytes that do not hash to " + cid.str());
  }
}

std::string multiaddr_to_http(std::string_view m) {
  // /ip4/H/tcp/P[/http], /ip6/H/tcp/P, /dns|dns4|dns6/H/tcp/P: what kubo writes into repo/api.
  std::vector<std::string> parts;
  size_t i = 0;
  while (i < m.size()) {
    size_t j = m.find('/', i + 1);
    if (j == std::string_view::npos) j = m.size();
    if (m[i] != '/') return "";
    parts.emplace_back(m.substr(i + 1, j - i - 1));
    i = j;
  }
  if (parts.size() < 4 || parts[2] != "tcp") return "";
  std::string host = parts[1];
  if (parts[0] == "ip6") {
    host = "[" + host + "]";
  } else if (parts[0] != "ip4" && parts[0] != "dns" && parts[0] != "dns4" && parts[0] != "dns6") {
    return "";
  }
  return "http://" + host + ":" + parts[3];
}

std::string find_local_kubo() {
  std::string repo;
  if (const char* p = std::getenv("IPFS_PATH"); p && *p) {
    repo = p;
  } else if (const char* h = std::getenv("HOME"); h && *h) {
    repo = std::string(h) + "/.ipfs";
  } else {
    return "";
  }
  std::string api_file = repo + "/api";
  if (!file_exists(api_file)) return "";
  std::string text = read_text_file(api_file);
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  if (starts_with(text, "http://")) return "kubo+" + strip_slashes(text);
  std::string http = multiaddr_to_http(text);
  return http.empty() ? "" : "kubo+" + http;
}

std::unique_ptr<BlockSource> open_source(const std::string& url) {
  if (url == "kubo") {
    std::string found = find_local_kubo();
    if (found.empty())
      throw Error("source 'kubo': no running daemon ($IPFS_PATH/api or ~/.ipfs/api)");
    return open_source(found);
  }
  if (p2p::names_peer(url)) return make_bitswap_source(url);
  if (starts_with(url, "/ip4/") || starts_with(url, "/ip6/") || starts_with(url, "/dns")) {
    std::string http = multiaddr_to_http(url);
    if (http.empty())
      throw Error("source " + url + ": not an API multiaddr like /ip4/127.0.0.1/tcp/5001");
    return make_kubo_source(url, http);
  }
  if (starts_with(url, "routing+http://") || starts_with(url, "routing+https://")) {
    return make_routing_source(url, strip_slashes(url.substr(8)));
  }
  if (starts_with(url, "kubo+http://") || starts_with(url, "kubo+https://")) {
    return make_kubo_source(url, strip_slashes(url.substr(5)));
  }
  if (starts_with(url, "http://") || starts_with(url, "https://")) {
    return make_gateway_source(url, strip_slashes(url));
  }
  if (starts_with(url, "car:")) return make_car_source(url, url.substr(4));
  if (starts_with(url, "flatfs:")) return make_flatfs_source(url, url.substr(7));
  throw Error("unknown block source '" + url +
              "' (use kubo+http://HOST:PORT, http(s)://GATEWAY, /ip4/H/tcp/P/p2p/PEER, "
              "routing+http://ROUTER, "
              "car:PATH or flatfs:DIR)");
}

}  // namespace cidrun::exchange
