#include "unixfs/chunker.h"
#include "util/error.h"

namespace cidrun::unixfs {

std::unique_ptr<Chunker> make_rabin_chunker(ByteSource&, size_t, size_t, size_t) {
  throw Error("rabin chunker: not implemented yet");
}

}  // namespace cidrun::unixfs
