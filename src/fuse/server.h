// Serving a LazyTree to the kernel over a FUSE connection (libfuse3's low-level API, several
// threads, so a read that waits for the network never stalls the others).
//
// The connection is opened and mounted by someone else (the holder, fuse/holder.h) and passed in
// as a descriptor: the holder keeps its own copy, so the connection, the mount and every
// container using it outlive this server. A server that crashed or was stopped for an upgrade is
// replaced by a new one on the same descriptor: it replays the inode journal (so every inode
// number the kernel holds means the same file), feeds libfuse the INIT request the kernel sent
// the first server (saved by that server; the kernel sends INIT once per mount), swallows the
// reply, and asks the kernel (FUSE_NOTIFY_RESEND, Linux 6.9+) to send again the requests the
// dead server had read but not answered. A container reading through the mount sees a delay,
// never an error.
//
// The mount is read-only and shows contents that never change: the kernel may cache entries,
// attributes, symlink targets, negative lookups and file pages for as long as it likes
// (FOPEN_KEEP_CACHE: the page cache survives closing and reopening a file).
#pragma once

#include <functional>
#include <string>

#include "fuse/lazy_tree.h"

namespace cidrun::fuse {

struct ServerOptions {
  int fuse_fd = -1;       // the /dev/fuse connection, already mounted
  std::string state_dir;  // where the journal and the saved INIT live
  bool restart = false;   // a successor of a server that served this connection before
  unsigned max_threads = 32;
  std::function<void()> on_ready;  // called once requests are being answered
};

// The journal's file, and reading it back (for replay).
std::string journal_path(const std::string& state_dir);
std::vector<std::pair<uint64_t, uint64_t>> read_journal(const std::string& state_dir);
// A LazyTree journal callback that appends to the state directory's journal.
LazyTree::Journal journal_writer(const std::string& state_dir);

// Serves until the kernel ends the connection (the filesystem was unmounted and its last user
// is gone) or stop_server() is called; returns 0 then. Throws Error when the session cannot be
// set up (a restart without a saved INIT, a journal that does not match).
int serve(LazyTree& tree, const ServerOptions& opts);

// Asks a running serve() to return (from a signal handler or another thread).
void stop_server();

}  // namespace cidrun::fuse
