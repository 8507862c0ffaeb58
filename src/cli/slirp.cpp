#include "cli/slirp.h"

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <thread>

#include "runtime/namespaces.h"
#include "util/error.h"
#include "util/proc.h"

extern char** environ;

namespace cidrun::cli::slirp {
namespace {

using nlohmann::json;

constexpr auto kReadyTimeout = std::chrono::seconds(10);
constexpr const char* kBinary = "slirp4netns";

// A pipe whose ends sit above the standard descriptors and those a child gets by number, so a
// dup2 onto 3 or 4 never lands on one of them.
std::pair<UniqueFd, UniqueFd> high_pipe() {
  std::array<int, 2> p{};
  if (::pipe2(p.data(), O_CLOEXEC) < 0) throw_errno("pipe");
  UniqueFd r(::fcntl(p[0], F_DUPFD_CLOEXEC, 10)), w(::fcntl(p[1], F_DUPFD_CLOEXEC, 10));
  ::close(p[0]);
  ::close(p[1]);
  if (!r.valid() || !w.valid()) throw_errno("pipe");
  return {std::move(r), std::move(w)};
}

void write_proc_file(pid_t pid, const char* name, const std::string& text) {
  std::string path = "/proc/" + std::to_string(pid) + "/" + name;
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd.valid()) throw_errno("open " + path);
  if (::write(fd.get(), text.data(), text.size()) < 0) throw_errno("write " + path);
}

std::string find_binary() {
  const char* path = std::getenv("PATH");
  std::string dirs = path && *path ? path : "/usr/local/bin:/usr/bin:/bin";
  size_t start = 0;
  while (start <= dirs.size()) {
    size_t end = dirs.find(':', start);
    if (end == std::string::npos) end = dirs.size();
    std::string p = dirs.substr(start, end - start) + "/" + kBinary;
    if (end > start && ::access(p.c_str(), X_OK) == 0) return p;
    start = end + 1;
  }
  throw Error(std::string(kBinary) + " not found in PATH (apt-get install slirp4netns)");
}

// slirp4netns's log as one line: what it said before it gave up.
std::string log_line(const std::string& path) {
  std::string text;
  try {
    text = read_text_file(path);
  } catch (const Error&) {
    return "";
  }
  std::string line;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    if (end > start) line += (line.empty() ? "" : "; ") + text.substr(start, end - start);
    start = end + 1;
  }
  return line;
}

}  // namespace

Holder spawn_namespace_holder() {
  std::array<int, 2> s{};
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, s.data()) < 0) throw_errno("socketpair");
  UniqueFd ours(s[0]), theirs(s[1]);
  auto [release_r, release_w] = high_pipe();
  const uid_t uid = ::geteuid();
  const gid_t gid = ::getegid();
  const pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0) throw_errno("fork");
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
    if (::getppid() != parent) ::_exit(1);
    ours.reset();
    release_w.reset();
    char step = 'U';
    if (::unshare(CLONE_NEWUSER | CLONE_NEWNET) < 0) {
      int err = errno;
      (void)::write(theirs.get(), "E", 1);
      (void)::write(theirs.get(), &err, sizeof err);
      ::_exit(1);
    }
    if (::write(theirs.get(), &step, 1) != 1 || ::read(theirs.get(), &step, 1) != 1) ::_exit(1);
    try {
      runtime::bring_up_loopback();
    } catch (const Error&) {
      ::_exit(1);
    }
    step = 'R';
    if (::write(theirs.get(), &step, 1) != 1) ::_exit(1);
    theirs.reset();
    char c;
    while (::read(release_r.get(), &c, 1) < 0 && errno == EINTR) {
    }
    ::_exit(0);
  }
  theirs.reset();
  release_r.reset();
  auto fail = [&](const std::string& why) -> Error {
    ::kill(pid, SIGKILL);
    while (::waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
    }
    return Error(why);
  };
  char step = 0;
  if (::read(ours.get(), &step, 1) != 1) throw fail("namespace holder exited");
  if (step == 'E') {
    int err = 0;
    if (::read(ours.get(), &err, sizeof err) != sizeof err) err = EPERM;
    throw fail("create a user and a network namespace: " + std::string(std::strerror(err)));
  }
  try {
    write_proc_file(pid, "setgroups", "deny");
    write_proc_file(pid, "uid_map", "0 " + std::to_string(uid) + " 1\n");
    write_proc_file(pid, "gid_map", "0 " + std::to_string(gid) + " 1\n");
  } catch (const Error& e) {
    throw fail(e.what());
  }
  step = 'M';
  if (::write(ours.get(), &step, 1) != 1 || ::read(ours.get(), &step, 1) != 1 || step != 'R')
    throw fail("the namespace holder could not bring up loopback");
  return {pid, std::move(release_w)};
}

Process start(pid_t target_pid, const std::string& netns_path, const std::string& api_socket,
              const std::string& log_path) {
  std::string binary = find_binary();
  if (api_socket.size() >= sizeof(sockaddr_un{}.sun_path))
    throw Error("slirp4netns API socket path too long: " + api_socket);
  auto [ready_r, ready_w] = high_pipe();
  auto [exit_r, exit_w] = high_pipe();
  std::vector<std::string> args = {
      binary,         "--configure", "--mtu=65520",  "--disable-host-loopback",
      "--ready-fd=3", "--exit-fd=4", "--api-socket", api_socket};
  if (target_pid == 0) {
    args.insert(args.end(), {"--netns-type=path", netns_path});
  } else {
    args.push_back(std::to_string(target_pid));
  }
  args.emplace_back("tap0");
  std::vector<char*> argv;
  argv.reserve(args.size() + 1);
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);

  posix_spawn_file_actions_t fa;
  posix_spawnattr_t attr;
  ::posix_spawn_file_actions_init(&fa);
  ::posix_spawnattr_init(&attr);
  ::posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  ::posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, log_path.c_str(),
                                     O_WRONLY | O_CREAT | O_TRUNC, 0600);
  ::posix_spawn_file_actions_adddup2(&fa, STDOUT_FILENO, STDERR_FILENO);
  ::posix_spawn_file_actions_adddup2(&fa, ready_w.get(), 3);
  ::posix_spawn_file_actions_adddup2(&fa, exit_r.get(), 4);
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  ::posix_spawnattr_setsigmask(&attr, &none);
  ::posix_spawnattr_setsigdefault(&attr, &all);
  // Its own session: a ^C meant for the container must not end the container's network.
  ::posix_spawnattr_setflags(&attr,
                             POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSID);
  pid_t pid = 0;
  int rc = ::posix_spawn(&pid, binary.c_str(), &fa, &attr, argv.data(), environ);
  ::posix_spawn_file_actions_destroy(&fa);
  ::posix_spawnattr_destroy(&attr);
  if (rc != 0) throw_errno("run " + binary, rc);
  ready_w.reset();
  exit_r.reset();
  Process p{pid, process_start_time(pid), std::move(exit_w)};

  pollfd pfd{ready_r.get(), POLLIN, 0};
  int n;
  do {
    n = ::poll(&pfd, 1, static_cast<int>(std::chrono::milliseconds(kReadyTimeout).count()));
  } while (n < 0 && errno == EINTR);
  char c = 0;
  if (n == 1 && ::read(ready_r.get(), &c, 1) == 1) return p;
  ::kill(pid, SIGKILL);
  while (::waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
  }
  std::string why = log_line(log_path);
  throw Error("slirp4netns: " +
              (n == 0        ? std::string("not ready after 10 s")
               : why.empty() ? "exited"
                             : why) +
              " (--network none runs without a network)");
}

void add_port_forward(const std::string& api_socket, const json& mapping) {
  json req = {{"execute", "add_hostfwd"},
              {"arguments",
               {{"proto", mapping.value("protocol", "tcp")},
                {"host_addr", mapping.value("hostIP", "0.0.0.0")},
                {"host_port", mapping.at("hostPort")},
                {"guest_port", mapping.at("containerPort")}}}};
  UniqueFd s(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!s.valid()) throw_errno("socket");
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, api_socket.c_str(), sizeof addr.sun_path - 1);
  if (::connect(s.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) < 0)
    throw_errno("connect to slirp4netns at " + api_socket);
  // slirp4netns takes one request per connection, in one read.
  std::string text = req.dump();
  if (::send(s.get(), text.data(), text.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(text.size()))
    throw_errno("send to slirp4netns");
  std::string reply;
  std::array<char, 4096> buf{};
  for (;;) {
    pollfd pfd{s.get(), POLLIN, 0};
    if (::poll(&pfd, 1, 5000) <= 0) throw Error("slirp4netns did not answer on " + api_socket);
    ssize_t r = ::read(s.get(), buf.data(), buf.size());
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    reply.append(buf.data(), static_cast<size_t>(r));
  }
  json j = json::parse(reply, nullptr, false);
  if (j.is_object() && j.contains("return")) return;
  std::string desc = j.is_object() && j.contains("error") ? j["error"].value("desc", reply) : reply;
  throw Error("slirp4netns cannot forward port " + mapping.at("hostPort").dump() + ": " + desc);
}

void stop(pid_t pid, uint64_t start_time) {
  if (pid <= 0) return;
  if (process_start_time(pid) == start_time) ::kill(pid, SIGKILL);
  // Reaped here when this process started it (it may have ended already, when its exit fd
  // closed); someone else's child is not ours to wait for (ECHILD at once).
  for (int i = 0; i < 100; ++i) {
    pid_t r = ::waitpid(pid, nullptr, WNOHANG);
    if (r != 0 && !(r < 0 && errno == EINTR)) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

}  // namespace cidrun::cli::slirp
