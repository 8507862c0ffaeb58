#include "runtime/spec.h"

#include <filesystem>
#include <limits>
#include <set>

#include "runtime/capabilities.h"
#include "runtime/rlimits.h"
#include "util/error.h"
#include "util/fd.h"
#include "util/json_depth.h"

namespace cidrun::runtime {
namespace {

using nlohmann::json;

const char* type_name(const json& v) {
  switch (v.type()) {
    case json::value_t::null:
      return "null";
    case json::value_t::object:
      return "an object";
    case json::value_t::array:
      return "an array";
    case json::value_t::string:
      return "a string";
    case json::value_t::boolean:
      return "a boolean";
    case json::value_t::number_integer:
    case json::value_t::number_unsigned:
      return "an integer";
    case json::value_t::number_float:
      return "a number";
    default:
      return "an unknown type";
  }
}

// Field access that names the path of the field in every error, so a user can find the mistake.
class Reader {
 public:
  Reader(const json& obj, std::string where) : obj_(obj), where_(std::move(where)) {}

  [[noreturn]] void fail(const std::string& key, const std::string& msg) const {
    throw Error(where_ + (key.empty() ? "" : "." + key) + ": " + msg);
  }
  const json* get(const std::string& key) const {
    auto it = obj_.find(key);
    if (it == obj_.end() || it->is_null()) return nullptr;
    return &*it;
  }
  const json* typed(const std::string& key, json::value_t t, const char* want) const {
    const json* v = get(key);
    if (!v) return nullptr;
    bool ok = v->type() == t || (t == json::value_t::number_integer && v->is_number_integer());
    if (!ok) fail(key, std::string("must be ") + want + ", not " + type_name(*v));
    return v;
  }
  std::string str(const std::string& key, const std::string& def = "") const {
    const json* v = typed(key, json::value_t::string, "a string");
    return v ? v->get<std::string>() : def;
  }
  bool boolean(const std::string& key, bool def = false) const {
    const json* v = typed(key, json::value_t::boolean, "a boolean");
    return v ? v->get<bool>() : def;
  }
  std::optional<int64_t> integer(const std::string& key, int64_t lo, int64_t hi) const {
    const json* v = typed(key, json::value_t::number_integer, "an integer");
    if (!v) return std::nullopt;
    int64_t x = v->is_number_unsigned()
                    ? static_cast<int64_t>(std::min<uint64_t>(v->get<uint64_t>(),
                                                              std::numeric_limits<int64_t>::max()))
                    : v->get<int64_t>();
    if (x < lo || x > hi)
      fail(key, "out of range (" + std::to_string(lo) + ".." + std::to_string(hi) + ")");
    return x;
  }
  uint32_t u32(const std::string& key, uint32_t def = 0) const {
    auto v = integer(key, 0, std::numeric_limits<uint32_t>::max());
    return v ? static_cast<uint32_t>(*v) : def;
  }
  // A uid or gid: 4294967295 is (uid_t)-1, which setresuid(2), setgroups(2) and chown(2) take
  // as "leave unchanged", so a process asked to run as it would stay root.
  uint32_t id(const std::string& key) const {
    return static_cast<uint32_t>(integer(key, 0, kMaxId).value_or(0));
  }
  // An element of an array of integers, in [lo, hi].
  int64_t element(const std::string& key, size_t i, const json& v, int64_t lo, int64_t hi) const {
    std::string k = key + "[" + std::to_string(i) + "]";
    if (!v.is_number_integer()) fail(k, std::string("must be an integer, not ") + type_name(v));
    bool in = v.is_number_unsigned() ? v.get<uint64_t>() <= static_cast<uint64_t>(hi)
                                     : v.get<int64_t>() >= lo && v.get<int64_t>() <= hi;
    if (!in) fail(k, "out of range (" + std::to_string(lo) + ".." + std::to_string(hi) + ")");
    return v.get<int64_t>();
  }
  static constexpr int64_t kMaxId = std::numeric_limits<uint32_t>::max() - 1;
  const json* object(const std::string& key) const {
    return typed(key, json::value_t::object, "an object");
  }
  const json* array(const std::string& key) const {
    return typed(key, json::value_t::array, "an array");
  }
  std::vector<std::string> strings(const std::string& key) const {
    std::vector<std::string> out;
    const json* a = array(key);
    if (!a) return out;
    for (size_t i = 0; i < a->size(); ++i) {
      if (!(*a)[i].is_string())
        fail(key + "[" + std::to_string(i) + "]",
             std::string("must be a string, not ") + type_name((*a)[i]));
      out.push_back((*a)[i].get<std::string>());
    }
    return out;
  }
  Reader sub(const json& v, const std::string& key) const { return Reader(v, where_ + "." + key); }
  const std::string& where() const { return where_; }

 private:
  const json& obj_;
  std::string where_;
};

void require_absolute(const Reader& r, const std::string& key, const std::string& path) {
  if (path.empty() || path[0] != '/') r.fail(key, "must be an absolute path: \"" + path + "\"");
}

std::vector<IdMapping> parse_mappings(const Reader& linux, const std::string& key) {
  std::vector<IdMapping> out;
  const json* a = linux.array(key);
  if (!a) return out;
  for (size_t i = 0; i < a->size(); ++i) {
    std::string k = key + "[" + std::to_string(i) + "]";
    if (!(*a)[i].is_object()) linux.fail(k, "must be an object");
    Reader m = linux.sub((*a)[i], k);
    IdMapping map;
    if (!m.get("containerID") || !m.get("hostID") || !m.get("size"))
      m.fail("", "containerID, hostID and size are required");
    map.container_id = m.id("containerID");
    map.host_id = m.id("hostID");
    map.size = m.u32("size");
    // The kernel refuses a range past the last id only when the map is written, after the
    // container's namespaces exist: say so while the config is read.
    if (map.size == 0) m.fail("size", "must be at least 1");
    uint64_t ids = uint64_t{Reader::kMaxId} + 1;
    if (map.container_id + uint64_t{map.size} > ids || map.host_id + uint64_t{map.size} > ids)
      m.fail("size", "the range goes past the last id (4294967294)");
    out.push_back(map);
  }
  return out;
}

std::vector<HookSpec> parse_hook_list(const Reader& hooks, const std::string& key) {
  std::vector<HookSpec> out;
  const json* a = hooks.array(key);
  if (!a) return out;
  for (size_t i = 0; i < a->size(); ++i) {
    std::string k = key + "[" + std::to_string(i) + "]";
    if (!(*a)[i].is_object()) hooks.fail(k, "must be an object");
    Reader h = hooks.sub((*a)[i], k);
    HookSpec hook;
    hook.path = h.str("path");
    require_absolute(h, "path", hook.path);
    hook.args = h.strings("args");
    hook.env = h.strings("env");
    auto t = h.integer("timeout", 1, 24 * 3600);
    if (h.get("timeout") && !t) h.fail("timeout", "must be a positive integer");
    hook.timeout = t ? static_cast<int>(*t) : 0;
    out.push_back(std::move(hook));
  }
  return out;
}

const std::set<std::string>& namespace_types() {
  static const std::set<std::string> t{"pid", "network", "mount",  "ipc",
                                       "uts", "user",    "cgroup", "time"};
  return t;
}

}  // namespace

const NamespaceSpec* Spec::find_namespace(const std::string& type) const {
  for (const auto& ns : namespaces)
    if (ns.type == type) return &ns;
  return nullptr;
}

ProcessSpec parse_process(const json& process, const std::string& where, bool args_required) {
  if (!process.is_object()) throw Error(where + ": must be an object");
  Reader p(process, where);
  ProcessSpec out;
  out.terminal = p.boolean("terminal");
  if (const json* cs = p.object("consoleSize")) {
    Reader c = p.sub(*cs, "consoleSize");
    // struct winsize holds unsigned shorts.
    out.console_rows = static_cast<unsigned>(c.integer("height", 0, 65535).value_or(0));
    out.console_cols = static_cast<unsigned>(c.integer("width", 0, 65535).value_or(0));
  }
  if (const json* u = p.object("user")) {
    Reader ur = p.sub(*u, "user");
    out.uid = ur.id("uid");
    out.gid = ur.id("gid");
    if (ur.get("umask")) out.umask = static_cast<uint32_t>(*ur.integer("umask", 0, 0777));
    if (const json* g = ur.array("additionalGids")) {
      for (size_t i = 0; i < g->size(); ++i) {
        out.additional_gids.push_back(
            static_cast<uint32_t>(ur.element("additionalGids", i, (*g)[i], 0, Reader::kMaxId)));
      }
    }
    if (ur.get("username")) ur.str("username");  // accepted (Windows only in the spec)
  }
  out.args = p.strings("args");
  if (args_required && out.args.empty()) p.fail("args", "required: at least the program to run");
  if (!out.args.empty() && out.args[0].empty()) p.fail("args[0]", "must not be empty");
  out.env = p.strings("env");
  for (size_t i = 0; i < out.env.size(); ++i)
    if (out.env[i].find('=') == std::string::npos)
      p.fail("env[" + std::to_string(i) + "]", "must be NAME=VALUE: \"" + out.env[i] + "\"");
  out.cwd = p.str("cwd", "/");
  require_absolute(p, "cwd", out.cwd);
  out.no_new_privileges = p.boolean("noNewPrivileges");
  if (p.get("oomScoreAdj"))
    out.oom_score_adj = static_cast<int>(*p.integer("oomScoreAdj", -1000, 1000));
  if (const json* caps = p.object("capabilities")) {
    Reader c = p.sub(*caps, "capabilities");
    // A name no kernel knows is an error (the spec: a value that cannot be mapped to a kernel
    // interface); one newer than this kernel is skipped when applied (capabilities.h).
    for (const char* set : {"bounding", "effective", "inheritable", "permitted", "ambient"}) {
      for (const std::string& name : c.strings(set))
        if (capability_from_name(name) < 0) c.fail(set, "unknown capability \"" + name + "\"");
    }
    out.capabilities = *caps;
  }
  if (const json* rl = p.array("rlimits")) {
    for (size_t i = 0; i < rl->size(); ++i) {
      std::string k = "rlimits[" + std::to_string(i) + "]";
      if (!(*rl)[i].is_object()) p.fail(k, "must be an object");
      Reader r = p.sub((*rl)[i], k);
      const std::string type = r.str("type");
      if (type.empty()) r.fail("type", "required");
      if (rlimit_from_name(type) < 0) r.fail("type", "unknown rlimit \"" + type + "\"");
      if (!r.get("hard") || !r.get("soft")) r.fail("", "hard and soft are required");
      r.integer("hard", 0, std::numeric_limits<int64_t>::max());
      r.integer("soft", 0, std::numeric_limits<int64_t>::max());
    }
    out.rlimits = *rl;
  }
  return out;
}

Spec parse_spec(const json& config, const std::string& where) {
  if (!config.is_object()) throw Error(where + ": must be a JSON object");
  Reader top(config, where);
  Spec s;
  s.raw = config;
  s.oci_version = top.str("ociVersion");
  if (s.oci_version.empty()) top.fail("ociVersion", "required");
  if (s.oci_version.rfind("1.", 0) != 0)
    top.fail("ociVersion", "unsupported version \"" + s.oci_version + "\" (want 1.x)");

  const json* root = top.object("root");
  if (!root) top.fail("root", "required");
  Reader r = top.sub(*root, "root");
  s.root_path = r.str("path");
  if (s.root_path.empty()) r.fail("path", "required");
  s.root_readonly = r.boolean("readonly");

  const json* process = top.object("process");
  if (!process) top.fail("process", "required");
  s.process = parse_process(*process, where + ".process");

  s.hostname = top.str("hostname");
  s.domainname = top.str("domainname");

  if (const json* mounts = top.array("mounts")) {
    for (size_t i = 0; i < mounts->size(); ++i) {
      std::string k = "mounts[" + std::to_string(i) + "]";
      if (!(*mounts)[i].is_object()) top.fail(k, "must be an object");
      Reader m = top.sub((*mounts)[i], k);
      MountSpec ms;
      ms.destination = m.str("destination");
      require_absolute(m, "destination", ms.destination);
      ms.type = m.str("type");
      ms.source = m.str("source");
      ms.options = m.strings("options");
      bool is_bind = ms.type == "bind";
      for (const auto& o : ms.options) is_bind = is_bind || o == "bind" || o == "rbind";
      if (is_bind) {
        if (ms.source.empty()) m.fail("source", "required for a bind mount");
      } else if (ms.type.empty()) {
        m.fail("type", "required (or options bind/rbind)");
      }
      s.mounts.push_back(std::move(ms));
    }
  }

  if (const json* hooks = top.object("hooks")) {
    Reader h = top.sub(*hooks, "hooks");
    s.hooks.prestart = parse_hook_list(h, "prestart");
    s.hooks.create_runtime = parse_hook_list(h, "createRuntime");
    s.hooks.create_container = parse_hook_list(h, "createContainer");
    s.hooks.start_container = parse_hook_list(h, "startContainer");
    s.hooks.poststart = parse_hook_list(h, "poststart");
    s.hooks.poststop = parse_hook_list(h, "poststop");
  }
  if (const json* a = top.object("annotations")) {
    for (const auto& [k, v] : a->items())
      if (!v.is_string()) top.fail("annotations." + k, "must be a string");
    s.annotations = *a;
  }

  const json* linux_ptr = top.object("linux");
  if (!linux_ptr) return s;
  Reader lx = top.sub(*linux_ptr, "linux");
  if (const json* nss = lx.array("namespaces")) {
    std::set<std::string> seen;
    for (size_t i = 0; i < nss->size(); ++i) {
      std::string k = "namespaces[" + std::to_string(i) + "]";
      if (!(*nss)[i].is_object()) lx.fail(k, "must be an object");
      Reader n = lx.sub((*nss)[i], k);
      NamespaceSpec ns{n.str("type"), n.str("path")};
      if (!namespace_types().count(ns.type))
        n.fail("type", "unknown namespace type \"" + ns.type +
                           "\" (want pid, network, mount, ipc, uts, user, cgroup or time)");
      if (!seen.insert(ns.type).second) n.fail("type", "duplicate namespace \"" + ns.type + "\"");
      if (!ns.path.empty()) require_absolute(n, "path", ns.path);
      s.namespaces.push_back(ns);
    }
  }
  s.uid_mappings = parse_mappings(lx, "uidMappings");
  s.gid_mappings = parse_mappings(lx, "gidMappings");
  const NamespaceSpec* user = s.find_namespace("user");
  if ((!s.uid_mappings.empty() || !s.gid_mappings.empty()) && !user)
    lx.fail("uidMappings", "mappings need a user namespace in linux.namespaces");
  if (user && user->path.empty() && (s.uid_mappings.empty() || s.gid_mappings.empty()))
    lx.fail("uidMappings", "a new user namespace needs uidMappings and gidMappings");
  if (!s.hostname.empty() && !s.has_namespace("uts"))
    top.fail("hostname", "setting a hostname needs a uts namespace");

  if (const json* devs = lx.array("devices")) {
    for (size_t i = 0; i < devs->size(); ++i) {
      std::string k = "devices[" + std::to_string(i) + "]";
      if (!(*devs)[i].is_object()) lx.fail(k, "must be an object");
      Reader d = lx.sub((*devs)[i], k);
      DeviceSpec dev;
      dev.path = d.str("path");
      require_absolute(d, "path", dev.path);
      std::string t = d.str("type");
      if (t != "c" && t != "b" && t != "u" && t != "p") d.fail("type", "must be c, b, u or p");
      dev.type = t[0] == 'u' ? 'c' : t[0];
      if (dev.type != 'p' && (!d.get("major") || !d.get("minor")))
        d.fail("", "major and minor are required for type " + t);
      // mknod(2) takes the kernel's 32-bit device number: 12 bits of major, 20 of minor. A
      // larger major fails there (EINVAL), after the namespaces exist: say so while reading.
      dev.major = d.integer("major", 0, 0xfff).value_or(0);
      dev.minor = d.integer("minor", 0, 0xfffff).value_or(0);
      dev.file_mode = d.integer("fileMode", 0, 07777).value_or(0666);
      dev.uid = d.id("uid");
      dev.gid = d.id("gid");
      s.devices.push_back(dev);
    }
  }
  s.masked_paths = lx.strings("maskedPaths");
  s.readonly_paths = lx.strings("readonlyPaths");
  for (const auto& p : s.masked_paths) require_absolute(lx, "maskedPaths", p);
  for (const auto& p : s.readonly_paths) require_absolute(lx, "readonlyPaths", p);
  s.rootfs_propagation = lx.str("rootfsPropagation");
  if (!s.rootfs_propagation.empty()) {
    static const std::set<std::string> ok{"private", "rprivate", "slave",      "rslave",
                                          "shared",  "rshared",  "unbindable", "runbindable"};
    if (!ok.count(s.rootfs_propagation))
      lx.fail("rootfsPropagation", "unknown propagation \"" + s.rootfs_propagation + "\"");
  }
  s.cgroups_path = lx.str("cgroupsPath");
  if (const json* res = lx.object("resources")) s.resources = *res;
  if (const json* sc = lx.object("seccomp")) s.seccomp = *sc;
  if (const json* sy = lx.object("sysctl")) {
    for (const auto& [k, v] : sy->items())
      if (!v.is_string()) lx.fail("sysctl." + k, "must be a string");
    s.sysctl = *sy;
  }
  return s;
}

json parse_json(const std::string& text, const std::string& where) {
  if (json_nesting(text) > kMaxJsonNesting) {
    throw Error(where + ": invalid JSON: nested deeper than " + std::to_string(kMaxJsonNesting) +
                " levels");
  }
  try {
    return json::parse(text);
  } catch (const json::exception& e) {
    // Not only parse_error: a number too big for a double ("1E400") is out_of_range.406.
    // nlohmann's message starts with "[json.exception.parse_error.101] parse error at line 1..."
    std::string msg = e.what();
    if (auto p = msg.find("] "); p != std::string::npos) msg = msg.substr(p + 2);
    throw Error(where + ": invalid JSON: " + msg);
  }
}

Spec parse_spec_text(const std::string& text, const std::string& where) {
  return parse_spec(parse_json(text, where), where);
}

Spec load_bundle_spec(const std::string& bundle_dir) {
  std::string path = bundle_dir + "/config.json";
  std::string text;
  try {
    text = read_text_file(path);
  } catch (const Error& e) {
    throw Error("cannot read the bundle's config: " + std::string(e.what()));
  }
  Spec s = parse_spec_text(text, path);
  std::filesystem::path root(s.root_path);
  if (root.is_relative()) root = std::filesystem::absolute(bundle_dir) / root;
  s.root_path = root.lexically_normal().string();
  if (s.root_path.size() > 1 && s.root_path.back() == '/') s.root_path.pop_back();
  return s;
}

}  // namespace cidrun::runtime
