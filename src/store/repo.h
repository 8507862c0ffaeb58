// A cidrun repository: the block store plus the state kept beside it.
//   <repo>/blocks/   flatfs block store (kubo layout)
//   <repo>/pins/     pins: recursive/<cid> and direct/<cid>, one empty file each
//   <repo>/images/   image cache (checked-out root filesystems)
//   <repo>/tmp/      scratch space on the same filesystem (for atomic renames)
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "store/flatfs.h"

namespace cidrun {

enum class PinType { kRecursive, kDirect };

class Repo {
 public:
  // Opens the repo at path; creates it when create is true and it does not exist.
  static std::unique_ptr<Repo> open(const std::string& path, bool create = true);

  const std::string& path() const { return path_; }
  FlatfsStore& blocks() { return *blocks_; }
  std::string dir(const std::string& sub) const { return path_ + "/" + sub; }

  // Pins: a pinned CID (recursive: with everything below it) survives `repo gc`.
  void pin(const Cid& cid, PinType type);
  bool unpin(const Cid& cid, PinType type);
  std::vector<std::pair<Cid, PinType>> pins() const;

 private:
  explicit Repo(std::string path);
  std::string path_;
  std::unique_ptr<FlatfsStore> blocks_;
};

}  // namespace cidrun
