#include "runtime/state.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>

#include "runtime/spec.h"
#include "util/error.h"
#include "util/fd.h"

namespace cidrun::runtime {

using nlohmann::json;

json ContainerState::to_json() const {
  return {{"id", id},
          {"pid", pid},
          {"pid_start_time", pid_start_time},
          {"bundle", bundle},
          {"rootfs", rootfs},
          {"created", created},
          {"owner", owner},
          {"annotations", annotations},
          {"cgroup", cgroup},
          {"paused", paused},
          {"remove_on_delete", remove_on_delete},
          {"has_own_netns", has_own_netns},
          {"shared_root_mount_id", shared_root_mount_id}};
}

ContainerState ContainerState::from_json(const json& j) {
  ContainerState s;
  s.id = j.at("id").get<std::string>();
  s.pid = j.at("pid").get<pid_t>();
  s.pid_start_time = j.value("pid_start_time", uint64_t{0});
  s.bundle = j.value("bundle", "");
  s.rootfs = j.value("rootfs", "");
  s.created = j.value("created", "");
  s.owner = j.value("owner", "");
  s.annotations = j.value("annotations", json::object());
  if (j.contains("cgroup")) s.cgroup = j["cgroup"];
  s.paused = j.value("paused", false);
  s.remove_on_delete = j.value("remove_on_delete", std::vector<std::string>{});
  s.has_own_netns = j.value("has_own_netns", false);
  s.shared_root_mount_id = j.value("shared_root_mount_id", uint64_t{0});
  return s;
}

void validate_container_id(const std::string& id) {
  bool ok = !id.empty() && id.size() <= 1024 && id != "." && id != "..";
  for (char c : id)
    ok = ok && (std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '+' || c == '-' ||
                c == '.');
  if (!ok) throw Error("invalid container id \"" + id + "\" (allowed: letters, digits, _+-.)");
}

bool StateStore::exists(const std::string& id) const {
  struct stat st;
  return ::stat((dir(id) + "/state.json").c_str(), &st) == 0;
}

UniqueFd StateStore::create_dir(const std::string& id) const {
  validate_container_id(id);
  if (::geteuid() != 0) {
    // A rootless state root may sit in a shared place (/tmp): one another user made first could
    // be read or swapped under us.
    make_dirs(root_, 0711);
    struct stat st {};
    if (::lstat(root_.c_str(), &st) != 0) throw_errno("stat state root " + root_);
    if (!S_ISDIR(st.st_mode)) throw Error("state root " + root_ + " is not a directory");
    if (st.st_uid != ::geteuid()) {
      throw Error("state root " + root_ + " belongs to uid " + std::to_string(st.st_uid) +
                  ", not to this user");
    }
  }
  // The state root usually exists: make it only when opening it says it is missing.
  UniqueFd root = lock_root();
  if (!root.valid()) {
    make_dirs(root_, 0711);
    root = lock_root();
    if (!root.valid()) throw_errno("open state root " + root_);
  }
  int rc = ::mkdir(dir(id).c_str(), 0711);
  int err = rc < 0 ? errno : 0;
  if (err == EEXIST && remove_if_abandoned_locked(id)) {
    rc = ::mkdir(dir(id).c_str(), 0711);
    err = rc < 0 ? errno : 0;
  }
  if (err == EEXIST) throw Error("container \"" + id + "\" already exists");
  if (rc < 0) {
    errno = err;
    throw_errno("create state directory " + dir(id));
  }
  UniqueFd held(::open(dir(id).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!held.valid() || ::flock(held.get(), LOCK_EX | LOCK_NB) != 0) {
    throw_errno("lock state directory " + dir(id));
  }
  return held;
}

// The root's lock is held from a create's mkdir to its lock of the new directory, and while a
// directory is judged abandoned: another process never sees a directory just made, not yet
// locked, and takes it for one a killed create left.
UniqueFd StateStore::lock_root() const {
  UniqueFd root(::open(root_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (root.valid() && ::flock(root.get(), LOCK_EX) != 0) throw_errno("lock state root " + root_);
  return root;
}

bool StateStore::remove_if_abandoned(const std::string& id) const {
  validate_container_id(id);
  UniqueFd root = lock_root();
  return root.valid() && remove_if_abandoned_locked(id);
}

bool StateStore::remove_if_abandoned_locked(const std::string& id) const {
  UniqueFd d(::open(dir(id).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW));
  if (!d.valid() || ::flock(d.get(), LOCK_EX | LOCK_NB) != 0) return false;
  struct stat st {};
  if (::fstatat(d.get(), "state.json", &st, AT_SYMLINK_NOFOLLOW) == 0) return false;
  remove(id);
  return true;
}

ContainerState StateStore::load(const std::string& id) const {
  validate_container_id(id);
  std::string text;
  try {
    text = read_text_file(dir(id) + "/state.json");
  } catch (const Error&) {
    throw Error("container \"" + id + "\" does not exist");
  }
  try {
    return ContainerState::from_json(parse_json(text, "state of container \"" + id + "\""));
  } catch (const json::exception& e) {
    throw Error("state of container \"" + id + "\" is corrupt: " + e.what());
  }
}

void StateStore::save(const ContainerState& st) const {
  std::string text = st.to_json().dump();
  write_file_atomic(dir(st.id) + "/state.json",
                    ByteView(reinterpret_cast<const uint8_t*>(text.data()), text.size()), false,
                    0600);
}

void StateStore::save_config(const std::string& id, const json& config) const {
  std::string text = config.dump();
  write_file_atomic(dir(id) + "/config.json",
                    ByteView(reinterpret_cast<const uint8_t*>(text.data()), text.size()), false,
                    0600);
}

json StateStore::load_config(const std::string& id) const {
  std::string path = dir(id) + "/config.json";
  return parse_json(read_text_file(path), path);
}

std::vector<std::string> StateStore::list() const {
  std::vector<std::string> out;
  DIR* d = ::opendir(root_.c_str());
  if (!d) return out;
  while (dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    if (exists(name)) out.push_back(name);
  }
  ::closedir(d);
  std::sort(out.begin(), out.end());
  return out;
}

void StateStore::remove(const std::string& id) const {
  validate_container_id(id);
  std::error_code ec;
  std::filesystem::remove_all(dir(id), ec);
  if (ec && ::geteuid() != 0) {
    // Rootless: overlayfs leaves its work/work directory with mode 000, which only a
    // privileged user can enter; ours to open up, then remove.
    std::error_code walk;
    namespace fs = std::filesystem;
    for (auto it = fs::recursive_directory_iterator(dir(id), walk); !walk && it != fs::end(it);
         it.increment(walk)) {
      if (it->is_directory(walk) && !it->is_symlink(walk))
        fs::permissions(it->path(), fs::perms::owner_all, fs::perm_options::add, walk);
    }
    ec.clear();
    std::filesystem::remove_all(dir(id), ec);
  }
  if (ec) throw Error("remove state of " + id + ": " + ec.message());
}

std::string container_status(const StateStore& store, const ContainerState& st) {
  uint64_t start = process_start_time(st.pid);
  if (start == 0 || (st.pid_start_time != 0 && start != st.pid_start_time)) return "stopped";
  struct stat sb;
  if (::stat(store.fifo_path(st.id).c_str(), &sb) == 0) return "created";
  if (st.paused) return "paused";
  return "running";
}

json oci_state(const ContainerState& st, const std::string& status) {
  return {{"ociVersion", "1.1.0"},
          {"id", st.id},
          {"status", status},
          {"pid", status == "stopped" ? 0 : st.pid},
          {"bundle", st.bundle},
          {"rootfs", st.rootfs},
          {"created", st.created},
          {"owner", st.owner},
          {"annotations", st.annotations}};
}

std::string rfc3339_now() {
  // UTC from the calendar arithmetic of <chrono>: gmtime_r would read /etc/localtime first.
  using namespace std::chrono;
  auto now = time_point_cast<nanoseconds>(system_clock::now());
  auto day = floor<days>(now);
  year_month_day ymd{day};
  hh_mm_ss<nanoseconds> tod{now - day};
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02ld:%02ld:%02lld.%09lldZ",
                static_cast<int>(ymd.year()), static_cast<unsigned>(ymd.month()),
                static_cast<unsigned>(ymd.day()), static_cast<long>(tod.hours().count()),
                static_cast<long>(tod.minutes().count()),
                static_cast<long long>(tod.seconds().count()),
                static_cast<long long>(tod.subseconds().count()));
  return buf;
}

}  // namespace cidrun::runtime
