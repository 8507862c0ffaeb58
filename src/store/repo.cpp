#include "store/repo.h"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <memory>

#include "util/error.h"
#include "util/fd.h"

namespace cidrun {
namespace {

const char* pin_dir(PinType t) {
  return t == PinType::kRecursive ? "pins/recursive" : "pins/direct";
}

}  // namespace

Repo::Repo(std::string path) : path_(std::move(path)) {}

std::unique_ptr<Repo> Repo::open(const std::string& path, bool create) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    if (errno != ENOENT || !create) throw_errno("repository " + path);
  } else if (!S_ISDIR(st.st_mode)) {
    throw Error("repository " + path + " is not a directory");
  }
  std::unique_ptr<Repo> r(new Repo(path));
  if (create) {
    for (const char* sub : {"blocks", "pins/recursive", "pins/direct", "images", "tmp"}) {
      make_dirs(path + "/" + sub, 0700);
    }
  }
  r->blocks_ = std::make_unique<FlatfsStore>(path + "/blocks", create);
  return r;
}

void Repo::pin(const Cid& cid, PinType type) {
  std::string d = dir(pin_dir(type));
  make_dirs(d, 0700);
  write_file_atomic(d + "/" + cid.str(), ByteView(), /*durable=*/true);
}

bool Repo::unpin(const Cid& cid, PinType type) {
  std::string p = dir(pin_dir(type)) + "/" + cid.str();
  if (::unlink(p.c_str()) == 0) return true;
  if (errno == ENOENT) return false;
  throw_errno("unpin " + p);
}

std::vector<std::pair<Cid, PinType>> Repo::pins() const {
  std::vector<std::pair<Cid, PinType>> out;
  for (PinType t : {PinType::kRecursive, PinType::kDirect}) {
    std::string d = dir(pin_dir(t));
    std::unique_ptr<DIR, int (*)(DIR*)> dp(::opendir(d.c_str()), ::closedir);
    if (!dp) continue;
    while (dirent* e = ::readdir(dp.get())) {
      if (e->d_name[0] == '.') continue;
      try {
        out.emplace_back(Cid::parse(e->d_name), t);
      } catch (const Error&) {
        // A stray file in the pins directory is not a pin.
      }
    }
  }
  return out;
}

}  // namespace cidrun
