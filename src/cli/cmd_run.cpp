// `cidrun run [OPTIONS] ROOT [--] [CMD...]`: ROOT is a bundle directory (config.json + rootfs/),
// a root filesystem directory, or (through image_root.h) a CID, which runs on a fresh overlay.
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <memory>
#include <unordered_set>

#include "cli/command.h"
#include "cli/content_store.h"
#include "cli/detach.h"
#include "cli/image_config.h"
#include "cli/image_root.h"
#include "cli/network.h"
#include "cli/process_flags.h"
#include "cli/roots.h"
#include "cli/run_bundle.h"
#include "image/image.h"
#include "ipld/dagpb.h"
#include "runtime/cgroups.h"
#include "runtime/container.h"
#include "runtime/default_spec.h"
#include "runtime/run_options.h"
#include "runtime/self_protect.h"
#include "runtime/spec.h"
#include "store/repo.h"
#include "unixfs/reader.h"
#include "util/error.h"
#include "util/fd.h"
#include "util/log.h"
#include "util/random.h"

namespace cidrun::cli {
namespace {

struct RunFlags {
  runtime::RunOverrides o;
  ProcessFlags p;
  NetworkFlags net;
  bool interactive = false;
  bool rm = false;
  bool detach = false;
  bool no_cgroup = false;
  std::string name;
  std::string config_file;
  std::string root;
  BundleRunFlags runc_form;
  std::string entrypoint;
  Option entrypoint_opt;
  bool lazy = false;
  bool no_checkout = false;
  bool no_fill = false;
  std::string record;  // trace: the file the lazy mount's server notes reads in
};

bool is_dir(const std::string& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

std::string random_id() {
  static const char* hex = "0123456789abcdef";
  std::uint64_t r = random_u64();
  std::string id;
  for (int i = 0; i < 12; ++i, r >>= 4) id += hex[r % 16];
  return id;
}

// podman's --entrypoint: a JSON list of words, or one program.
std::vector<std::string> parse_entrypoint(const std::string& text) {
  if (!text.empty() && text[0] == '[') {
    auto j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
    std::vector<std::string> words;
    if (j.is_array()) {
      for (const auto& w : j) {
        if (!w.is_string()) break;
        words.push_back(w.get<std::string>());
      }
      if (words.size() == j.size()) return words;
    }
    throw Error("--entrypoint: not a JSON list of strings");
  }
  if (text.empty()) return {};
  return {text};
}

void run(RunFlags& f, const Command& sub, Globals& g) {
  // "ROOT -- CMD..." fills the command positional; "ROOT CMD..." stops option parsing at CMD.
  f.o.args = command_of(f.p, sub);
  if (!f.runc_form.bundle.empty()) {
    if (!f.o.args.empty()) throw Error("run -b BUNDLE ID takes no command: the bundle's is run");
    g.exit_code = run_bundle(f.runc_form, f.root, f.detach, f.p.preserve_fds, g);
    return;
  }

  runtime::LaunchOptions lo;
  std::string dir = f.root;
  bool bundle = false;
  std::optional<nlohmann::json> image_config;
  if (is_dir(f.root)) {
    dir = std::filesystem::absolute(f.root).lexically_normal().string();
    bundle = ::access((dir + "/config.json").c_str(), F_OK) == 0;
  } else {
    // The lazy mount's users are processes the holder watches; a detached container outlives run.
    if ((f.lazy || f.no_checkout) && f.detach) {
      throw Error(std::string(f.lazy ? "--lazy" : "--no-checkout") +
                  " with -d is not supported yet: mount the root, then run the mountpoint");
    }
    bool mounted = f.lazy || f.no_checkout;
    if (mounted) {
      dir = resolve_lazy_root(g, f.root, !f.no_fill, image_config, f.record,
                              f.no_checkout ? MountWhen::kAlways : MountWhen::kIfMissing);
    }
    if (!mounted || dir.empty()) dir = resolve_image_root(g, f.root, bundle, image_config);
    lo.lower_dirs = {bundle ? dir + "/rootfs" : dir};
  }
  std::string rootfs = bundle ? dir + "/rootfs" : dir;

  nlohmann::json config;
  std::string where;
  if (!f.config_file.empty()) {
    where = f.config_file;
    std::string text = read_text_file(f.config_file);
    config = runtime::parse_spec_text(text, where).raw;
    config["root"]["path"] = rootfs;
  } else if (bundle) {
    where = dir + "/config.json";
    runtime::Spec bs = runtime::load_bundle_spec(dir);
    config = bs.raw;
    config["root"]["path"] = lo.lower_dirs.empty() ? bs.root_path : rootfs;
  } else {
    where = "default config";
    runtime::DefaultSpecOptions dso;
    // Not root: runc spec --rootless's config (a user namespace mapping us to root, no cgroup
    // unless one is delegated), so `run` works the same for any user.
    if (::geteuid() != 0) {
      dso.rootless = true;
      dso.host_uid = ::geteuid();
      dso.host_gid = ::getegid();
    }
    config = runtime::default_spec(dso);
    config["root"]["path"] = rootfs;
    // A directory given to run is the container's own, as with nsinit/runc: writable unless asked.
    config["root"]["readonly"] = false;
    if (image_config) {
      std::optional<std::vector<std::string>> entrypoint;
      if (f.entrypoint_opt.count() > 0) entrypoint = parse_entrypoint(f.entrypoint);
      apply_image_config(config, *image_config, f.o, entrypoint);
    }
  }
  NetworkPlan net_plan = plan_network(f.net, bundle || !f.config_file.empty(), f.o);
  if (f.detach && (f.o.tty || f.interactive))
    throw Error("-d leaves nothing attached: drop -t and -i");
  runtime::apply_run_overrides(config, f.o);
  lo.spec = runtime::parse_spec(config, where);
  // The /proc/self/exe defence (runtime/self_protect.h): the sealed exec stub where it is enough,
  // else a second start of this process from a read-only view of its binary. A detached
  // container is created and started (runc's way), which never takes the stub.
  lo.exec_through_stub = !f.detach && runtime::exec_stub_protects(lo.spec);
  if (!lo.exec_through_stub && !runtime::running_from_sealed_copy()) {
    release_image_root();
    runtime::ensure_running_from_sealed_copy();
  }
  lo.id = f.name.empty() ? random_id() : f.name;
  lo.bundle = dir;
  lo.state_root = g.state_root;
  lo.no_cgroup = f.no_cgroup;
  lo.preserve_fds = f.p.preserve_fds;
  lo.interactive = f.interactive;
  lo.remove = f.rm;
  // Set up here, after any second start of this process, and torn down when `net` goes.
  std::unique_ptr<ContainerNetwork> net =
      ContainerNetwork::attach(net_plan, g.state_root, lo.id, config);
  if (net) lo.spec = runtime::parse_spec(config, where);
  if (g.systemd_cgroup) {
    lo.spec.cgroups_path = runtime::systemd_cgroup_path(lo.spec.cgroups_path, lo.id);
  }
  if (f.detach) {
    run_detached(lo, net, f.rm);
    std::printf("%s\n", lo.id.c_str());
    std::fflush(stdout);
    finish_image_root();
    g.exit_code = 0;
    return;
  }
  lo.on_started = finish_image_root_in_background;
  g.exit_code = runtime::run_container(lo);
  finish_image_root();
  if (net) net->teardown();
  release_lazy_root(!f.record.empty());
}

// `cidrun trace IMAGE [-- CMD]`: runs the command once over a lazy mount of its own that notes
// every block read, then links those blocks (less the metadata and structure, which a lazy
// start gets in its first request anyway) as the image's start set and prints the new image's
// CID. A lazy start of that image asks for the start set in one request beside the metadata.
void trace(RunFlags& f, const Command& sub, Globals& g) {
  auto repo = Repo::open(repo_path(g));
  auto [cid, path] = split_root(*repo, f.root);
  if (!path.empty()) throw Error("trace takes an image, not a path below one");
  std::unique_ptr<exchange::FetchingStore> fetching;
  BlockStore& store = content_store(*repo, fetching);
  unixfs::Dag dag(store);
  Bytes root_block = dag.block(cid);
  auto img = image::parse_image_root(cid, root_block);
  if (!img) throw Error(cid.str() + " is not an image (trace records an image's start)");
  std::string record = repo->path() + "/tmp/trace-" + std::to_string(::getpid()) + ".txt";
  make_dirs(repo->path() + "/tmp", 0755);
  ::unlink(record.c_str());
  f.lazy = true;
  f.no_fill = true;
  f.rm = true;
  f.record = record;
  run(f, sub, g);
  int run_status = g.exit_code;

  // What a lazy start fetches in its first request anyway: the metadata nodes and every
  // structure block they link.
  std::unordered_set<std::string> known = {std::string(as_string(cid.multihash())),
                                           std::string(as_string(img->config.multihash()))};
  unixfs::walk_dag(store, img->meta, [&](const Cid& c, ByteView) {
    known.insert(std::string(as_string(c.multihash())));
    return true;
  });
  image::StartSet set;
  for (const auto& w : f.p.command) set.command += (set.command.empty() ? "" : " ") + w;
  std::vector<uint64_t> sizes;
  std::string text = read_text_file(record);
  ::unlink(record.c_str());
  size_t at = 0;
  while (at < text.size()) {
    size_t nl = text.find('\n', at);
    if (nl == std::string::npos) break;  // a line the server did not finish
    std::string line = text.substr(at, nl - at);
    at = nl + 1;
    size_t sp = line.find(' ');
    if (sp == std::string::npos) continue;
    Cid c = Cid::parse(line.substr(0, sp));
    if (!known.insert(std::string(as_string(c.multihash()))).second) continue;
    if (set.blocks.size() == image::kMaxStartSetLinks) break;
    set.blocks.push_back(image::raw_alias(c));
    sizes.push_back(std::stoull(line.substr(sp + 1)));
  }
  image::Linked startset = image::put_start_set(repo->blocks(), set, sizes);
  // The new root links what the old one did, with the start set (replacing any earlier one).
  dagpb::Node node = dagpb::decode(root_block);
  auto tsize_of = [&](const char* name) {
    for (const auto& l : node.links) {
      if (l.name && *l.name == name) return l.tsize.value_or(0);
    }
    return uint64_t{0};
  };
  image::Linked out = image::put_image_root(
      repo->blocks(), img->header, {img->config, tsize_of("config")}, {img->meta, tsize_of("meta")},
      {img->rootfs, tsize_of("rootfs")}, startset);
  repo->blocks().sync();
  if (run_status != 0) {
    log::warn("the traced command exited with status " + std::to_string(run_status));
  }
  std::fprintf(stderr, "start set: %zu blocks, %llu bytes\n", set.blocks.size(),
               static_cast<unsigned long long>(startset.tsize));
  std::printf("%s\n", out.cid.str().c_str());
  g.exit_code = 0;
}

const Registrar reg("run", [](Command& app, Globals& g) {
  auto f = std::make_shared<RunFlags>();
  auto sub = app.add_subcommand("run", "Run a command in a new container from ROOT");
  add_process_flags(sub, f->o, f->p);
  sub.add_flag("-i,--interactive", f->interactive, "Keep stdin attached");
  sub.add_flag("--rm", f->rm, "Remove the container's state and writable layer on exit");
  sub.add_flag("-d,--detach", f->detach, "Leave the container running; print its id");
  add_bundle_run_flags(sub, f->runc_form);
  sub.add_option("--name", f->name, "Container id (default: random)");
  sub.add_option("--hostname", f->o.hostname, "Container hostname");
  sub.add_flag("--read-only", f->o.read_only, "Mount the root read-only");
  add_network_flags(sub, f->net);
  sub.add_option("--mount", f->o.mounts, "type=bind,src=PATH,dst=PATH[,ro]").one_value_each();
  sub.add_option("--memory", f->o.memory, "Memory limit (e.g. 64m)");
  sub.add_option("--pids-limit", f->o.pids_limit, "Maximum number of processes");
  sub.add_option("--cpus", f->o.cpus, "CPU quota in CPUs (e.g. 0.5)");
  sub.add_option("--config", f->config_file, "Use this config.json instead of the default");
  sub.add_option("--seccomp", f->o.seccomp, "unconfined, or a seccomp profile JSON file");
  sub.add_flag("--no-cgroup", f->no_cgroup, "Do not create a cgroup");
  sub.add_option("--cap-add", f->o.cap_add, "Add a capability (NAME, CAP_NAME or ALL)")
      .one_value_each();
  sub.add_option("--cap-drop", f->o.cap_drop, "Drop a capability (NAME, CAP_NAME or ALL)")
      .one_value_each();
  sub.add_flag("--lazy", f->lazy,
               "Start before ROOT is downloaded: a FUSE mount fetches blocks as they are read");
  sub.add_flag("--no-fill", f->no_fill, "With --lazy: do not fetch the rest in the background");
  sub.add_flag("--no-checkout", f->no_checkout,
               "Run from the root's shared read-only FUSE mount, not a checkout: no second copy "
               "of its files on disk (missing blocks are fetched as with --lazy)");
  f->entrypoint_opt = sub.add_option(
      "--entrypoint", f->entrypoint,
      "Run this (a program, or a JSON list) instead of the image's Entrypoint and Cmd");
  sub.add_option("root", f->root, "Bundle dir, rootfs dir, image name or CID; then [--] CMD...")
      .required();
  add_command_positional(sub, f->p);
  sub.callback([f, sub, &g] { run(*f, sub, g); });
});

const Registrar reg_trace("trace", [](Command& app, Globals& g) {
  auto f = std::make_shared<RunFlags>();
  auto sub = app.add_subcommand(
      "trace",
      "Run a command once in IMAGE and record the blocks its start reads as the image's start "
      "set; print the new image's CID (a lazy start fetches the set in one request)");
  add_process_flags(sub, f->o, f->p);
  sub.add_option("--mount", f->o.mounts, "type=bind,src=PATH,dst=PATH[,ro]").one_value_each();
  add_network_flags(sub, f->net);
  f->entrypoint_opt = sub.add_option(
      "--entrypoint", f->entrypoint,
      "Run this (a program, or a JSON list) instead of the image's Entrypoint and Cmd");
  sub.add_option("root", f->root, "Image name or CID; then [--] CMD...").required();
  add_command_positional(sub, f->p);
  sub.callback([f, sub, &g] { trace(*f, sub, g); });
});

}  // namespace
}  // namespace cidrun::cli
