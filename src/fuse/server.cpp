#define FUSE_USE_VERSION 312
#include "fuse/server.h"

#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <linux/fuse.h>
#include <sys/statvfs.h>
#include <sys/uio.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <mutex>

#include "util/error.h"
#include "util/fd.h"
#include "util/log.h"
#include "util/quote.h"

namespace cidrun::fuse {
namespace {

// Linux 6.9's notification asking the kernel to queue again every request a server read but
// did not answer (include/uapi/linux/fuse.h, FUSE_NOTIFY_RESEND; Debian 12's headers predate it).
constexpr int32_t kNotifyResend = 7;
// The unique id of the INIT a successor replays: requests the kernel makes have even ids that
// count up from 2, so this one is never the kernel's.
constexpr uint64_t kReplayUnique = 0xfffffffffffffff0ULL;

constexpr double kForever = 86400.0 * 365;  // contents never change

struct Server {
  LazyTree* tree = nullptr;
  const ServerOptions* opts = nullptr;
  fuse_session* session = nullptr;
  std::atomic<bool> capture_init{false};
  std::mutex init_mu;
  Bytes replay_init;  // a successor's INIT, handed to libfuse by the first read
  std::atomic<bool> ready_sent{false};
};

Server* g_server = nullptr;
std::atomic<fuse_session*> g_session{nullptr};

std::string init_path(const std::string& state_dir) {
  return state_dir + "/fuse-init";
}

void notify_ready(Server& s) {
  if (!s.ready_sent.exchange(true) && s.opts->on_ready) s.opts->on_ready();
}

ssize_t io_read(int fd, void* buf, size_t len, void* userdata) {
  auto* s = static_cast<Server*>(userdata);
  {
    std::lock_guard l(s->init_mu);
    if (!s->replay_init.empty()) {
      size_t n = std::min(len, s->replay_init.size());
      std::memcpy(buf, s->replay_init.data(), n);
      s->replay_init.clear();
      return static_cast<ssize_t>(n);
    }
  }
  ssize_t n = ::read(fd, buf, len);
  if (n >= static_cast<ssize_t>(sizeof(fuse_in_header)) && s->capture_init.load()) {
    fuse_in_header h{};
    std::memcpy(&h, buf, sizeof h);
    if (h.opcode == FUSE_INIT && s->capture_init.exchange(false)) {
      // The kernel sends INIT once per mount: a successor needs these bytes to set libfuse up
      // the same way.
      try {
        write_file_atomic(init_path(s->opts->state_dir),
                          ByteView(static_cast<const uint8_t*>(buf), static_cast<size_t>(n)),
                          /*durable=*/false, 0600);
      } catch (const Error& e) {
        log::warn("cannot save the FUSE INIT request (a restart would fail): " +
                  std::string(e.what()));
      }
    }
  }
  return n;
}

void send_resend(int fd);

ssize_t io_writev(int fd, struct iovec* iov, int count, void* userdata) {
  auto* s = static_cast<Server*>(userdata);
  if (count > 0 && iov[0].iov_len >= sizeof(fuse_out_header)) {
    fuse_out_header h{};
    std::memcpy(&h, iov[0].iov_base, sizeof h);
    if (h.unique == kReplayUnique) {
      // The replayed INIT's answer (the kernel has one already). libfuse writes it last, once
      // the session is set up, so only now may the requests the dead server held come back.
      send_resend(fd);
      notify_ready(*s);
      size_t total = 0;
      for (int i = 0; i < count; ++i) total += iov[i].iov_len;
      return static_cast<ssize_t>(total);
    }
  }
  return ::writev(fd, iov, count);
}

Server& server_of(fuse_req_t req) {
  return *static_cast<Server*>(fuse_req_userdata(req));
}

// Every failure is EIO for the caller and one line in the server's log naming what failed.
// The kernel asks again at once after a failed read (its read-ahead, then the page itself), and
// programs retry: the same line again within kRepeatQuiet is left out.
void reply_failure(fuse_req_t req, const char* op, uint64_t ino, const std::exception& e) {
  constexpr auto kRepeatQuiet = std::chrono::seconds(10);
  static std::mutex mu;
  static std::string last;
  static std::chrono::steady_clock::time_point last_at;
  std::string line = std::string(op) + " of inode " + std::to_string(ino) + ": " + e.what();
  auto now = std::chrono::steady_clock::now();
  {
    std::lock_guard l(mu);
    if (line != last || now - last_at > kRepeatQuiet) {
      log::error(line);
      last = std::move(line);
      last_at = now;
    }
  }
  fuse_reply_err(req, EIO);
}

void op_init(void* userdata, fuse_conn_info* conn) {
  auto* s = static_cast<Server*>(userdata);
  conn->max_readahead = 1u << 20;
  conn->max_background = 64;
  conn->want |= FUSE_CAP_CACHE_SYMLINKS;
  if (s->tree->is_image()) {
    conn->want |= FUSE_CAP_READDIRPLUS;
  } else {
    // A plain tree's readdirplus would read every file's node to learn its type and size.
    conn->want &= ~FUSE_CAP_READDIRPLUS;
  }
  conn->want &= ~(FUSE_CAP_SPLICE_READ | FUSE_CAP_SPLICE_WRITE | FUSE_CAP_SPLICE_MOVE);
  if (!s->opts->restart) notify_ready(*s);
}

fuse_entry_param entry_of(LazyTree& t, uint64_t ino) {
  fuse_entry_param e{};
  e.ino = ino;
  e.generation = 1;
  e.attr = t.attr(ino);
  e.attr_timeout = kForever;
  e.entry_timeout = kForever;
  return e;
}

void op_lookup(fuse_req_t req, fuse_ino_t parent, const char* name) {
  LazyTree& t = *server_of(req).tree;
  try {
    if (!t.is_dir(parent)) {
      fuse_reply_err(req, ENOTDIR);
      return;
    }
    auto ino = t.lookup(parent, name);
    if (!ino) {
      fuse_entry_param e{};  // a negative entry the kernel may keep: names never appear
      e.entry_timeout = kForever;
      fuse_reply_entry(req, &e);
      return;
    }
    fuse_entry_param e = entry_of(t, *ino);
    fuse_reply_entry(req, &e);
  } catch (const std::exception& e) {
    reply_failure(req, "lookup", parent, e);
  }
}

void op_forget(fuse_req_t req, fuse_ino_t, uint64_t) {
  fuse_reply_none(req);  // inodes are kept: numbers must stay stable for a successor
}

void op_forget_multi(fuse_req_t req, size_t, fuse_forget_data*) {
  fuse_reply_none(req);
}

void op_getattr(fuse_req_t req, fuse_ino_t ino, fuse_file_info*) {
  try {
    struct stat st = server_of(req).tree->attr(ino);
    fuse_reply_attr(req, &st, kForever);
  } catch (const std::exception& e) {
    reply_failure(req, "getattr", ino, e);
  }
}

void op_readlink(fuse_req_t req, fuse_ino_t ino) {
  try {
    std::string target = server_of(req).tree->readlink(ino);
    fuse_reply_readlink(req, target.c_str());
  } catch (const std::exception& e) {
    reply_failure(req, "readlink", ino, e);
  }
}

void op_open(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  if ((fi->flags & O_ACCMODE) != O_RDONLY) {
    fuse_reply_err(req, EROFS);
    return;
  }
  try {
    if (server_of(req).tree->is_dir(ino)) {
      fuse_reply_err(req, EISDIR);
      return;
    }
    fi->keep_cache = 1;  // the same bytes forever: keep the page cache across opens
    fi->noflush = 1;
    fuse_reply_open(req, fi);
  } catch (const std::exception& e) {
    reply_failure(req, "open", ino, e);
  }
}

void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info*) {
  thread_local Bytes buf;
  try {
    if (buf.size() < size) buf.resize(size);
    size_t n = server_of(req).tree->read(ino, static_cast<uint64_t>(off), buf.data(), size);
    fuse_reply_buf(req, reinterpret_cast<const char*>(buf.data()), n);
  } catch (const std::exception& e) {
    reply_failure(req, "read", ino, e);
  }
}

void op_release(fuse_req_t req, fuse_ino_t, fuse_file_info*) {
  fuse_reply_err(req, 0);
}

// Directory offsets are positions in the sorted listing (0 ".", 1 "..", then the names), so a
// successor server resumes a listing a dead one started.
void fill_dir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, bool plus) {
  LazyTree& t = *server_of(req).tree;
  try {
    // Only the names that can fit: each takes at least a header and a padded byte of name.
    constexpr size_t kMinDirent = 32;
    size_t first = off > 2 ? static_cast<size_t>(off) - 2 : 0;
    std::vector<Entry> entries = t.list(ino, first, size / kMinDirent + 1);
    std::string buf(size, '\0');
    size_t used = 0;
    auto total = static_cast<off_t>(first + entries.size() + 2);
    for (off_t i = off; i < total; ++i) {
      std::string name;
      struct stat st {};
      fuse_entry_param ep{};
      if (i == 0) {
        name = ".";
        st.st_ino = ino;
        st.st_mode = S_IFDIR;
      } else if (i == 1) {
        name = "..";
        st.st_ino = ino;  // the kernel answers ".." itself
        st.st_mode = S_IFDIR;
      } else {
        const Entry& e = entries[static_cast<size_t>(i - 2) - first];
        name = e.name;
        if (plus) {
          auto real = t.lookup(ino, e.name);  // a hard link's name is its group's inode
          ep = entry_of(t, real.value_or(e.ino));
          st = ep.attr;
        } else {
          st.st_ino = e.ino;
          st.st_mode = e.type;
        }
      }
      size_t need;
      if (plus && i >= 2) {
        need =
            fuse_add_direntry_plus(req, buf.data() + used, size - used, name.c_str(), &ep, i + 1);
      } else if (plus) {
        fuse_entry_param dot{};
        dot.attr = st;
        need =
            fuse_add_direntry_plus(req, buf.data() + used, size - used, name.c_str(), &dot, i + 1);
      } else {
        need = fuse_add_direntry(req, buf.data() + used, size - used, name.c_str(), &st, i + 1);
      }
      if (need > size - used) break;
      used += need;
    }
    fuse_reply_buf(req, buf.data(), used);
  } catch (const std::exception& e) {
    reply_failure(req, "readdir", ino, e);
  }
}

void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info*) {
  fill_dir(req, ino, size, off, false);
}

void op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info*) {
  fill_dir(req, ino, size, off, true);
}

void op_statfs(fuse_req_t req, fuse_ino_t) {
  struct statvfs sv {};
  sv.f_bsize = 4096;
  sv.f_frsize = 4096;
  sv.f_files = server_of(req).tree->inode_count();
  sv.f_namemax = 255;
  sv.f_flag = ST_RDONLY;
  fuse_reply_statfs(req, &sv);
}

void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char* name, size_t size) {
  try {
    auto v = server_of(req).tree->getxattr(ino, name);
    if (!v) {
      fuse_reply_err(req, ENODATA);
    } else if (size == 0) {
      fuse_reply_xattr(req, v->size());
    } else if (size < v->size()) {
      fuse_reply_err(req, ERANGE);
    } else {
      fuse_reply_buf(req, reinterpret_cast<const char*>(v->data()), v->size());
    }
  } catch (const std::exception& e) {
    reply_failure(req, "getxattr", ino, e);
  }
}

void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size) {
  try {
    std::string all;
    for (const auto& n : server_of(req).tree->listxattr(ino)) {
      all += n;
      all += '\0';
    }
    if (size == 0) {
      fuse_reply_xattr(req, all.size());
    } else if (size < all.size()) {
      fuse_reply_err(req, ERANGE);
    } else {
      fuse_reply_buf(req, all.data(), all.size());
    }
  } catch (const std::exception& e) {
    reply_failure(req, "listxattr", ino, e);
  }
}

const fuse_lowlevel_ops kOps = [] {
  fuse_lowlevel_ops ops{};
  ops.init = op_init;
  ops.lookup = op_lookup;
  ops.forget = op_forget;
  ops.forget_multi = op_forget_multi;
  ops.getattr = op_getattr;
  ops.readlink = op_readlink;
  ops.open = op_open;
  ops.read = op_read;
  ops.release = op_release;
  ops.readdir = op_readdir;
  ops.readdirplus = op_readdirplus;
  ops.statfs = op_statfs;
  ops.getxattr = op_getxattr;
  ops.listxattr = op_listxattr;
  return ops;
}();

void send_resend(int fd) {
  fuse_out_header h{};
  h.len = sizeof h;
  h.error = kNotifyResend;
  h.unique = 0;
  if (::write(fd, &h, sizeof h) != static_cast<ssize_t>(sizeof h)) {
    // Older kernels refuse the notification: requests the dead server held stay unanswered.
    log::warn(std::string("the kernel did not take FUSE_NOTIFY_RESEND (") + std::strerror(errno) +
              "): reads the previous server had started may hang");
  }
}

}  // namespace

std::string journal_path(const std::string& state_dir) {
  return state_dir + "/inodes";
}

std::vector<std::pair<uint64_t, uint64_t>> read_journal(const std::string& state_dir) {
  std::vector<std::pair<uint64_t, uint64_t>> out;
  std::string text;
  try {
    text = read_text_file(journal_path(state_dir));
  } catch (const Error&) {
    return out;
  }
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string::npos) break;  // a torn last line: that load was never answered
    unsigned long long dir = 0;
    unsigned long long first = 0;
    if (std::sscanf(text.c_str() + pos, "%llu %llu", &dir, &first) == 2)
      out.emplace_back(dir, first);
    pos = nl + 1;
  }
  return out;
}

LazyTree::Journal journal_writer(const std::string& state_dir) {
  auto fd = std::make_shared<UniqueFd>(
      ::open(journal_path(state_dir).c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600));
  if (!fd->valid()) throw_errno("open " + journal_path(state_dir));
  return [fd](uint64_t dir, uint64_t first) {
    std::string line = std::to_string(dir) + " " + std::to_string(first) + "\n";
    // One write per line, before the numbers reach the kernel: a successor never sees a number
    // the journal lacks.
    if (::write(fd->get(), line.data(), line.size()) != static_cast<ssize_t>(line.size())) {
      throw_errno("write the inode journal");
    }
  };
}

void stop_server() {
  if (fuse_session* s = g_session.load()) fuse_session_exit(s);
}

int serve(LazyTree& tree, const ServerOptions& opts) {
  Server s;
  s.tree = &tree;
  s.opts = &opts;
  if (opts.restart) {
    Bytes init = read_file(init_path(opts.state_dir));
    if (init.size() < sizeof(fuse_in_header)) throw Error("no saved FUSE INIT to restart from");
    fuse_in_header h{};
    std::memcpy(&h, init.data(), sizeof h);
    h.unique = kReplayUnique;
    std::memcpy(init.data(), &h, sizeof h);
    s.replay_init = std::move(init);
  } else {
    s.capture_init = true;
  }
  const char* argv[] = {"cidrun", nullptr};
  fuse_args args = FUSE_ARGS_INIT(1, const_cast<char**>(argv));
  fuse_session* se = fuse_session_new(&args, &kOps, sizeof kOps, &s);
  if (!se) throw Error("fuse_session_new failed");
  s.session = se;
  g_server = &s;
  g_session = se;
  fuse_custom_io io{};
  io.read = io_read;
  io.writev = io_writev;
  int fd = ::fcntl(opts.fuse_fd, F_DUPFD_CLOEXEC, 3);  // the session closes its own copy
  if (fd < 0 || fuse_session_custom_io(se, &io, fd) != 0) {
    fuse_session_destroy(se);
    throw Error("cannot attach to the FUSE connection");
  }
  fuse_loop_config* cfg = fuse_loop_cfg_create();
  fuse_loop_cfg_set_max_threads(cfg, opts.max_threads);
  fuse_loop_cfg_set_idle_threads(cfg, 4);
  int rc = fuse_session_loop_mt(se, cfg);
  fuse_loop_cfg_destroy(cfg);
  g_session = nullptr;
  fuse_session_destroy(se);
  g_server = nullptr;
  return rc < 0 ? 1 : 0;
}

}  // namespace cidrun::fuse
