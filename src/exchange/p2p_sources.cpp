// Block sources of the IPFS network: a libp2p peer spelled as a multiaddr
// (/ip4/H/tcp/P/p2p/12D3KooW..., asked over bitswap), and the providers a delegated router names
// (routing+http://HOST).
#include <mutex>
#include <unordered_set>

#include "exchange/bitswap.h"
#include "exchange/routing.h"
#include "exchange/source_set.h"
#include "exchange/sources.h"
#include "p2p/multiaddr.h"
#include "util/log.h"

namespace cidrun::exchange {
namespace {

class BitswapSource : public BlockSource {
 public:
  BitswapSource(std::string url, p2p::Multiaddr addr)
      : url_(std::move(url)), addr_(std::move(addr)) {}
  const std::string& url() const override { return url_; }
  std::optional<Bytes> get(const Cid& cid) override {
    Bytes scratch;
    auto v = get_into(cid, scratch);
    if (!v) return std::nullopt;
    return scratch;
  }
  std::optional<ByteView> get_into(const Cid& cid, Bytes& scratch) override {
    return BitswapNode::client().get(addr_, cid, scratch);
  }
  void cancel(const Cid& cid) override { BitswapNode::client().cancel(*addr_.peer, cid); }
  void want_soon(std::span<const Cid> cids) override {
    try {
      BitswapNode::client().want_ahead(addr_, cids);
    } catch (const Error& e) {
      log::debug("bitswap: " + url_ + ": " + e.what());  // a hint: get_into will ask again
    }
  }

 private:
  std::string url_;
  p2p::Multiaddr addr_;
};

}  // namespace

std::unique_ptr<BlockSource> make_bitswap_source(std::string url) {
  p2p::Multiaddr addr = p2p::Multiaddr::parse(url);
  if (!addr.has_tcp || !addr.peer)
    throw Error("source " + url + ": a bitswap peer needs /ip4|ip6|dns*/HOST/tcp/PORT/p2p/ID");
  return std::make_unique<BitswapSource>(std::move(url), std::move(addr));
}

}  // namespace cidrun::exchange

// ---- routing+http://HOST: providers found through a delegated router --------------------------

namespace cidrun::exchange {
namespace {

// Asks the router for providers of the first CID it is asked for (a pull's root) and then uses
// them together (a SourceSet: scheduled, hedged); a CID none of them has sends it back to the
// router for that CID (a subtree held by other nodes). Lookups are bounded so that a DAG no one
// has does not become one router request per block.
class RoutingSource : public BlockSource {
 public:
  RoutingSource(std::string url, std::string base) : url_(std::move(url)), base_(std::move(base)) {}
  const std::string& url() const override { return url_; }
  std::optional<Bytes> get(const Cid& cid) override {
    Bytes scratch;
    auto v = get_into(cid, scratch);
    if (!v) return std::nullopt;
    if (v->data() != scratch.data()) return Bytes(v->begin(), v->end());
    scratch.resize(v->size());
    return scratch;
  }
  void cancel(const Cid& cid) override {
    if (auto set = current()) set->cancel(cid);
  }
  void want_soon(std::span<const Cid> cids) override {
    if (auto set = current()) set->want_soon(cids);
  }
  std::optional<ByteView> get_into(const Cid& cid, Bytes& scratch) override {
    auto set = current();
    if (!set) {
      discover(cid);
      set = current();
      if (!set) return std::nullopt;
    }
    try {
      return set->get_into(cid, scratch);
    } catch (const NotFound&) {
      if (!discover(cid)) return std::nullopt;
    }
    try {
      return current()->get_into(cid, scratch);
    } catch (const NotFound&) {
      return std::nullopt;
    }
  }

 private:
  static constexpr size_t kMaxLookups = 64;

  std::shared_ptr<SourceSet> current() {
    std::lock_guard l(mu_);
    return providers_;
  }

  // Returns whether new providers were found.
  bool discover(const Cid& cid) {
    {
      std::lock_guard l(mu_);
      if (looked_up_.size() >= kMaxLookups || !looked_up_.insert(cid.str()).second) return false;
    }
    std::vector<routing::Provider> found;
    try {
      found = routing::find_providers(base_, cid);
    } catch (const Error& e) {
      throw SourceError(url_ + ": " + e.what());
    }
    std::lock_guard l(mu_);
    size_t before = urls_.size();
    for (const auto& p : found) {
      for (auto& u : routing::provider_sources(p)) {
        if (std::find(urls_.begin(), urls_.end(), u) == urls_.end()) urls_.push_back(u);
      }
    }
    log::debug("routing: " + std::to_string(found.size()) + " providers of " + cid.str() +
               " from " + base_);
    if (urls_.size() == before) return false;
    std::vector<std::unique_ptr<BlockSource>> sources;
    for (const auto& u : urls_) {
      try {
        sources.push_back(open_source(u));
      } catch (const Error& e) {
        log::debug("routing: skipping provider " + u + ": " + e.what());
      }
    }
    if (sources.empty()) return false;
    providers_ = std::make_shared<SourceSet>(std::move(sources));
    return true;
  }

  std::string url_, base_;
  std::mutex mu_;
  std::shared_ptr<SourceSet> providers_;
  std::vector<std::string> urls_;
  std::unordered_set<std::string> looked_up_;
};

}  // namespace

std::unique_ptr<BlockSource> make_routing_source(std::string url, std::string base) {
  return std::make_unique<RoutingSource>(std::move(url), std::move(base));
}

}  // namespace cidrun::exchange
