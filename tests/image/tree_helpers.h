// What the image layer's tests build trees from: a file inode whose content is stored in a store.
#pragma once

#include <algorithm>
#include <string>

#include "image/builder.h"
#include "image/tree.h"
#include "unixfs/chunker.h"

namespace cidrun::image::testing {

inline InodePtr file_with(BlockStore& store, const std::string& content,
                          const Attr& a = Attr{.mode = 0644}) {
  InodePtr n = make_inode(Kind::kFile, a);
  size_t pos = 0;
  unixfs::ByteSource src(
      [&](uint8_t* buf, size_t len) {
        size_t k = std::min(len, content.size() - pos);
        std::copy_n(content.data() + pos, k, buf);
        pos += k;
        return k;
      },
      "test", content.size());
  n->content = store_file_content(store, src);
  return n;
}

}  // namespace cidrun::image::testing
