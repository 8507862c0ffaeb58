#include "unixfs/chunker.h"
#include "util/error.h"

namespace cidrun::unixfs {

std::unique_ptr<Chunker> make_buzhash_chunker(ByteSource&) {
  throw Error("buzhash chunker: not implemented yet");
}

}  // namespace cidrun::unixfs
