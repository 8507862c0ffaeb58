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

// A name as a file name: '/' cannot be in one, so it is written %2F, and '%' as %25.
std::string name_file(const std::string& name) {
  std::string out;
  for (char c : name) {
    if (c == '/') {
      out += "%2F";
    } else if (c == '%') {
      out += "%25";
    } else {
      out += c;
    }
  }
  return out;
}

std::optional<std::string> name_of_file(const std::string& file) {
  std::string out;
  for (size_t i = 0; i < file.size(); ++i) {
    if (file[i] != '%') {
      out += file[i];
      continue;
    }
    std::string code = file.substr(i + 1, 2);
    if (code == "2F") {
      out += '/';
    } else if (code == "25") {
      out += '%';
    } else {
      return std::nullopt;
    }
    i += 2;
  }
  return out;
}

}  // namespace

Repo::Repo(std::string path) : path_(std::move(path)) {}

std::unique_ptr<Repo> Repo::open(const std::string& path, OpenMode mode) {
  bool create = mode == OpenMode::kCreate;
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

void Repo::check_name(const std::string& name) {
  if (name.empty() || name.size() > 255) throw Error("an image name has 1 to 255 characters");
  auto ok = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '/' || c == ':' || c == '@' || c == '+' || c == '-';
  };
  for (char c : name) {
    if (!ok(c)) {
      throw Error("image name '" + name + "' may hold only letters, digits and . _ / : @ + -");
    }
  }
  if (!ok(name[0]) || name[0] == '.' || name[0] == '_' || name[0] == '/' || name[0] == ':' ||
      name[0] == '@' || name[0] == '+' || name[0] == '-') {
    throw Error("image name '" + name + "' must start with a letter or digit");
  }
  try {
    Cid::parse(name);
  } catch (const Error&) {
    return;
  }
  throw Error("image name '" + name + "' would read as a CID");
}

void Repo::set_name(const std::string& name, const Cid& cid) {
  check_name(name);
  std::string d = dir("names");
  make_dirs(d, 0700);
  write_file_atomic(d + "/" + name_file(name), as_bytes(cid.str() + "\n"), /*durable=*/true);
}

bool Repo::remove_name(const std::string& name) {
  check_name(name);
  std::string p = dir("names") + "/" + name_file(name);
  if (::unlink(p.c_str()) == 0) return true;
  if (errno == ENOENT) return false;
  throw_errno("remove name " + p);
}

std::optional<Cid> Repo::lookup_name(const std::string& name) const {
  try {
    check_name(name);
  } catch (const Error&) {
    return std::nullopt;
  }
  std::string p = dir("names") + "/" + name_file(name);
  std::string text;
  try {
    text = read_text_file(p);
  } catch (const Error&) {
    struct stat st {};
    if (::stat(p.c_str(), &st) != 0 && errno == ENOENT) return std::nullopt;
    throw;
  }
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  try {
    return Cid::parse(text);
  } catch (const Error& e) {
    throw Error("name file " + p + " is damaged: " + e.what());
  }
}

std::map<std::string, Cid> Repo::names() const {
  std::map<std::string, Cid> out;
  std::string d = dir("names");
  std::unique_ptr<DIR, int (*)(DIR*)> dp(::opendir(d.c_str()), ::closedir);
  if (!dp) return out;
  while (dirent* e = ::readdir(dp.get())) {
    if (e->d_name[0] == '.') continue;
    auto name = name_of_file(e->d_name);
    if (!name) continue;  // not a name file: a temporary of an interrupted write
    try {
      if (auto cid = lookup_name(*name)) out.emplace(*name, *cid);
    } catch (const Error&) {
      // A damaged name file is reported where it is used, not by listings.
    }
  }
  return out;
}

}  // namespace cidrun
