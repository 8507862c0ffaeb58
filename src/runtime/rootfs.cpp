#include "runtime/rootfs.h"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <deque>
#include <map>
#include <sstream>
#include <string_view>

#include "runtime/mount_options.h"
#include "runtime/safe_path.h"
#include "util/error.h"
#include "util/log.h"

namespace cidrun::runtime {
namespace {

void do_mount(const std::string& src, const std::string& dst, const char* type, unsigned long flags,
              const std::string& data, const std::string& what) {
  if (::mount(src.empty() ? nullptr : src.c_str(), dst.c_str(), type, flags,
              data.empty() ? nullptr : data.c_str()) < 0)
    throw_errno("mount " + what);
}

// Changes a mount's flags with mount_setattr: unlike MS_REMOUNT it only touches the flags named,
// so flags locked by a user namespace are kept, and AT_RECURSIVE reaches the submounts of an rbind.
void set_mount_flags_at(int dirfd, const char* path, unsigned long ms_flags, bool recursive,
                        const std::string& what) {
  mount_attr attr{};
  if (ms_flags & MS_RDONLY) attr.attr_set |= MOUNT_ATTR_RDONLY;
  if (ms_flags & MS_NOSUID) attr.attr_set |= MOUNT_ATTR_NOSUID;
  if (ms_flags & MS_NODEV) attr.attr_set |= MOUNT_ATTR_NODEV;
  if (ms_flags & MS_NOEXEC) attr.attr_set |= MOUNT_ATTR_NOEXEC;
  if (ms_flags & MS_NODIRATIME) attr.attr_set |= MOUNT_ATTR_NODIRATIME;
  if (ms_flags & (MS_NOATIME | MS_STRICTATIME | MS_RELATIME)) {
    attr.attr_clr |= MOUNT_ATTR__ATIME;
    if (ms_flags & MS_NOATIME)
      attr.attr_set |= MOUNT_ATTR_NOATIME;
    else if (ms_flags & MS_STRICTATIME)
      attr.attr_set |= MOUNT_ATTR_STRICTATIME;
    else
      attr.attr_set |= MOUNT_ATTR_RELATIME;
  }
  if (attr.attr_set == 0 && attr.attr_clr == 0) return;
  unsigned flags = (*path ? 0 : AT_EMPTY_PATH) | (recursive ? AT_RECURSIVE : 0);
  if (::mount_setattr(dirfd, path, flags, &attr, sizeof attr) < 0)
    throw_errno("set flags of " + what);
}

void set_mount_flags(int fd, unsigned long ms_flags, bool recursive, const std::string& what) {
  set_mount_flags_at(fd, "", ms_flags, recursive, what);
}

constexpr unsigned long kBindOnlyMask = MS_BIND | MS_REC | MS_REMOUNT;

struct HostMount {
  std::string mountpoint, fstype, super_options;
};

// The host's cgroup and cgroup2 mounts, from /proc/self/mountinfo: "ID PARENT MAJ:MIN ROOT
// MOUNTPOINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPER_OPTIONS" per line. Split in place: the
// file is read on every container start.
std::vector<HostMount> host_cgroup_mounts() {
  std::vector<HostMount> out;
  std::string text = read_text_file("/proc/self/mountinfo");
  auto next_field = [](std::string_view& rest) {
    size_t start = rest.find_first_not_of(' ');
    if (start == std::string_view::npos) return std::string_view();
    rest.remove_prefix(start);
    size_t end = std::min(rest.find(' '), rest.size());
    std::string_view f = rest.substr(0, end);
    rest.remove_prefix(end);
    return f;
  };
  std::string_view all(text);
  while (!all.empty()) {
    size_t eol = std::min(all.find('\n'), all.size());
    std::string_view line = all.substr(0, eol);
    all.remove_prefix(std::min(eol + 1, all.size()));
    size_t dash = line.find(" - ");
    if (dash == std::string_view::npos) continue;
    std::string_view after = line.substr(dash + 3);
    std::string_view fstype = next_field(after);
    if (fstype != "cgroup" && fstype != "cgroup2") continue;
    next_field(after);  // source
    std::string_view super_options = next_field(after);
    std::string_view before = line.substr(0, dash);
    std::string_view mountpoint;
    for (int i = 0; i < 5; ++i) mountpoint = next_field(before);
    if (mountpoint.empty()) continue;
    out.push_back({std::string(mountpoint), std::string(fstype), std::string(super_options)});
  }
  return out;
}

bool options_contain_all(const std::string& super_options, const std::string& controllers) {
  auto split = [](const std::string& s) {
    std::vector<std::string> v;
    std::istringstream is(s);
    std::string t;
    while (std::getline(is, t, ',')) v.push_back(t);
    return v;
  };
  auto have = split(super_options);
  for (const auto& c : split(controllers)) {
    if (std::find(have.begin(), have.end(), c) == have.end()) return false;
  }
  return true;
}

// A "cgroup" mount shows the container its own cgroups. On a v1 (or hybrid) host that is a tmpfs
// holding one bind per hierarchy of the container's cgroup directory, as runc does; on a v2 host
// a cgroup2 mount (in a new cgroup namespace) or a bind of the container's directory.
void mount_cgroups(int root_fd, const MountSpec& m, const MountOptions& o,
                   const RootfsContext& ctx) {
  UniqueFd dst = make_path_in_root(root_fd, m.destination, false);
  unsigned long flags = o.flags & ~kBindOnlyMask;
  bool v2_only = ctx.cgroup_paths.size() == 1 && ctx.cgroup_paths[0].first.empty();
  auto mounts = host_cgroup_mounts();
  if (v2_only) {
    if (ctx.new_cgroup_namespace) {
      do_mount("cgroup2", fd_path(dst.get()), "cgroup2", flags, "", m.destination);
      return;
    }
    for (const auto& hm : mounts) {
      if (hm.fstype != "cgroup2") continue;
      do_mount(hm.mountpoint + ctx.cgroup_paths[0].second, fd_path(dst.get()), nullptr,
               MS_BIND | MS_REC, "", m.destination);
      UniqueFd top = open_in_root(root_fd, m.destination);
      set_mount_flags(top.get(), flags, true, m.destination);
      return;
    }
    throw Error("no cgroup2 mount on the host for " + m.destination);
  }
  do_mount("tmpfs", fd_path(dst.get()), "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=755",
           m.destination);
  // The tmpfs is new and nothing else writes to it yet: its directories are made and opened
  // relative to its root without resolving the destination again for each hierarchy.
  UniqueFd top = open_in_root(root_fd, m.destination);
  for (const auto& [controllers, path] : ctx.cgroup_paths) {
    for (const auto& hm : mounts) {
      bool match = controllers.empty() ? hm.fstype == "cgroup2"
                                       : hm.fstype == "cgroup" &&
                                             options_contain_all(hm.super_options, controllers);
      if (!match) continue;
      std::string name = hm.mountpoint.substr(hm.mountpoint.rfind('/') + 1);
      std::string where = m.destination + "/" + name;
      if (name.empty() || name == "." || name == "..")
        throw Error("cgroup mount point " + hm.mountpoint + " has no usable name");
      if (::mkdirat(top.get(), name.c_str(), 0755) < 0 && errno != EEXIST)
        throw_errno("create " + where);
      UniqueFd d(::openat(top.get(), name.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (!d.valid()) throw_errno("open " + where);
      do_mount(hm.mountpoint + path, fd_path(d.get()), nullptr, MS_BIND | MS_REC, "", where);
      // "cpu,cpuacct" is also reachable as "cpu" and "cpuacct", as on the host.
      if (name.find(',') != std::string::npos) {
        std::istringstream is(name);
        std::string part;
        while (std::getline(is, part, ','))
          if (::symlinkat(name.c_str(), top.get(), part.c_str()) < 0 && errno != EEXIST)
            throw_errno("symlink " + m.destination + "/" + part);
      }
      break;
    }
  }
  // One recursive change for the tmpfs and every bind under it (they all get the same flags).
  set_mount_flags(top.get(), flags | MS_NOSUID | MS_NODEV | MS_NOEXEC, true, m.destination);
}

void mount_one(int root_fd, const MountSpec& m, const RootfsContext& ctx) {
  MountOptions o = parse_mount_options(m.options);
  if (m.type == "bind") o.flags |= MS_BIND;
  if (m.type == "cgroup") {
    mount_cgroups(root_fd, m, o, ctx);
    return;
  }
  UniqueFd dst;
  if (o.is_bind()) {
    struct stat st;
    if (::stat(m.source.c_str(), &st) < 0) throw_errno("bind mount source " + m.source);
    dst = make_path_in_root(root_fd, m.destination, !S_ISDIR(st.st_mode));
    do_mount(m.source, fd_path(dst.get()), nullptr, o.flags & (MS_BIND | MS_REC), "",
             m.source + " on " + m.destination);
    UniqueFd top = open_in_root(root_fd, m.destination);
    set_mount_flags(top.get(), o.flags & ~kBindOnlyMask, (o.flags & MS_REC) != 0, m.destination);
  } else {
    dst = make_path_in_root(root_fd, m.destination, false);
    const char* type = m.type.c_str();
    unsigned long flags = o.flags & ~MS_REMOUNT;
    if (::mount(m.source.c_str(), fd_path(dst.get()).c_str(), type, flags,
                o.data.empty() ? nullptr : o.data.c_str()) < 0) {
      int err = errno;
      // Without owning the network (or IPC) namespace, sysfs (mqueue) cannot be mounted: bind the
      // host's instead, as runc does for rootless containers.
      std::string fallback = m.type == "sysfs" ? "/sys" : m.type == "mqueue" ? "/dev/mqueue" : "";
      if (fallback.empty() || (err != EPERM && err != EACCES && err != EBUSY))
        throw_errno("mount " + m.type + " on " + m.destination, err);
      do_mount(fallback, fd_path(dst.get()), nullptr, MS_BIND | MS_REC, "",
               fallback + " on " + m.destination);
      UniqueFd top = open_in_root(root_fd, m.destination);
      set_mount_flags(top.get(), flags, true, m.destination);
    }
  }
  if (o.propagation) {
    UniqueFd top = open_in_root(root_fd, m.destination);
    do_mount("", fd_path(top.get()), nullptr, o.propagation, "", "propagation of " + m.destination);
  }
}

struct DefaultDevice {
  const char* path;
  int major, minor;
};
constexpr DefaultDevice kDefaultDevices[] = {
    {"/dev/null", 1, 3},   {"/dev/zero", 1, 5},    {"/dev/full", 1, 7},
    {"/dev/random", 1, 8}, {"/dev/urandom", 1, 9}, {"/dev/tty", 5, 0},
};

// The directories devices are made in, opened once each (nearly all are /dev).
class DeviceDirs {
 public:
  explicit DeviceDirs(int root_fd) : root_fd_(root_fd) {}

  struct Dir {
    UniqueFd fd;
    bool setgid = false;  // new nodes take the directory's group, not ours
  };

  const Dir& get(const std::string& path) {
    for (const auto& [p, d] : dirs_)
      if (p == path) return d;
    Dir d;
    d.fd = make_path_in_root(root_fd_, path, false);
    struct stat st;
    if (::fstat(d.fd.get(), &st) < 0) throw_errno("stat " + path);
    d.setgid = (st.st_mode & S_ISGID) != 0;
    dirs_.emplace_back(path, std::move(d));
    return dirs_.back().second;
  }

 private:
  int root_fd_;
  std::deque<std::pair<std::string, Dir>> dirs_;  // references stay valid as it grows
};

void create_device(int root_fd, DeviceDirs& dirs, const DeviceSpec& d, bool bind_from_host) {
  auto [parent, name] = split_parent(d.path);
  const DeviceDirs::Dir& dir = dirs.get(parent);
  mode_t type = d.type == 'b' ? S_IFBLK : d.type == 'p' ? S_IFIFO : S_IFCHR;
  if (!bind_from_host) {
    int rc = ::mknodat(dir.fd.get(), name.c_str(), type | (d.file_mode & 07777),
                       makedev(d.major, d.minor));
    if (rc == 0 || errno == EEXIST) {
      // A new node is already ours (we are root here, umask 0): chown only when that is not
      // what the config asks for.
      bool owned = d.uid == ::geteuid() && d.gid == ::getegid() && !dir.setgid;
      if (rc == 0 && !owned &&
          ::fchownat(dir.fd.get(), name.c_str(), d.uid, d.gid, AT_SYMLINK_NOFOLLOW) < 0)
        throw_errno("chown device " + d.path);
      return;
    }
    if (errno != EPERM) throw_errno("mknod " + d.path);
  }
  // In a user namespace mknod is refused: bind the host's node onto an empty file.
  if (::mknodat(dir.fd.get(), name.c_str(), S_IFREG | 0600, 0) < 0 && errno != EEXIST)
    throw_errno("create " + d.path);
  UniqueFd target = open_in_root(root_fd, d.path);
  do_mount(d.path, fd_path(target.get()), nullptr, MS_BIND, "", "device " + d.path);
}

void create_devices(int root_fd, const Spec& spec, const RootfsContext& ctx) {
  for (const auto& m : spec.mounts) {
    // The host's /dev bound in (podman --device-cgroup-rule setups, privileged): nothing to make.
    if (m.destination == "/dev" && parse_mount_options(m.options).is_bind()) return;
  }
  std::vector<DeviceSpec> devices;
  for (const auto& dd : kDefaultDevices) {
    DeviceSpec d;
    d.path = dd.path;
    d.major = dd.major;
    d.minor = dd.minor;
    d.file_mode = 0666;
    bool overridden = false;
    for (const auto& sd : spec.devices) overridden = overridden || sd.path == d.path;
    if (!overridden) devices.push_back(d);
  }
  devices.insert(devices.end(), spec.devices.begin(), spec.devices.end());
  DeviceDirs dirs(root_fd);
  for (const auto& d : devices) create_device(root_fd, dirs, d, ctx.in_user_namespace);

  int dev = dirs.get("/dev").fd.get();
  static const std::pair<const char*, const char*> kLinks[] = {
      {"fd", "/proc/self/fd"},       {"stdin", "/proc/self/fd/0"}, {"stdout", "/proc/self/fd/1"},
      {"stderr", "/proc/self/fd/2"}, {"ptmx", "pts/ptmx"},
  };
  for (const auto& [name, target] : kLinks) {
    if (::symlinkat(target, dev, name) == 0) continue;
    if (errno != EEXIST) throw_errno(std::string("symlink /dev/") + name);
    // /dev/ptmx must lead to the container's own devpts instance, whatever the image holds.
    if (std::string(name) != "ptmx") continue;
    if (::unlinkat(dev, name, 0) < 0 || ::symlinkat(target, dev, name) < 0)
      throw_errno(std::string("symlink /dev/") + name);
  }
}

}  // namespace

std::vector<std::pair<std::string, std::string>> read_self_cgroups() {
  std::vector<std::pair<std::string, std::string>> out;
  std::istringstream in(read_text_file("/proc/self/cgroup"));
  std::string line;
  while (std::getline(in, line)) {
    size_t a = line.find(':');
    size_t b = line.find(':', a + 1);
    if (a == std::string::npos || b == std::string::npos) continue;
    std::string controllers = line.substr(a + 1, b - a - 1);
    std::string path = line.substr(b + 1);
    if (path == "/") path.clear();
    out.emplace_back(controllers, path);
  }
  // A hybrid host's unified hierarchy (0::/...) sits beside the v1 ones; a pure v2 host has only
  // it.
  return out;
}

void prepare_rootfs(const Spec& spec, const Overlay* overlay, const RootfsContext& ctx) {
  if (ctx.own_mount_namespace) {
    // Nothing the container mounts may propagate back to the host; "private" also keeps the
    // host's later mounts out. linux.rootfsPropagation itself is for the container's root once
    // entered (finish_rootfs): on this tree, "shared" would make pivot_root fail and
    // "unbindable" the root's bind below.
    const bool keep_host_out = (propagation_flag(spec.rootfs_propagation) & MS_PRIVATE) != 0;
    do_mount("", "/", nullptr, MS_REC | (keep_host_out ? MS_PRIVATE : MS_SLAVE), "",
             "propagation of /");
  }
  if (overlay) {
    std::string lower;
    for (const auto& l : overlay->lowers) lower += (lower.empty() ? "" : ":") + l;
    std::string data =
        "lowerdir=" + lower + ",upperdir=" + overlay->upper + ",workdir=" + overlay->work;
    do_mount("overlay", spec.root_path, "overlay", 0, data, "overlay on " + spec.root_path);
  }
  // pivot_root needs the new root to be a mount point; without a mount namespace this bind is
  // what detach_shared_root takes away, with everything mounted under it.
  do_mount(spec.root_path, spec.root_path, nullptr, MS_BIND | MS_REC, "",
           "rootfs " + spec.root_path);
  UniqueFd root(::open(spec.root_path.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!root.valid()) throw_errno("open rootfs " + spec.root_path);
  for (const auto& m : spec.mounts) mount_one(root.get(), m, ctx);
  create_devices(root.get(), spec, ctx);
}

namespace {

void pivot_into_root(const std::string& rootfs) {
  UniqueFd newroot(::open(rootfs.c_str(), O_DIRECTORY | O_RDONLY | O_CLOEXEC));
  if (!newroot.valid()) throw_errno("open rootfs " + rootfs);
  if (::fchdir(newroot.get()) < 0) throw_errno("chdir rootfs");
  // pivot_root(".", ".") stacks the old root on top of the new one; unmounting "." then removes
  // it, so no path to the host's tree is left (unlike chroot).
  if (::syscall(SYS_pivot_root, ".", ".") < 0) throw_errno("pivot_root " + rootfs);
  // The old root's mounts are still shared with the host: make them slaves so the detach below
  // does not unmount anything on the host.
  do_mount("", ".", nullptr, MS_SLAVE | MS_REC, "", "old root propagation");
  if (::umount2(".", MNT_DETACH) < 0) throw_errno("detach old root");
  if (::chdir("/") < 0) throw_errno("chdir /");
}

}  // namespace

void enter_root(const std::string& rootfs, const RootfsContext& ctx) {
  if (ctx.own_mount_namespace) {
    pivot_into_root(rootfs);
    return;
  }
  if (::chdir(rootfs.c_str()) < 0) throw_errno("chdir rootfs " + rootfs);
  if (::chroot(".") < 0) throw_errno("chroot " + rootfs);
  if (::chdir("/") < 0) throw_errno("chdir /");
}

uint64_t mount_id_of(const std::string& path) {
  struct statx stx {};
  if (::statx(AT_FDCWD, path.c_str(), AT_NO_AUTOMOUNT, STATX_MNT_ID, &stx) < 0) return 0;
  return (stx.stx_mask & STATX_MNT_ID) ? stx.stx_mnt_id : 0;
}

void detach_shared_root(const std::string& rootfs, uint64_t mount_id_before) {
  // At most the overlay and the root's bind on top of it.
  for (int layer = 0; layer < 2; ++layer) {
    const uint64_t now = mount_id_of(rootfs);
    if (now == 0 || now == mount_id_before) return;
    if (::umount2(rootfs.c_str(), MNT_DETACH) < 0) {
      if (errno == EINVAL || errno == ENOENT) return;
      throw_errno("detach the container's root " + rootfs);
    }
  }
}

void finish_rootfs(const Spec& spec) {
  if (!spec.rootfs_propagation.empty()) {
    do_mount("", "/", nullptr, propagation_flag(spec.rootfs_propagation), "",
             "rootfsPropagation " + spec.rootfs_propagation + " of /");
  }
  // The old root's detach in pivot_into_root made the whole tree rslave, and a shared mount
  // without peers turns private that way: the propagation a mount asked for is set again.
  UniqueFd root;
  for (const auto& m : spec.mounts) {
    unsigned long propagation = parse_mount_options(m.options).propagation;
    if (!propagation) continue;
    if (!root.valid()) root.reset(::open("/", O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!root.valid()) throw_errno("open /");
    UniqueFd top = open_in_root(root.get(), m.destination);
    do_mount("", fd_path(top.get()), nullptr, propagation, "", "propagation of " + m.destination);
  }
  for (const auto& p : spec.masked_paths) {
    struct stat st;
    if (::stat(p.c_str(), &st) < 0) {
      if (errno == ENOENT) continue;
      throw_errno("masked path " + p);
    }
    if (S_ISDIR(st.st_mode))
      do_mount("tmpfs", p, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, "", "mask " + p);
    else
      do_mount("/dev/null", p, nullptr, MS_BIND, "", "mask " + p);
  }
  for (const auto& p : spec.readonly_paths) {
    if (::mount(p.c_str(), p.c_str(), nullptr, MS_BIND | MS_REC, nullptr) < 0) {
      if (errno == ENOENT) continue;
      throw_errno("bind read-only path " + p);
    }
    // By path, as the bind above was: after pivot_root every lookup stays in the container.
    set_mount_flags_at(AT_FDCWD, p.c_str(), MS_RDONLY, true, p);
  }
  if (spec.root_readonly) set_mount_flags_at(AT_FDCWD, "/", MS_RDONLY, false, "/");
}

void bind_console(int master_fd) {
  unsigned n = 0;
  if (::ioctl(master_fd, TIOCGPTN, &n) < 0) throw_errno("pty number");
  std::string pts = "/dev/pts/" + std::to_string(n);
  int fd = ::open("/dev/console", O_CREAT | O_WRONLY | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd >= 0) ::close(fd);
  do_mount(pts, "/dev/console", nullptr, MS_BIND, "", "console");
}

}  // namespace cidrun::runtime
