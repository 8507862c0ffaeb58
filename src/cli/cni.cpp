#include "cli/cni.h"

#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdlib>
#include <sstream>

#include "util/error.h"
#include "util/log.h"
#include "util/subprocess.h"

namespace cidrun::cli::cni {
namespace {

using nlohmann::json;

// The spec's rule for network names and container ids.
bool valid_name(const std::string& s) {
  if (s.empty() || !std::isalnum(static_cast<unsigned char>(s[0]))) return false;
  for (char c : s)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '.' && c != '-')
      return false;
  return true;
}

// "1.0.0" -> {1, 0, 0}; anything else -> {-1, -1, -1}.
std::array<int, 3> version_of(const std::string& v) {
  std::array<int, 3> out{-1, -1, -1};
  std::istringstream in(v);
  char dot = 0;
  if (!(in >> out[0] >> dot >> out[1]) || dot != '.') return {-1, -1, -1};
  out[2] = 0;
  if (in >> dot) {
    if (dot != '.' || !(in >> out[2])) return {-1, -1, -1};
  }
  return out;
}

bool is_executable_file(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(path.c_str(), X_OK) == 0;
}

std::string join(const std::vector<std::string>& v, const char* sep) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : sep) + s;
  return out;
}

std::string find_plugin(const NetworkList& net, const std::string& type,
                        const std::vector<std::string>& dirs) {
  for (const auto& d : dirs) {
    std::string p = d;
    p.append("/").append(type);
    if (is_executable_file(p)) return p;
  }
  throw Error("network " + net.name + ": plugin " + type + " not found in " +
              (dirs.empty() ? std::string("an empty CNI_PATH") : join(dirs, ":")));
}

// The configuration one plugin reads on stdin (spec: "Deriving execution configuration from
// plugin configuration").
json plugin_config(const NetworkList& net, const json& plugin, const Attachment& a,
                   const json* prev_result) {
  json conf = plugin;
  conf["cniVersion"] = net.cni_version;
  conf["name"] = net.name;
  if (prev_result && !prev_result->is_null()) conf["prevResult"] = *prev_result;
  json rc = json::object();
  if (auto caps = plugin.find("capabilities"); caps != plugin.end() && caps->is_object()) {
    for (const auto& [cap, on] : caps->items()) {
      if (on == true && a.runtime_config.contains(cap)) rc[cap] = a.runtime_config[cap];
    }
  }
  if (!rc.empty()) conf["runtimeConfig"] = rc;
  return conf;
}

// The one-line reason a plugin gives: its error object (spec: "Error"), else its stderr.
std::string failure_text(const ProgramResult& r) {
  try {
    json e = json::parse(r.out);
    std::string msg = e.value("msg", "");
    std::string details = e.value("details", "");
    if (!msg.empty()) return details.empty() || details == msg ? msg : msg + ": " + details;
  } catch (const json::exception&) {
  }
  std::string err = r.err;
  while (!err.empty() && (err.back() == '\n' || err.back() == ' ')) err.pop_back();
  if (size_t nl = err.rfind('\n'); nl != std::string::npos) err = err.substr(nl + 1);
  if (!err.empty()) return err;
  return "exited with status " + std::to_string(r.exit_code);
}

json invoke(const NetworkList& net, const json& plugin, const Attachment& a, const char* command,
            const json* prev_result) {
  std::string type = plugin.at("type").get<std::string>();
  std::string path = find_plugin(net, type, a.plugin_dirs);
  ProgramRun run;
  run.path = path;
  run.args = {path};
  run.env =
      environment_with({std::string("CNI_COMMAND=") + command, "CNI_CONTAINERID=" + a.container_id,
                        "CNI_NETNS=" + a.netns, "CNI_IFNAME=" + a.ifname,
                        "CNI_PATH=" + join(a.plugin_dirs, ":"), "CNI_ARGS="});
  run.input = plugin_config(net, plugin, a, prev_result).dump();
  log::debug("cni: " + std::string(command) + " " + type + " " + run.input);
  ProgramResult r;
  const auto started = std::chrono::steady_clock::now();
  try {
    r = run_program(run);
  } catch (const Error& e) {
    throw Error("network " + net.name + ": plugin " + type + ": " + e.what());
  }
  log::debug("cni: " + std::string(command) + " " + type + " took " +
             std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(
                                std::chrono::steady_clock::now() - started)
                                .count()) +
             " ms");
  if (r.exit_code != 0) {
    throw Error("network " + net.name + ": plugin " + type + " " + command + ": " +
                failure_text(r));
  }
  if (std::string(command) != "ADD") return nullptr;
  try {
    return json::parse(r.out);
  } catch (const json::exception&) {
    throw Error("network " + net.name + ": plugin " + type + " ADD printed no JSON result");
  }
}

// A plugin's "type" names its executable in CNI_PATH: a file name, never a path.
void check_plugin_type(const json& plugin, const std::string& source) {
  if (!plugin.is_object() || !plugin.contains("type") || !plugin["type"].is_string())
    throw Error(source + ": every plugin needs a \"type\"");
  std::string type = plugin["type"].get<std::string>();
  if (type.empty() || type.find('/') != std::string::npos || type == "." || type == "..")
    throw Error(source + ": plugin type \"" + type + "\" must be a file name");
}

}  // namespace

NetworkList parse_network_list(const std::string& text, const std::string& source) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {
    throw Error(source + ": invalid JSON: " + e.what());
  }
  if (!j.is_object()) throw Error(source + ": not a JSON object");
  NetworkList n;
  n.source = source;
  n.name = j.value("name", "");
  if (!valid_name(n.name))
    throw Error(source + ": \"name\" must be letters, digits, '_', '.' or '-' (got \"" + n.name +
                "\")");
  n.cni_version = j.value("cniVersion", "");
  auto v = version_of(n.cni_version);
  // 0.3.0 brought the result format (interfaces, ips) that every later version keeps.
  if (v[0] < 0 || (v[0] == 0 && v[1] < 3))
    throw Error(source + ": cniVersion \"" + n.cni_version +
                "\" is not supported (0.3.0 or newer)");
  if (!j.contains("plugins") || !j["plugins"].is_array() || j["plugins"].empty())
    throw Error(source + ": \"plugins\" must be a non-empty array (a .conflist)");
  for (const auto& p : j["plugins"]) check_plugin_type(p, source);
  n.plugins = j["plugins"];
  return n;
}

bool has_capability(const NetworkList& net, const std::string& capability) {
  for (const auto& p : net.plugins) {
    auto caps = p.find("capabilities");
    if (caps != p.end() && caps->is_object() && caps->value(capability, false)) return true;
  }
  return false;
}

std::vector<std::string> default_plugin_dirs() {
  std::vector<std::string> dirs;
  if (const char* env = std::getenv("CNI_PATH"); env && *env) {
    std::string s = env;
    size_t start = 0;
    while (start <= s.size()) {
      size_t end = s.find(':', start);
      if (end == std::string::npos) end = s.size();
      if (end > start) dirs.push_back(s.substr(start, end - start));
      start = end + 1;
    }
    return dirs;
  }
  return {"/usr/lib/cni", "/opt/cni/bin", "/usr/libexec/cni"};
}

void check_plugins(const NetworkList& net, const std::vector<std::string>& dirs) {
  for (const auto& p : net.plugins) find_plugin(net, p.at("type").get<std::string>(), dirs);
}

json add(const NetworkList& net, const Attachment& a) {
  json result = nullptr;
  for (const auto& p : net.plugins) result = invoke(net, p, a, "ADD", &result);
  return result;
}

void del(const NetworkList& net, const Attachment& a, const json& prev_result) {
  // Before 0.4.0 DEL carried no previous result.
  auto v = version_of(net.cni_version);
  const bool with_result = v[0] > 0 || v[1] >= 4;
  std::string first_error;
  for (auto it = net.plugins.rbegin(); it != net.plugins.rend(); ++it) {
    try {
      invoke(net, *it, a, "DEL", with_result ? &prev_result : nullptr);
    } catch (const Error& e) {
      if (first_error.empty()) first_error = e.what();
    }
  }
  if (!first_error.empty()) throw Error(first_error);
}

}  // namespace cidrun::cli::cni
