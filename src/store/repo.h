// A cidrun repository: the block store plus the state kept beside it.
//   <repo>/blocks/   flatfs block store (kubo layout)
//   <repo>/pins/     pins: recursive/<cid> and direct/<cid>, one empty file each
//   <repo>/images/   image cache (checked-out root filesystems)
//   <repo>/names/    local image names: one file per name holding "<cid>\n"
//   <repo>/tmp/      scratch space on the same filesystem (for atomic renames)
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "store/flatfs.h"

namespace cidrun {

enum class PinType { kRecursive, kDirect };

class Repo {
 public:
  enum class OpenMode {
    kCreate,     // make the repository (and its directories) when it is not there
    kMustExist,  // read-only commands: a missing repository is an error, nothing is made
  };
  static std::unique_ptr<Repo> open(const std::string& path, OpenMode mode = OpenMode::kCreate);

  const std::string& path() const { return path_; }
  FlatfsStore& blocks() { return *blocks_; }
  std::string dir(const std::string& sub) const { return path_ + "/" + sub; }

  // Pins: a pinned CID (recursive: with everything below it) survives `repo gc`.
  void pin(const Cid& cid, PinType type);
  bool unpin(const Cid& cid, PinType type);
  std::vector<std::pair<Cid, PinType>> pins() const;

  // Local names of images ("debian:12", "example/app:v2"): like tags, each names one CID and
  // keeps it (and everything below it) from `repo gc` as a recursive pin would. A name is 1-255
  // characters of [A-Za-z0-9._/:@+-], starting with a letter or digit, and never parses as a
  // CID. set_name replaces an existing name atomically.
  void set_name(const std::string& name, const Cid& cid);
  bool remove_name(const std::string& name);
  std::optional<Cid> lookup_name(const std::string& name) const;
  std::map<std::string, Cid> names() const;
  // Throws Error saying why name is not a valid image name.
  static void check_name(const std::string& name);

 private:
  explicit Repo(std::string path);
  std::string path_;
  std::unique_ptr<FlatfsStore> blocks_;
};

}  // namespace cidrun
