#include "cli/detach.h"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <array>
#include <cerrno>

#include "cli/image_root.h"
#include "util/error.h"
#include "util/fd.h"
#include "util/log.h"
#include "util/proc.h"

namespace cidrun::cli {
namespace {

// Puts /dev/null on the standard streams for as long as it lives (what the container inherits),
// then gives the caller's back.
class NullStdio {
 public:
  NullStdio() {
    UniqueFd null(::open("/dev/null", O_RDWR | O_CLOEXEC));
    if (!null.valid()) throw_errno("open /dev/null");
    for (int fd = 0; fd < 3; ++fd) {
      saved_.at(fd).reset(::fcntl(fd, F_DUPFD_CLOEXEC, 3));
      if (::dup2(null.get(), fd) < 0) throw_errno("dup2 /dev/null");
    }
  }
  ~NullStdio() {
    for (int fd = 0; fd < 3; ++fd)
      if (saved_.at(fd).valid()) ::dup2(saved_.at(fd).get(), fd);
  }
  NullStdio(const NullStdio&) = delete;
  NullStdio& operator=(const NullStdio&) = delete;

 private:
  std::array<UniqueFd, 3> saved_;
};

[[noreturn]] void monitor(const runtime::LaunchOptions& lo, pid_t init,
                          std::unique_ptr<ContainerNetwork>& net, bool remove) {
  ::setsid();
  // Nothing of the caller's may stay open here: `id=$(cidrun run -d ...)` waits for its stdout.
  UniqueFd null(::open("/dev/null", O_RDWR | O_CLOEXEC));
  for (int fd = 0; fd < 3; ++fd) ::dup2(null.get(), fd);
  UniqueFd pidfd = open_pidfd(init);
  if (pidfd.valid()) {
    pollfd p{pidfd.get(), POLLIN, 0};
    while (::poll(&p, 1, -1) < 0 && errno == EINTR) {
    }
  }
  try {
    if (net) net->teardown();
  } catch (const Error& e) {
    log::warn("network teardown of " + lo.id + ": " + e.what());
  }
  if (remove) {
    try {
      runtime::delete_container(lo.state_root, lo.id, /*force=*/true);
    } catch (const Error& e) {
      log::warn("--rm of " + lo.id + ": " + e.what());
    }
  }
  // Not exit(): the destructors of what the parent owns (its image lease) are the parent's.
  ::_exit(0);
}

}  // namespace

void run_detached(const runtime::LaunchOptions& lo, std::unique_ptr<ContainerNetwork>& net,
                  bool remove) {
  pid_t init = 0;
  {
    NullStdio null;
    init = runtime::create_container(lo);
  }
  try {
    runtime::start_container(lo.state_root, lo.id);
  } catch (const Error&) {
    try {
      runtime::delete_container(lo.state_root, lo.id, /*force=*/true);
    } catch (const Error& e) {
      log::warn(e.what());
    }
    throw;
  }
  // The image stays leased for as long as the container's init lives.
  hand_image_root_to(init);
  if (net) net->container_started();
  if (!net && !remove) return;
  pid_t m = ::fork();
  if (m < 0) throw_errno("fork the monitor of " + lo.id);
  if (m == 0) monitor(lo, init, net, remove);
  if (net) net->hand_over();
}

}  // namespace cidrun::cli
