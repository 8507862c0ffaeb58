#include "cli/roots.h"

#include "util/error.h"
#include "util/quote.h"

namespace cidrun::cli {

std::pair<Cid, std::string> split_root(const Repo& repo, const std::string& text) {
  if (auto c = repo.lookup_name(text)) return {*c, ""};
  if (text.find(':') == std::string::npos) {
    if (auto c = repo.lookup_name(text + ":latest")) return {*c, ""};
  }
  try {
    return unixfs::Dag::split_path(text);
  } catch (const Error& e) {
    bool looks_named = false;
    try {
      Repo::check_name(text);
      looks_named = true;
    } catch (const Error&) {
    }
    if (looks_named) throw Error(quote(text) + " is neither an image name here nor a CID");
    throw;
  }
}

Cid resolve_root(const Repo& repo, const std::string& text) {
  auto [cid, path] = split_root(repo, text);
  if (!path.empty()) throw Error(quote(text) + ": a path is not expected here");
  return cid;
}

}  // namespace cidrun::cli
