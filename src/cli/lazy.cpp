#include "cli/lazy.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <unistd.h>

#include <climits>
#include <cstdlib>

#include "fuse/holder.h"
#include "util/error.h"
#include "util/fd.h"
#include "util/sha256.h"

namespace cidrun::cli {

std::string self_exe_path() {
  char buf[PATH_MAX];
  ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) throw_errno("readlink /proc/self/exe");
  std::string p(buf, static_cast<size_t>(n));
  constexpr std::string_view kDeleted = " (deleted)";
  if (p.size() > kDeleted.size() && p.ends_with(kDeleted)) p.resize(p.size() - kDeleted.size());
  return p;
}

std::string shared_mount_state(const Globals& g, const Cid& root) {
  // Per repository too: a server keeps the blocks it fetches in the repository that started
  // it, and a run from another repository must neither write there nor depend on its life.
  char* abs = ::realpath(repo_path(g).c_str(), nullptr);
  std::string repo = abs ? abs : repo_path(g);
  std::free(abs);
  Sha256Digest d = sha256(as_bytes(repo));
  return g.state_root + "/fuse/" + root.to_v1().str() + "-" + to_hex(ByteView(d.data(), 6));
}

std::string explicit_mount_state(const Globals& g, const std::string& mountpoint) {
  char* abs = ::realpath(mountpoint.c_str(), nullptr);
  std::string path = abs ? abs : mountpoint;
  std::free(abs);
  Sha256Digest d = sha256(as_bytes(path));
  return g.state_root + "/fuse/m-" + to_hex(ByteView(d.data(), 12));
}

LazyMount ensure_lazy_mount(const Globals& g, const LazyMountRequest& req) {
  LazyMount m;
  bool shared = req.mountpoint.empty();
  m.state_dir = shared ? shared_mount_state(g, req.root) : explicit_mount_state(g, req.mountpoint);
  // A recording mount is nobody else's: what other containers read must not enter the trace.
  if (shared && !req.record.empty()) m.state_dir += "-trace-" + std::to_string(::getpid());
  m.mountpoint = shared ? m.state_dir + "/mnt" : req.mountpoint;
  make_dirs(m.state_dir, 0700);
  // One starter at a time: the second waits, then finds the mount ready.
  UniqueFd lock(::open((m.state_dir + "/lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (!lock.valid()) throw_errno("open " + m.state_dir + "/lock");
  while (::flock(lock.get(), LOCK_EX) != 0) {
    if (errno != EINTR) throw_errno("lock " + m.state_dir);
  }
  // The ref first: a holder that starts sees its user at once.
  if (!req.ref.empty()) fuse::add_ref(m.state_dir, req.ref, req.ref_pid);
  if (fuse::holder_ready(m.state_dir)) {
    if (!shared) throw Error(req.mountpoint + " is already a cidrun mount");
    return m;
  }
  if (!shared && fuse::is_fuse_mount(req.mountpoint)) {
    throw Error(req.mountpoint + " is already a FUSE mount");
  }
  // A holder killed with its server leaves a dead mount ("not connected") on the shared path:
  // no holder is ready and we hold the lock, so whatever is mounted there is nobody's.
  if (shared) ::umount2(m.mountpoint.c_str(), MNT_DETACH);
  // Whatever a dead holder left: its journal and saved INIT belong to a connection that is gone.
  for (const char* stale : {"/inodes", "/fuse-init", "/ready", "/holder.pid", "/server.pid"}) {
    ::unlink((m.state_dir + stale).c_str());
  }
  std::string exe = self_exe_path();
  fuse::HolderSpec spec;
  spec.state_dir = m.state_dir;
  spec.mountpoint = m.mountpoint;
  spec.server_exe = exe;
  spec.keep = !shared;
  spec.server_args = {"--root", req.root.str(), "--repo", repo_path(g)};
  for (const auto& s : req.sources) {
    spec.server_args.insert(spec.server_args.end(), {"--from", s});
  }
  if (!req.fill) spec.server_args.emplace_back("--no-fill");
  if (!req.record.empty()) {
    spec.server_args.insert(spec.server_args.end(), {"--record", req.record});
  }
  std::vector<std::string> argv = {
      exe, "fuse-holder", "--state", m.state_dir, "--mountpoint", m.mountpoint, "--exe", exe};
  if (spec.keep) argv.emplace_back("--keep");
  argv.insert(argv.end(), spec.server_args.begin(), spec.server_args.end());
  fuse::start_holder(spec, argv);
  return m;
}

}  // namespace cidrun::cli
