#include "cli/netns.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <thread>

#include "runtime/namespaces.h"
#include "util/error.h"
#include "util/fd.h"

namespace cidrun::cli {

void create_pinned_netns(const std::string& path) {
  UniqueFd file(::open(path.c_str(), O_CREAT | O_EXCL | O_RDONLY | O_CLOEXEC, 0444));
  if (!file.valid()) throw_errno("create " + path);
  file.reset();
  // A network namespace belongs to a thread, not to the whole process: a thread of our own
  // enters the new one, pins it and ends, and no fork of this process is needed.
  std::string error;
  std::thread([&] {
    try {
      if (::unshare(CLONE_NEWNET) < 0) throw_errno("create a network namespace");
      runtime::bring_up_loopback();
      if (::mount("/proc/thread-self/ns/net", path.c_str(), nullptr, MS_BIND, nullptr) < 0)
        throw_errno("pin the network namespace at " + path);
    } catch (const Error& e) {
      error = e.what();
    }
  }).join();
  if (!error.empty()) {
    ::unlink(path.c_str());
    throw Error(error);
  }
}

void remove_pinned_netns(const std::string& path) {
  if (::umount2(path.c_str(), MNT_DETACH) < 0 && errno != EINVAL && errno != ENOENT)
    throw_errno("unpin the network namespace at " + path);
  if (::unlink(path.c_str()) < 0 && errno != ENOENT) throw_errno("remove " + path);
}

}  // namespace cidrun::cli
