// cidrun push: hand a whole DAG to another place. To a kubo daemon: one streamed CAR through
// `dag/import` (pinned there, as kubo's pin-roots default does); to a file: a CARv1.
// Missing local blocks are fetched from the configured sources first (open_store_with_sources).
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <nlohmann/json.hpp>
#include <thread>

#include "cli/command.h"
#include "exchange/fetching_store.h"
#include "exchange/sources.h"
#include "ipld/car.h"
#include "net/http_client.h"
#include "store/repo.h"
#include "unixfs/reader.h"
#include "util/error.h"
#include "util/fd.h"
#include "util/json_depth.h"

namespace cidrun::cli {
namespace {

struct PushFlags {
  std::string cid;
  std::string to;
  bool quiet = false;
};

// Writes the DAG below root as a CARv1 (DFS pre-order, no duplicates: kubo's dag export order).
uint64_t write_car(BlockStore& store, const Cid& root, int fd, const std::string& name) {
  car::Writer w(fd, {root}, name);
  unixfs::walk_dag(store, root, [&](const Cid& c, ByteView data) {
    w.add(c, data);
    return true;
  });
  w.flush();
  return w.blocks();
}

uint64_t push_to_file(BlockStore& store, const Cid& root, const std::string& path) {
  std::string tmp = path + ".tmp-" + std::to_string(::getpid());
  UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (!fd.valid()) throw_errno("create " + tmp);
  try {
    uint64_t n = write_car(store, root, fd.get(), path);
    if (::fsync(fd.get()) != 0) throw_errno("fsync " + tmp);
    if (::rename(tmp.c_str(), path.c_str()) != 0) throw_errno("rename to " + path);
    return n;
  } catch (...) {
    ::unlink(tmp.c_str());
    throw;
  }
}

// The daemon's PinErrorMsg for one root as our error.
Error pin_failed(const std::string& base, const std::string& cid, const std::string& why) {
  return Error("push to " + base + ": pinning " + cid + " failed: " + why);
}

uint64_t push_to_kubo(BlockStore& store, const Cid& root, const std::string& base) {
  // The CAR is produced by a thread into a pipe and read by the HTTP client as the upload body, so
  // it is streamed: never more than a pipe's worth of it in memory.
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) throw_errno("pipe");
  UniqueFd rd(p[0]), wr(p[1]);
  ::signal(SIGPIPE, SIG_IGN);  // an aborted upload must surface as EPIPE, not kill us
  uint64_t blocks = 0;
  std::exception_ptr produce_error;
  std::thread producer([&] {
    try {
      blocks = write_car(store, root, wr.get(), "dag/import upload");
    } catch (...) {
      produce_error = std::current_exception();
    }
    wr.reset();  // EOF for the reader
  });
  http::Request req;
  req.method = "POST";
  req.url = base + "/api/v0/dag/import?pin-roots=true";
  // kubo answers only once it has imported and pinned everything, and may pause while it pins.
  req.stall_secs = 120;
  req.head_timeout_ms = 30 * 60'000;
  req.upload = [&](uint8_t* buf, size_t len) { return read_full(rd.get(), buf, len, "CAR pipe"); };
  http::Response r = http::Client::shared().perform(req);
  rd.reset();  // unblocks the producer if the upload stopped early
  producer.join();
  if (produce_error) std::rethrow_exception(produce_error);
  if (!r.ok()) throw Error("push to " + base + ": " + r.describe());
  // ndjson: {"Root":{"Cid":{"/":...},"PinErrorMsg":""}} per root (+ optional Stats).
  std::string_view body = as_string(r.body);
  bool pinned = false;
  size_t pos = 0;
  while (pos < body.size()) {
    size_t nl = body.find('\n', pos);
    std::string_view line =
        body.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
    pos = nl == std::string_view::npos ? body.size() : nl + 1;
    if (line.empty() || json_nesting(line) > kMaxJsonNesting) continue;
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.contains("Root")) continue;
    std::string cid = j["Root"]["Cid"].value("/", "");
    std::string err = j["Root"].value("PinErrorMsg", "");
    if (!err.empty()) throw pin_failed(base, cid, err);
    if (!cid.empty() && Cid::parse(cid) == root) pinned = true;
  }
  if (!pinned)
    throw Error("push to " + base + ": the daemon did not report " + root.str() + " as imported");
  return blocks;
}

int run_push(const PushFlags& f, const Globals& g) {
  Cid root = Cid::parse(f.cid);
  auto repo = Repo::open(repo_path(g));
  auto store = exchange::open_store_with_sources(*repo, {});
  uint64_t blocks = 0;
  std::string where = f.to;
  if (f.to.rfind("car:", 0) == 0) {
    blocks = push_to_file(*store, root, f.to.substr(4));
  } else {
    std::string url = f.to;
    if (url == "kubo") url = exchange::find_local_kubo();
    if (url.empty()) throw Error("--to kubo: no running daemon ($IPFS_PATH/api or ~/.ipfs/api)");
    std::string base;
    if (url.rfind("kubo+", 0) == 0)
      base = url.substr(5);
    else if (url.rfind("/ip", 0) == 0 || url.rfind("/dns", 0) == 0)
      base = exchange::multiaddr_to_http(url);
    if (base.empty())
      throw Error("--to " + f.to +
                  ": use kubo+http://HOST:PORT, an API multiaddr, kubo, or car:FILE");
    while (!base.empty() && base.back() == '/') base.pop_back();
    blocks = push_to_kubo(*store, root, base);
  }
  if (!f.quiet)
    std::printf("pushed %s: %llu blocks to %s\n", root.str().c_str(),
                static_cast<unsigned long long>(blocks), where.c_str());
  return 0;
}

const Registrar reg("push", [](Command& app, Globals& g) {
  auto f = std::make_shared<PushFlags>();
  auto cmd = app.add_subcommand(
      "push", "Send a whole DAG to a kubo daemon (dag/import, pinned) or a CAR file");
  cmd.add_option("cid", f->cid, "Root CID").required();
  cmd.add_option("--to", f->to, "kubo+http://HOST:PORT, /ip4/H/tcp/P, kubo, or car:FILE")
      .required();
  cmd.add_flag("-q,--quiet", f->quiet, "Print nothing on success");
  cmd.callback([f, &g] { g.exit_code = run_push(*f, g); });
});

}  // namespace
}  // namespace cidrun::cli
