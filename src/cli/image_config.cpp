#include "cli/image_config.h"

#include "util/error.h"

namespace cidrun::cli {
namespace {

std::vector<std::string> strings(const nlohmann::json& c, const char* key) {
  std::vector<std::string> out;
  if (!c.contains(key) || c[key].is_null()) return out;
  if (!c[key].is_array()) throw Error(std::string("image config ") + key + " is not a list");
  for (const auto& v : c[key]) {
    if (!v.is_string()) throw Error(std::string("image config ") + key + " holds a non-string");
    out.push_back(v.get<std::string>());
  }
  return out;
}

std::string string_of(const nlohmann::json& c, const char* key) {
  if (!c.contains(key) || c[key].is_null()) return "";
  if (!c[key].is_string()) throw Error(std::string("image config ") + key + " is not a string");
  return c[key].get<std::string>();
}

}  // namespace

void apply_image_config(nlohmann::json& spec, const nlohmann::json& image_config,
                        runtime::RunOverrides& o,
                        const std::optional<std::vector<std::string>>& entrypoint) {
  nlohmann::json c = image_config.contains("config") && image_config["config"].is_object()
                         ? image_config["config"]
                         : nlohmann::json::object();
  std::vector<std::string> args = entrypoint ? *entrypoint : strings(c, "Entrypoint");
  if (!o.args.empty()) {
    args.insert(args.end(), o.args.begin(), o.args.end());
  } else if (!entrypoint) {
    auto cmd = strings(c, "Cmd");
    args.insert(args.end(), cmd.begin(), cmd.end());
  }
  if (args.empty()) {
    throw Error("the image names no command (no Entrypoint or Cmd): give one after the image");
  }
  o.args = std::move(args);

  // The image's variables replace the default spec's of the same name; -e applies after.
  nlohmann::json& env = spec["process"]["env"];
  if (!env.is_array()) env = nlohmann::json::array();
  for (const auto& kv : strings(c, "Env")) {
    std::string name = kv.substr(0, kv.find('='));
    bool replaced = false;
    for (auto& e : env) {
      std::string have = e.get<std::string>();
      if (have.substr(0, have.find('=')) == name) {
        e = kv;
        replaced = true;
      }
    }
    if (!replaced) env.push_back(kv);
  }
  // podman's capabilities, not runc's three: images expect root's usual powers (apt-get chowns
  // and changes users). --cap-add/--cap-drop apply after.
  spec["process"]["capabilities"] = runtime::podman_default_capabilities();
  if (o.workdir.empty()) o.workdir = string_of(c, "WorkingDir");
  if (o.user.empty()) o.user = string_of(c, "User");
}

}  // namespace cidrun::cli
