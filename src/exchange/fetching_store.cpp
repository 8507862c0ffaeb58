#include "exchange/fetching_store.h"

#include <sys/stat.h>

#include <cstdlib>
#include <nlohmann/json.hpp>

#include "util/fd.h"

namespace cidrun::exchange {
namespace {

std::vector<std::string> split_commas(std::string_view s) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i <= s.size()) {
    size_t j = s.find(',', i);
    if (j == std::string_view::npos) j = s.size();
    std::string item(s.substr(i, j - i));
    while (!item.empty() && item.front() == ' ') item.erase(item.begin());
    while (!item.empty() && item.back() == ' ') item.pop_back();
    if (!item.empty()) out.push_back(item);
    i = j + 1;
  }
  return out;
}

}  // namespace

FetchingStore::FetchingStore(BlockStore& local, std::shared_ptr<SourceSet> sources)
    : local_(local), sources_(std::move(sources)) {}

std::optional<Bytes> FetchingStore::get(const Cid& cid) {
  if (auto b = local_.get(cid)) return b;
  if (sources_->empty()) return std::nullopt;
  // Throws NotFound naming the CID and each source's answer: better than a bare "missing".
  Bytes data = sources_->get(cid);
  local_.put(cid, data);
  return data;
}

std::optional<uint64_t> FetchingStore::size(const Cid& cid) {
  if (auto s = local_.size(cid)) return s;
  if (sources_->empty()) return std::nullopt;
  return get(cid)->size();
}

std::vector<std::string> configured_sources(const Repo& repo,
                                            const std::vector<std::string>& extra_sources) {
  std::vector<std::string> urls = extra_sources;
  if (const char* env = std::getenv("CIDRUN_SOURCES"); env && *env) {
    for (auto& u : split_commas(env)) urls.push_back(u);
  }
  std::string config = repo.path() + "/config.json";
  struct stat st {};
  if (::stat(config.c_str(), &st) == 0) {
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(read_text_file(config));
    } catch (const nlohmann::json::exception& e) {
      throw Error(config + ": " + e.what());
    }
    if (j.contains("sources")) {
      if (!j["sources"].is_array()) throw Error(config + ": \"sources\" must be an array of URLs");
      for (const auto& s : j["sources"]) {
        if (!s.is_string()) throw Error(config + ": \"sources\" must be an array of URLs");
        urls.push_back(s.get<std::string>());
      }
    }
  }
  const char* autodetect = std::getenv("CIDRUN_KUBO_AUTO");
  if (!autodetect || std::string_view(autodetect) != "0") {
    if (std::string kubo = find_local_kubo(); !kubo.empty()) urls.push_back(kubo);
  }
  return urls;
}

std::unique_ptr<FetchingStore> open_store_with_sources(
    Repo& repo, const std::vector<std::string>& extra_sources) {
  return std::make_unique<FetchingStore>(repo.blocks(),
                                         SourceSet::open(configured_sources(repo, extra_sources)));
}

}  // namespace cidrun::exchange
