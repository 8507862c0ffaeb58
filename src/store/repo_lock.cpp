#include "store/repo_lock.h"

#include <fcntl.h>
#include <sys/file.h>

#include <cerrno>

#include "store/repo.h"
#include "util/error.h"

namespace cidrun {

RepoLock::RepoLock(const Repo& repo, Mode mode, bool wait) : mode_(mode) {
  std::string path = repo.dir("repo.lock");
  fd_.reset(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (!fd_.valid()) throw_errno("open lock " + path);
  int op = (mode == Mode::kShared ? LOCK_SH : LOCK_EX) | (wait ? 0 : LOCK_NB);
  while (::flock(fd_.get(), op) != 0) {
    if (errno == EINTR) continue;
    if (errno == EWOULDBLOCK) {
      throw Error("repository " + repo.path() + " is busy: " +
                  (mode == Mode::kShared ? "garbage collection is running"
                                         : "another operation is writing to it"));
    }
    throw_errno("lock " + path);
  }
}

}  // namespace cidrun
