#include "runtime/self_protect.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <string>
#include <vector>

#include "runtime/exec_stub.h"
#include "util/error.h"
#include "util/fd.h"
#include "util/log.h"

extern char** environ;

namespace cidrun::runtime {
namespace {

constexpr int kSeals = F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE;

std::vector<char*> own_argv(std::string& cmdline) {
  cmdline = read_text_file("/proc/self/cmdline");
  std::vector<char*> argv;
  for (size_t i = 0; i < cmdline.size();) {
    argv.push_back(cmdline.data() + i);
    i += std::char_traits<char>::length(cmdline.data() + i) + 1;
  }
  argv.push_back(nullptr);
  return argv;
}

// An fd of our binary as seen through a detached overlayfs whose only layer is the binary's
// directory: overlayfs without an upper layer is read-only, and the mount is attached nowhere, so
// nothing can remount it. Invalid fd if the kernel refuses.
UniqueFd open_through_readonly_overlay() {
  char exe[PATH_MAX];
  ssize_t n = ::readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n <= 0) return {};
  exe[n] = '\0';
  std::string path(exe);
  size_t slash = path.rfind('/');
  if (path[0] != '/' || slash == std::string::npos) return {};
  std::string dir = slash == 0 ? "/" : path.substr(0, slash);
  std::string name = path.substr(slash + 1);
  UniqueFd fs(static_cast<int>(::syscall(SYS_fsopen, "overlay", FSOPEN_CLOEXEC)));
  if (!fs.valid()) return {};
  auto set = [&](const char* key, const std::string& value) {
    return ::syscall(SYS_fsconfig, fs.get(), FSCONFIG_SET_STRING, key, value.c_str(), 0) == 0;
  };
  // Overlayfs without an upper layer wants two lower layers (and refuses the same one twice): the
  // second is an empty, detached tmpfs reached through its mount fd.
  UniqueFd tfs(static_cast<int>(::syscall(SYS_fsopen, "tmpfs", FSOPEN_CLOEXEC)));
  if (!tfs.valid() ||
      ::syscall(SYS_fsconfig, tfs.get(), FSCONFIG_CMD_CREATE, nullptr, nullptr, 0) < 0)
    return {};
  UniqueFd empty(static_cast<int>(
      ::syscall(SYS_fsmount, tfs.get(), FSMOUNT_CLOEXEC, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NODEV)));
  if (!empty.valid()) return {};
  // "lowerdir+" takes one path verbatim (no ':' or ',' escaping needed).
  if (!set("lowerdir+", dir) || !set("lowerdir+", "/proc/self/fd/" + std::to_string(empty.get())))
    return {};
  if (::syscall(SYS_fsconfig, fs.get(), FSCONFIG_CMD_CREATE, nullptr, nullptr, 0) < 0) return {};
  UniqueFd mnt(
      static_cast<int>(::syscall(SYS_fsmount, fs.get(), FSMOUNT_CLOEXEC,
                                 MOUNT_ATTR_RDONLY | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOSUID)));
  if (!mnt.valid()) return {};
  UniqueFd bin(::openat(mnt.get(), name.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!bin.valid()) return {};
  // The file must be the very binary we run, not something renamed into place meanwhile.
  struct stat a, b;
  if (::fstat(bin.get(), &a) < 0 || ::stat("/proc/self/exe", &b) < 0 || a.st_size != b.st_size)
    return {};
  return bin;
}

UniqueFd sealed_memfd_copy() {
  UniqueFd self(::open("/proc/self/exe", O_RDONLY | O_CLOEXEC));
  if (!self.valid()) throw_errno("open /proc/self/exe");
  struct stat st;
  if (::fstat(self.get(), &st) < 0) throw_errno("stat /proc/self/exe");
  UniqueFd copy(::memfd_create("cidrun", MFD_CLOEXEC | MFD_ALLOW_SEALING));
  if (!copy.valid()) throw_errno("memfd_create");
  off_t off = 0;
  while (off < st.st_size) {
    ssize_t n = ::sendfile(copy.get(), self.get(), &off, static_cast<size_t>(st.st_size - off));
    if (n < 0) {
      if (errno == EINTR) continue;
      throw_errno("copy the runtime binary");
    }
    if (n == 0) break;
  }
  if (::fcntl(copy.get(), F_ADD_SEALS, kSeals) < 0) throw_errno("seal the runtime binary copy");
  return copy;
}

}  // namespace

bool running_from_sealed_copy() {
  struct statvfs vfs;
  if (::statvfs("/proc/self/exe", &vfs) == 0 && (vfs.f_flag & ST_RDONLY)) return true;
  UniqueFd self(::open("/proc/self/exe", O_RDONLY | O_CLOEXEC));
  if (!self.valid()) return false;
  int seals = ::fcntl(self.get(), F_GET_SEALS);
  return seals >= 0 && (seals & kSeals) == kSeals;
}

bool exec_stub_protects(const Spec& spec) {
  const NamespaceSpec* pid = spec.find_namespace("pid");
  if (!pid || !pid->path.empty()) return false;
  if (!spec.hooks.start_container.empty()) return false;
  if (spec.process.uid != 0) return false;
  if (!spec.seccomp.is_null()) {
    if (!spec.seccomp.is_object() || spec.seccomp.value("defaultAction", "") != "SCMP_ACT_ALLOW")
      return false;
    if (auto it = spec.seccomp.find("syscalls"); it != spec.seccomp.end() && it->is_array()) {
      for (const auto& rule : *it) {
        auto names = rule.find("names");
        if (names == rule.end() || !names->is_array()) continue;
        for (const auto& n : *names)
          if (n == "execve" || n == "execveat") return false;
      }
    }
  }
  // 2 forbids executing any memfd (kernel 6.3+); the file is absent on older kernels.
  UniqueFd noexec(::open("/proc/sys/vm/memfd_noexec", O_RDONLY | O_CLOEXEC));
  char c = '0';
  if (noexec.valid() && ::read(noexec.get(), &c, 1) == 1 && c == '2') return false;
  return true;
}

UniqueFd sealed_exec_stub(int min_fd) {
  // MFD_EXEC says so explicitly where the kernel knows the flag (6.3+), else it warns.
  constexpr unsigned kMfdExec = 0x10;
  int fd = ::memfd_create("cidrun-exec", MFD_CLOEXEC | MFD_ALLOW_SEALING | kMfdExec);
  if (fd < 0 && errno == EINVAL)
    fd = ::memfd_create("cidrun-exec", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  UniqueFd stub(fd);
  if (!stub.valid()) throw_errno("memfd_create for the exec stub");
  write_full(stub.get(), kExecStub, kExecStubSize, "exec stub");
  if (::fcntl(stub.get(), F_ADD_SEALS, kSeals) < 0) throw_errno("seal the exec stub");
  if (stub.get() >= min_fd) return stub;
  UniqueFd moved(::fcntl(stub.get(), F_DUPFD_CLOEXEC, min_fd));
  if (!moved.valid()) throw_errno("move the exec stub's fd");
  return moved;
}

void ensure_running_from_sealed_copy() {
  if (running_from_sealed_copy()) return;
  UniqueFd bin = open_through_readonly_overlay();
  if (!bin.valid()) {
    log::debug("read-only overlay of the runtime binary unavailable; using a sealed memfd copy");
    bin = sealed_memfd_copy();
  }
  std::string cmdline;
  std::vector<char*> argv = own_argv(cmdline);
  ::syscall(SYS_execveat, bin.get(), "", argv.data(), environ, AT_EMPTY_PATH);
  throw_errno("re-exec the runtime from a read-only view");
}

}  // namespace cidrun::runtime
