#include "store/lease.h"

#include <dirent.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <memory>
#include <sstream>

#include "store/repo.h"
#include "util/error.h"
#include "util/fd.h"
#include "util/proc.h"
#include "util/random.h"

namespace cidrun {
namespace {

bool owner_alive(pid_t pid, unsigned long long start) {
  if (pid <= 0) return false;
  if (::kill(pid, 0) != 0 && errno != EPERM) return false;
  unsigned long long now = process_start_time(pid);
  // Without a recorded start time (or /proc) fall back to the pid check alone.
  return start == 0 || now == 0 || now == start;
}

}  // namespace

Lease::Lease(const Repo& repo, const Cid& root, pid_t owner) {
  if (owner == 0) owner = ::getpid();
  std::string dir = repo.dir("leases");
  make_dirs(dir, 0700);
  path_ = dir + "/" + std::to_string(owner) + "-" + std::to_string(random_u64());
  std::string text = root.str() + "\n" + std::to_string(owner) + " " +
                     std::to_string(process_start_time(owner)) + "\n";
  write_file_atomic(path_, as_bytes(text), /*durable=*/false, 0600);
}

Lease::~Lease() {
  if (!path_.empty()) ::unlink(path_.c_str());
}

std::vector<LeaseInfo> Lease::list(const Repo& repo) {
  std::vector<LeaseInfo> out;
  std::string dir = repo.dir("leases");
  std::unique_ptr<DIR, int (*)(DIR*)> dp(::opendir(dir.c_str()), ::closedir);
  if (!dp) return out;
  while (dirent* e = ::readdir(dp.get())) {
    if (e->d_name[0] == '.' ||
        std::string_view(e->d_name).find(".tmp-") != std::string_view::npos) {
      continue;
    }
    LeaseInfo info;
    info.file = dir + "/" + e->d_name;
    try {
      std::istringstream in(read_text_file(info.file));
      std::string cid;
      long pid = 0;
      unsigned long long start = 0;
      if (!(in >> cid >> pid)) continue;
      in >> start;
      info.root = Cid::parse(cid);
      info.pid = static_cast<pid_t>(pid);
      info.live = owner_alive(info.pid, start);
    } catch (const Error&) {
      continue;  // removed while we read it, or not a lease
    }
    out.push_back(std::move(info));
  }
  return out;
}

size_t Lease::remove_stale(const Repo& repo) {
  size_t n = 0;
  for (const auto& l : list(repo)) {
    if (!l.live && ::unlink(l.file.c_str()) == 0) ++n;
  }
  return n;
}

size_t Lease::remove_owned_by(const Repo& repo, pid_t pid) {
  size_t n = 0;
  for (const auto& l : list(repo)) {
    if (l.pid == pid && ::unlink(l.file.c_str()) == 0) ++n;
  }
  return n;
}

}  // namespace cidrun
