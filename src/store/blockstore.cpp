#include "store/blockstore.h"

#include "util/error.h"

namespace cidrun {

void BlockStore::put_verified(const Cid& cid, ByteView data) {
  if (!cid.matches(data)) throw Error("block " + cid.str() + ": data does not match its hash");
  if (cid.is_identity()) return;  // identity blocks live inside their CID
  put(cid, data);
}

}  // namespace cidrun
