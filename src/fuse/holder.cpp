#include "fuse/holder.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <poll.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <deque>
#include <memory>

#include "util/error.h"
#include "util/fd.h"
#include "util/log.h"
#include "util/proc.h"
#include "util/quote.h"

namespace cidrun::fuse {
namespace {

using Clock = std::chrono::steady_clock;

// The server's exit codes the holder tells apart.
constexpr int kServerConnectionEnded = 0;  // unmounted and unused: the holder is done too
constexpr int kServerStopped = 3;          // SIGTERM (an upgrade): start a successor

// The descriptor numbers a server finds its connection and readiness pipe at.
constexpr int kServerFuseFd = 3;
constexpr int kServerReadyFd = 4;

void write_text(const std::string& path, const std::string& text) {
  write_file_atomic(path, as_bytes(text), /*durable=*/false, 0600);
}

std::string read_line(int fd, int timeout_ms) {
  std::string out;
  auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  char buf[512];
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) return out.empty() ? "error: timed out" : out;
    pollfd p{fd, POLLIN, 0};
    int r = ::poll(&p, 1, static_cast<int>(left.count()));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) continue;
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return out.empty() ? "error: exited before it was ready (see its log)" : out;
    out.append(buf, static_cast<size_t>(n));
    if (auto nl = out.find('\n'); nl != std::string::npos) return out.substr(0, nl);
  }
}

pid_t spawn_server(const HolderSpec& spec, int fuse_fd, int ready_write, bool restart) {
  std::vector<std::string> args{spec.server_exe, "fuse-server"};
  args.insert(args.end(), spec.server_args.begin(), spec.server_args.end());
  args.insert(args.end(), {"--state", spec.state_dir, "--fd", std::to_string(kServerFuseFd),
                           "--ready-fd", std::to_string(kServerReadyFd)});
  if (restart) args.emplace_back("--restart");
  std::vector<char*> argv;
  argv.reserve(args.size() + 1);
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::string log = spec.state_dir + "/server.log";
  pid_t pid = ::fork();
  if (pid < 0) throw_errno("fork the FUSE server");
  if (pid == 0) {
    int logfd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (logfd >= 0) {
      ::dup2(logfd, STDOUT_FILENO);
      ::dup2(logfd, STDERR_FILENO);
    }
    // Both descriptors at fixed numbers, without close-on-exec.
    int f = ::fcntl(fuse_fd, F_DUPFD, 10);
    int r = ::fcntl(ready_write, F_DUPFD, 10);
    ::dup2(f, kServerFuseFd);
    ::dup2(r, kServerReadyFd);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::execv(argv[0], argv.data());
    _exit(127);
  }
  return pid;
}

class Holder {
 public:
  explicit Holder(const HolderSpec& spec) : spec_(spec) {}

  [[noreturn]] void run(int ready_fd) {
    try {
      mount_fs();
      start_server(false);
    } catch (const Error& e) {
      report(ready_fd, std::string("error: ") + e.what());
      cleanup();
      _exit(1);
    }
    write_text(spec_.state_dir + "/ready", "");
    report(ready_fd, "ok");
    supervise();
  }

 private:
  void report(int fd, const std::string& msg) {
    if (fd < 0) return;
    std::string line = msg + "\n";
    (void)!::write(fd, line.data(), line.size());
    ::close(fd);
  }

  void mount_fs() {
    fuse_fd_.reset(::open("/dev/fuse", O_RDWR | O_CLOEXEC));
    if (!fuse_fd_.valid()) throw_errno("open /dev/fuse");
    make_dirs(spec_.mountpoint, 0755);
    std::string opts = "fd=" + std::to_string(fuse_fd_.get()) +
                       ",rootmode=40000,user_id=0,group_id=0,allow_other,default_permissions";
    // Read-only; device nodes and setuid programs of an image work as they would on disk.
    if (::mount("cidrun", spec_.mountpoint.c_str(), "fuse.cidrun", MS_RDONLY | MS_NOATIME,
                opts.c_str()) != 0) {
      throw_errno("mount FUSE at " + spec_.mountpoint);
    }
    mounted_ = true;
    write_text(spec_.state_dir + "/mountpoint", spec_.mountpoint);
    write_text(spec_.state_dir + "/holder.pid", std::to_string(::getpid()));
  }

  void start_server(bool restart) {
    int p[2];
    if (::pipe2(p, O_CLOEXEC) != 0) throw_errno("pipe");
    UniqueFd rd(p[0]);
    UniqueFd wr(p[1]);
    server_ = spawn_server(spec_, fuse_fd_.get(), wr.get(), restart);
    wr.reset();
    write_text(spec_.state_dir + "/server.pid", std::to_string(server_));
    std::string answer = read_line(rd.get(), restart ? 30000 : 600000);
    if (answer != "ok") {
      ::kill(server_, SIGKILL);
      ::waitpid(server_, nullptr, 0);
      server_ = 0;
      throw Error(answer.rfind("error: ", 0) == 0 ? answer.substr(7) : answer);
    }
  }

  void cleanup() {
    if (mounted_) ::umount2(spec_.mountpoint.c_str(), MNT_DETACH);
    // A detached holder ends when its last container does, possibly after a newer holder of
    // the same root took over the state directory: its files are not ours to remove then.
    std::string pid_text;
    try {
      pid_text = read_text_file(spec_.state_dir + "/holder.pid");
    } catch (const Error&) {
      return;
    }
    if (pid_text != std::to_string(::getpid())) return;
    ::unlink((spec_.state_dir + "/ready").c_str());
    ::unlink((spec_.state_dir + "/holder.pid").c_str());
    ::unlink((spec_.state_dir + "/server.pid").c_str());
  }

  // Detaches when no user is left, under the lock starters take to add a user (cli/lazy.cpp):
  // a run that registers between the check and the detach would get a mount going away.
  void detach_if_unused() {
    UniqueFd lock(::open((spec_.state_dir + "/lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
    if (lock.valid()) {
      while (::flock(lock.get(), LOCK_EX) != 0 && errno == EINTR) {
      }
    }
    if (!has_live_refs(spec_.state_dir)) detach();
  }

  void detach() {
    if (!mounted_) return;
    ::unlink((spec_.state_dir + "/ready").c_str());
    // Lazily: overlays of containers still running keep the filesystem until they go; the
    // server exits when the kernel ends the connection after the last of them.
    if (::umount2(spec_.mountpoint.c_str(), MNT_DETACH) != 0 && errno != EINVAL &&
        errno != ENOENT) {
      log::warn("unmount " + spec_.mountpoint + ": " + std::strerror(errno));
    }
    mounted_ = false;
  }

  [[noreturn]] void supervise() {
    sigset_t set;
    sigemptyset(&set);
    for (int s : {SIGCHLD, SIGHUP, SIGTERM, SIGINT, SIGUSR1}) sigaddset(&set, s);
    ::sigprocmask(SIG_BLOCK, &set, nullptr);
    UniqueFd sfd(::signalfd(-1, &set, SFD_CLOEXEC));
    std::deque<Clock::time_point> restarts;
    bool upgrading = false;
    for (;;) {
      pollfd p{sfd.get(), POLLIN, 0};
      int r = ::poll(&p, 1, 1000);
      if (r > 0) {
        signalfd_siginfo si{};
        if (::read(sfd.get(), &si, sizeof si) == static_cast<ssize_t>(sizeof si)) {
          if (si.ssi_signo == SIGHUP && server_ > 0) {
            upgrading = true;
            ::kill(server_, SIGTERM);
          } else if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT) {
            detach();
          }
        }
      }
      // The server's end.
      int status = 0;
      pid_t w = server_ > 0 ? ::waitpid(server_, &status, WNOHANG) : 0;
      if (w == server_ && server_ > 0) {
        server_ = 0;
        bool clean_end = WIFEXITED(status) && WEXITSTATUS(status) == kServerConnectionEnded;
        bool stopped = WIFEXITED(status) && WEXITSTATUS(status) == kServerStopped;
        if (clean_end && !upgrading) break;
        if (!is_fuse_mount_here()) break;  // nothing left to serve
        if (!stopped && !upgrading) {
          log::warn("the FUSE server ended (" + describe(status) + "): starting a successor");
        }
        upgrading = false;
        auto now = Clock::now();
        restarts.push_back(now);
        while (!restarts.empty() && now - restarts.front() > std::chrono::seconds(60)) {
          restarts.pop_front();
        }
        if (restarts.size() > 10) {
          log::error("the FUSE server died 10 times in a minute: giving up the mount");
          detach();
          break;
        }
        try {
          start_server(true);
        } catch (const Error& e) {
          log::error(std::string("cannot restart the FUSE server: ") + e.what());
          detach();
          break;
        }
      }
      if (!spec_.keep && mounted_ && !has_live_refs(spec_.state_dir)) detach_if_unused();
    }
    cleanup();
    _exit(0);
  }

  bool is_fuse_mount_here() {
    // Detached mounts are gone from the path but may still be in use by overlays: the kernel
    // keeps the connection, so a successor is still needed while the connection lives. Probe
    // it the way the kernel would tell us: a connection that ended makes /dev/fuse reads fail.
    if (mounted_) return true;
    pollfd p{fuse_fd_.get(), POLLIN, 0};
    int r = ::poll(&p, 1, 0);
    return !(r > 0 && (p.revents & (POLLERR | POLLHUP)) != 0);
  }

  static std::string describe(int status) {
    if (WIFSIGNALED(status)) return std::string("signal ") + strsignal(WTERMSIG(status));
    return "exit " + std::to_string(WEXITSTATUS(status));
  }

  const HolderSpec& spec_;
  UniqueFd fuse_fd_;
  pid_t server_ = 0;
  bool mounted_ = false;
};

std::string refs_dir(const std::string& state_dir) {
  return state_dir + "/refs";
}

}  // namespace

bool is_fuse_mount(const std::string& path) {
  struct statfs sf {};
  if (::statfs(path.c_str(), &sf) != 0) return false;
  if (static_cast<unsigned long>(sf.f_type) != FUSE_SUPER_MAGIC) return false;
  // The root of the mount, not a directory below one.
  struct stat st {};
  struct stat parent {};
  if (::stat(path.c_str(), &st) != 0 || ::stat((path + "/..").c_str(), &parent) != 0) return false;
  return st.st_dev != parent.st_dev;
}

void add_ref(const std::string& state_dir, const std::string& name, pid_t pid) {
  make_dirs(refs_dir(state_dir), 0700);
  write_text(refs_dir(state_dir) + "/" + name,
             std::to_string(pid) + " " + std::to_string(process_start_time(pid)) + "\n");
}

void drop_ref(const std::string& state_dir, const std::string& name) {
  ::unlink((refs_dir(state_dir) + "/" + name).c_str());
}

bool has_live_refs(const std::string& state_dir) {
  std::string dir = refs_dir(state_dir);
  UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd.valid()) return false;
  bool live = false;
  for (const auto& name : dir_entries(fd.get(), dir)) {
    std::string text;
    try {
      std::string path = dir + "/";
      path += name;
      text = read_text_file(path);
    } catch (const Error&) {
      continue;
    }
    long long pid = 0;
    unsigned long long start = 0;
    if (std::sscanf(text.c_str(), "%lld %llu", &pid, &start) == 2 && pid > 0 &&
        process_start_time(static_cast<pid_t>(pid)) == start && start != 0) {
      live = true;
    } else {
      ::unlinkat(fd.get(), name.c_str(), 0);  // its user is gone
    }
  }
  return live;
}

bool holder_ready(const std::string& state_dir) {
  std::string pid_text;
  try {
    pid_text = read_text_file(state_dir + "/holder.pid");
  } catch (const Error&) {
    return false;
  }
  pid_t pid = static_cast<pid_t>(std::atol(pid_text.c_str()));
  if (pid <= 0 || ::kill(pid, 0) != 0) return false;
  struct stat st {};
  if (::stat((state_dir + "/ready").c_str(), &st) != 0) return false;
  std::string mnt;
  try {
    mnt = read_text_file(state_dir + "/mountpoint");
  } catch (const Error&) {
    return false;
  }
  return is_fuse_mount(mnt);
}

void stop_holder(const std::string& state_dir, int timeout_ms) {
  std::string pid_text = read_text_file(state_dir + "/holder.pid");
  pid_t pid = static_cast<pid_t>(std::atol(pid_text.c_str()));
  if (pid <= 0 || ::kill(pid, SIGTERM) != 0) throw Error("no holder process for " + state_dir);
  auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  while (::kill(pid, 0) == 0 && Clock::now() < deadline) {
    ::usleep(20000);
  }
}

void run_holder(const HolderSpec& spec, int ready_fd) {
  Holder h(spec);
  h.run(ready_fd);
}

void start_holder(const HolderSpec& spec, const std::vector<std::string>& holder_argv) {
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) throw_errno("pipe");
  UniqueFd rd(p[0]);
  UniqueFd wr(p[1]);
  std::vector<std::string> args = holder_argv;
  args.insert(args.end(), {"--ready-fd", "3"});
  std::vector<char*> argv;
  argv.reserve(args.size() + 1);
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::string log = spec.state_dir + "/holder.log";
  pid_t pid = ::fork();
  if (pid < 0) throw_errno("fork");
  if (pid == 0) {
    // A new session, and a second fork: the holder belongs to no terminal, no command and no
    // container; it is adopted by init and outlives whoever started it.
    ::setsid();
    pid_t again = ::fork();
    if (again != 0) _exit(again < 0 ? 1 : 0);
    int nul = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    int logfd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (nul >= 0) ::dup2(nul, STDIN_FILENO);
    if (logfd >= 0) {
      ::dup2(logfd, STDOUT_FILENO);
      ::dup2(logfd, STDERR_FILENO);
    }
    int w = ::fcntl(wr.get(), F_DUPFD, 10);
    ::dup2(w, 3);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::execv(argv[0], argv.data());
    _exit(127);
  }
  wr.reset();
  ::waitpid(pid, nullptr, 0);
  std::string answer = read_line(rd.get(), 600000);
  if (answer != "ok") {
    throw Error("lazy mount of " + spec.mountpoint +
                " failed: " + (answer.rfind("error: ", 0) == 0 ? answer.substr(7) : answer) +
                " (logs in " + spec.state_dir + ")");
  }
}

}  // namespace cidrun::fuse
