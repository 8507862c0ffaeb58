#include "runtime/run_options.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>

#include "runtime/capabilities.h"
#include "runtime/seccomp.h"
#include "runtime/spec.h"
#include "runtime/user_lookup.h"
#include "util/error.h"
#include "util/fd.h"

namespace cidrun::runtime {

using nlohmann::json;

int64_t parse_size(const std::string& s_in) {
  std::string s = s_in;
  if (s.empty()) throw Error("empty size");
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (s.size() > 1 && s.back() == 'b' && !std::isdigit(static_cast<unsigned char>(s[s.size() - 2])))
    s.pop_back();
  int64_t mult = 1;
  switch (s.back()) {
    case 'k':
      mult = int64_t{1} << 10;
      break;
    case 'm':
      mult = int64_t{1} << 20;
      break;
    case 'g':
      mult = int64_t{1} << 30;
      break;
    case 't':
      mult = int64_t{1} << 40;
      break;
    case 'b':
      break;
    default:
      if (!std::isdigit(static_cast<unsigned char>(s.back())))
        throw Error("invalid size \"" + s_in + "\"");
      mult = 0;
  }
  if (mult != 0 || s.back() == 'b') s.pop_back();
  if (mult == 0) mult = 1;
  if (s.empty() || s.find_first_not_of("0123456789") != std::string::npos)
    throw Error("invalid size \"" + s_in + "\"");
  return std::stoll(s) * mult;
}

json parse_mount_flag(const std::string& s) {
  std::string type, src, dst;
  std::vector<std::string> opts;
  size_t i = 0;
  while (i <= s.size()) {
    size_t j = s.find(',', i);
    if (j == std::string::npos) j = s.size();
    std::string kv = s.substr(i, j - i);
    i = j + 1;
    if (kv.empty()) continue;
    size_t eq = kv.find('=');
    std::string k = kv.substr(0, eq), v = eq == std::string::npos ? "" : kv.substr(eq + 1);
    if (k == "type")
      type = v;
    else if (k == "src" || k == "source")
      src = v;
    else if (k == "dst" || k == "destination" || k == "target")
      dst = v;
    else if (k == "ro" || k == "readonly")
      opts.emplace_back("ro");
    else if (k == "rw")
      opts.emplace_back("rw");
    else if (k == "bind-propagation")
      opts.push_back(v);
    else
      throw Error(
          std::string("--mount ").append(s).append(": unknown key \"").append(k).append("\""));
  }
  if (type.empty()) type = "bind";
  if (type != "bind" && type != "tmpfs")
    throw Error("--mount " + s + ": type must be bind or tmpfs");
  if (dst.empty() || dst[0] != '/') throw Error("--mount " + s + ": dst must be an absolute path");
  if (type == "bind") {
    if (src.empty()) throw Error("--mount " + s + ": src is required for a bind mount");
    char buf[PATH_MAX];
    if (!::realpath(src.c_str(), buf)) throw_errno("--mount source " + src);
    src = buf;
    opts.insert(opts.begin(), "rbind");
    return {{"destination", dst}, {"type", "bind"}, {"source", src}, {"options", opts}};
  }
  opts.insert(opts.begin(), {"nosuid", "nodev"});
  return {{"destination", dst}, {"type", "tmpfs"}, {"source", "tmpfs"}, {"options", opts}};
}

void apply_process_overrides(json& process, const ProcessOverrides& o,
                             const std::string& user_root) {
  if (!o.args.empty()) process["args"] = o.args;
  if (o.tty) process["terminal"] = true;
  json env = process.value("env", json::array());
  auto set_env = [&](const std::string& entry) {
    std::string name = entry.substr(0, entry.find('='));
    json out = json::array();
    for (const auto& x : env)
      if (!(x.is_string() && x.get<std::string>().rfind(name + "=", 0) == 0)) out.push_back(x);
    out.push_back(entry);
    env = out;
  };
  auto has_env = [&](const std::string& name) {
    for (const auto& x : env)
      if (x.is_string() && x.get<std::string>().rfind(name + "=", 0) == 0) return true;
    return false;
  };
  for (const auto& e : o.env) {
    if (e.empty() || e[0] == '=') throw Error("--env '" + e + "': want NAME=VALUE or NAME");
    std::string entry = e;
    if (e.find('=') == std::string::npos) {
      const char* v = std::getenv(e.c_str());
      if (!v) continue;
      entry = e + "=" + v;
    }
    set_env(entry);
  }
  if (!o.workdir.empty()) {
    if (o.workdir[0] != '/') throw Error("--workdir " + o.workdir + ": must be an absolute path");
    process["cwd"] = o.workdir;
  }
  if (!o.user.empty()) {
    ResolvedUser u =
        user_root.empty() ? resolve_user(o.user, -1) : resolve_user_in(o.user, user_root);
    process["user"]["uid"] = u.uid;
    process["user"]["gid"] = u.gid;
    // The config's own extra groups were for its user; the new user's come from /etc/group.
    process["user"]["additionalGids"] = u.additional_gids;
    if (!u.home.empty() && !has_env("HOME")) set_env("HOME=" + u.home);
  }
  if (!o.additional_gids.empty()) {
    json& extra = process["user"]["additionalGids"];
    if (!extra.is_array()) extra = json::array();
    for (auto g : o.additional_gids) extra.push_back(g);
  }
  if (!env.empty() || process.contains("env")) process["env"] = env;
}

json podman_default_capabilities() {
  json names = {"CAP_CHOWN",   "CAP_DAC_OVERRIDE",     "CAP_FOWNER",    "CAP_FSETID",
                "CAP_KILL",    "CAP_NET_BIND_SERVICE", "CAP_SETFCAP",   "CAP_SETGID",
                "CAP_SETPCAP", "CAP_SETUID",           "CAP_SYS_CHROOT"};
  return {{"bounding", names}, {"effective", names}, {"permitted", names}};
}

namespace {

std::string cap_name(std::string n) {
  for (auto& c : n) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  if (n != "ALL" && n.rfind("CAP_", 0) != 0) n = "CAP_" + n;
  if (n != "ALL" && capability_from_name(n) < 0) throw Error("unknown capability " + n);
  return n;
}

void apply_cap_flags(json& process, const RunOverrides& o) {
  if (o.cap_add.empty() && o.cap_drop.empty()) return;
  json& caps = process["capabilities"];
  if (!caps.is_object()) caps = json::object();
  for (const char* set : {"bounding", "effective", "permitted"}) {
    std::vector<std::string> have;
    if (caps.contains(set) && caps[set].is_array()) {
      for (const auto& c : caps[set]) have.push_back(c.get<std::string>());
    }
    for (const auto& d : o.cap_drop) {
      std::string n = cap_name(d);
      if (n == "ALL") {
        have.clear();
      } else {
        std::erase(have, n);
      }
    }
    for (const auto& a : o.cap_add) {
      std::string n = cap_name(a);
      if (n == "ALL") {
        have = all_capability_names();
      } else if (std::find(have.begin(), have.end(), n) == have.end()) {
        have.push_back(n);
      }
    }
    caps[set] = have;
  }
}

}  // namespace

void apply_run_overrides(json& config, const RunOverrides& o) {
  if (!config.is_object()) throw Error("config must be a JSON object");
  if (!config.contains("process") || !config["process"].is_object())
    config["process"] = json::object();
  if (!config.contains("linux") || !config["linux"].is_object()) config["linux"] = json::object();
  json& process = config["process"];
  std::string root;
  if (config.contains("root") && config["root"].is_object())
    root = config["root"].value("path", "");
  apply_process_overrides(process, o, root);
  apply_cap_flags(process, o);
  if (!o.hostname.empty()) config["hostname"] = o.hostname;
  if (o.read_only) config["root"]["readonly"] = true;
  json& lx = config["linux"];
  if (!o.network.empty()) {
    if (o.network != "none" && o.network != "host")
      throw Error("--network " + o.network + ": want none or host");
    json nss = json::array();
    for (const auto& ns : lx.value("namespaces", json::array()))
      if (ns.value("type", "") != "network") nss.push_back(ns);
    if (o.network == "none") nss.push_back({{"type", "network"}});
    lx["namespaces"] = nss;
    if (o.network == "host") {
      // sysfs shows the namespace that mounted it; with the host's network, bind the host's /sys.
      for (auto& m : config["mounts"])
        if (m.value("type", "") == "sysfs") {
          m["type"] = "bind";
          m["source"] = "/sys";
          m["options"] = {"rbind", "nosuid", "noexec", "nodev", "ro"};
        }
    }
  }
  for (const auto& m : o.mounts) config["mounts"].push_back(parse_mount_flag(m));
  if (!o.memory.empty()) {
    int64_t bytes = parse_size(o.memory);
    lx["resources"]["memory"]["limit"] = bytes;
  }
  if (o.pids_limit != 0) lx["resources"]["pids"]["limit"] = o.pids_limit;
  if (!o.cpus.empty()) {
    char* end = nullptr;
    double cpus = std::strtod(o.cpus.c_str(), &end);
    if (!end || *end || !(cpus > 0) || cpus > 1024)
      throw Error("--cpus " + o.cpus + ": want a number > 0");
    lx["resources"]["cpu"]["period"] = 100000;
    lx["resources"]["cpu"]["quota"] = static_cast<int64_t>(std::llround(cpus * 100000));
  }
  if (o.seccomp == "unconfined") {
    lx.erase("seccomp");
  } else if (!o.seccomp.empty()) {
    lx["seccomp"] = parse_json(read_text_file(o.seccomp), "--seccomp " + o.seccomp);
  } else if (!lx.contains("seccomp")) {
    lx["seccomp"] = default_seccomp_profile(process.value("capabilities", json()));
  }
}

}  // namespace cidrun::runtime
