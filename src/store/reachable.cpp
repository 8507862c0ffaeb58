#include "store/reachable.h"

#include <string_view>

#include "ipld/dagpb.h"
#include "util/error.h"
#include "util/varint.h"

namespace cidrun {

dagpb::Node decode_dagpb_block(const Cid& cid, ByteView block) {
  try {
    return dagpb::decode(block);
  } catch (const Error& e) {
    throw Error("block " + cid.str() + " is not valid dag-pb: " + e.what());
  }
}

std::vector<Cid> block_links(const Cid& cid, ByteView block) {
  std::vector<Cid> out;
  if (cid.codec() != kCodecDagPb) return out;
  dagpb::Node node = decode_dagpb_block(cid, block);
  out.reserve(node.links.size());
  for (auto& l : node.links) out.push_back(std::move(l.hash));
  return out;
}

Cid cid_of_multihash(ByteView multihash) {
  size_t pos = 0;
  auto code = get_varint(multihash, pos);
  auto len = code ? get_varint(multihash, pos) : std::nullopt;
  if (!code || !len || *len != multihash.size() - pos) {
    throw Error("malformed multihash " + to_hex(multihash));
  }
  return Cid::v1(kCodecRaw, *code, multihash.subspan(pos));
}

void walk_reachable(BlockStore& store, const Cid& root, KeySet& seen, IfMissing if_missing,
                    const std::function<bool(const Cid&, ByteView block)>& on_block,
                    const std::function<void(const Cid&)>& on_missing) {
  // An explicit stack: a hostile DAG may be deeper than the C++ stack.
  std::vector<Cid> stack{root};
  while (!stack.empty()) {
    Cid cid = std::move(stack.back());
    stack.pop_back();
    if (!seen.insert(cid.bytes()).second) continue;
    auto block = store.get(cid);
    if (!block) {
      if (on_missing) on_missing(cid);
      if (if_missing == IfMissing::kThrow) throw NotFound("block " + cid.str() + " not found");
      if (if_missing == IfMissing::kStop) return;
      continue;
    }
    if (on_block && !on_block(cid, *block)) continue;
    auto links = block_links(cid, *block);
    // Reversed so that links are visited in their stored order.
    for (auto it = links.rbegin(); it != links.rend(); ++it) stack.push_back(std::move(*it));
  }
}

std::optional<Cid> first_missing(BlockStore& store, const Cid& root) {
  KeySet seen;
  std::optional<Cid> missing;
  walk_reachable(store, root, seen, IfMissing::kStop, nullptr,
                 [&](const Cid& cid) { missing = cid; });
  return missing;
}

}  // namespace cidrun
