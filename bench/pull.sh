#!/usr/bin/env bash
# bench/pull.sh — `cidrun pull` over loopback from `cidrun serve`, vs the same pull from a JS
# peer (tests/interop/exchange/js-node.mjs: JS importer + @ipld/car, serving the same content as
# a trustless gateway), vs `curl | tar xz` of a tar.gz of the same tree from a static HTTP server.
# Two comparisons with the JS peer: our client pulling from it (servers compared, same client),
# and the JS stack end to end (tests/interop/exchange/js-pull.mjs pulling from the JS peer into a
# block directory, every block verified: Helia's trustless-gateway broker, and one CAR request;
# the faster of the two is the JS figure).
# Same machine, same run. Not a test: it prints figures (best of $RUNS; machines here are shared,
# minimums are the stable number).
#   bench/pull.sh [BUILD_DIR [BASE_BUILD_DIR]]   (needs `npm ci` in tests/interop)
# With BASE_BUILD_DIR (e.g. a build of an older commit), the same pulls are also timed with that
# build's cidrun as client and server, in the same run: an A/B of two builds.
# Inputs (made once under $BENCH_DATA, default /var/tmp/cidrun-bench):
#   big:    one 512 MiB random file (shared with bench/add.sh), pulled as a one-file directory
#   tree5k: 5,000 random files of 0-8 KiB in 50 directories
# Pulls land in $BENCH_SCRATCH (default /dev/shm) so that the VM's disk does not hide the
# exchange; the tar extraction lands there too. Content is imported as unixfs-v1-2025 by both.
# Goal (issue 5): >= 1 GB/s for the big file and >= 5x the JS peer.
set -euo pipefail
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"
bench_args "$@"
base_cidrun=${2:+$2/cidrun}
[ -z "$base_cidrun" ] || [ -x "$base_cidrun" ] || die "$base_cidrun not built"
jsnode=$here/tests/interop/exchange/js-node.mjs
scratch=${BENCH_SCRATCH:-/dev/shm}/cidrun-pull-bench.$$
need_cidrun
need_node_modules
export CIDRUN_KUBO_AUTO=0 CIDRUN_SOURCES=

mkdir -p "$scratch"
cleanup+=("$scratch")
input_bigdir
input_tree5k

src=$scratch/src
big_root=$("$cidrun" --repo-dir "$src" add -r -Q --profile unixfs-v1-2025 "$data/bigdir")
tree_root=$("$cidrun" --repo-dir "$src" add -r -Q --profile unixfs-v1-2025 "$data/tree5k")
big_bytes=$(stat -c %s "$data/big")
tree_bytes=$(du -sb --apparent-size "$data/tree5k" | cut -f1)

start_bg serve "$cidrun" --repo-dir "$src" serve --listen 127.0.0.1:0 -q
gw=$(json "$ready" gateway)
if [ -n "$base_cidrun" ]; then
  start_bg serve-base "$base_cidrun" --repo-dir "$src" serve --listen 127.0.0.1:0 -q
  gw_base=$(json "$ready" gateway)
fi
start_bg js-big node "$jsnode" --dir "$data/bigdir" --profile v1
js_big=$(json "$ready" url)
js_big_root=$(json "$ready" root)
start_bg js-tree node "$jsnode" --dir "$data/tree5k" --profile v1
js_tree=$(json "$ready" url)
js_tree_root=$(json "$ready" root)
start_bg http python3 -u -m http.server --bind 127.0.0.1 --directory "$data" 0
static=http://127.0.0.1:$(sed -n 's/.*port \([0-9]*\).*/\1/p' <<<"$ready")

# best CMD...: best wall time in seconds over $runs runs; each run starts from an empty target.
before_run() { rm -rf "$scratch/dst" "$scratch/untar"; }
best() { best_of wall "$@"; }
untar() { mkdir -p "$scratch/untar" && curl -sf "$static/tree5k.tar.gz" | tar xz -C "$scratch/untar"; }

t_big=$(best "$cidrun" --repo-dir "$scratch/dst" pull -q "$big_root" --from "$gw")
t_big_js=$(best "$cidrun" --repo-dir "$scratch/dst" pull -q "$js_big_root" --from "$js_big")
t_tree=$(best "$cidrun" --repo-dir "$scratch/dst" pull -q "$tree_root" --from "$gw")
t_tree_js=$(best "$cidrun" --repo-dir "$scratch/dst" pull -q "$js_tree_root" --from "$js_tree")
t_tar=$(best untar)
js_pull() { node "$here/tests/interop/exchange/js-pull.mjs" "$@" >/dev/null; }
t_big_jh=$(best js_pull "$js_big" "$js_big_root" "$scratch/dst" --mode helia)
t_big_jc=$(best js_pull "$js_big" "$js_big_root" "$scratch/dst" --mode car)
t_tree_jh=$(best js_pull "$js_tree" "$js_tree_root" "$scratch/dst" --mode helia)
t_tree_jc=$(best js_pull "$js_tree" "$js_tree_root" "$scratch/dst" --mode car)
if [ -n "$base_cidrun" ]; then
  b_big=$(best "$base_cidrun" --repo-dir "$scratch/dst" pull -q "$big_root" --from "$gw_base")
  b_big_js=$(best "$base_cidrun" --repo-dir "$scratch/dst" pull -q "$js_big_root" --from "$js_big")
  b_tree=$(best "$base_cidrun" --repo-dir "$scratch/dst" pull -q "$tree_root" --from "$gw_base")
  b_tree_js=$(best "$base_cidrun" --repo-dir "$scratch/dst" pull -q "$js_tree_root" --from "$js_tree")
fi

python3 - "$big_bytes" "$tree_bytes" "$t_big" "$t_big_js" "$t_tree" "$t_tree_js" "$t_tar" "$runs" \
  "$t_big_jh" "$t_big_jc" "$t_tree_jh" "$t_tree_jc" \
  ${base_cidrun:+"$b_big" "$b_big_js" "$b_tree" "$b_tree_js"} <<'PY'
import sys
big, tree = int(sys.argv[1]), int(sys.argv[2])
tb, tbj, tt, ttj, ttar = map(float, sys.argv[3:8])
tbh, tbc, tth, ttc = map(float, sys.argv[9:13])
mb = lambda n, t: n / t / 1e6
print(f"bench/pull (best of {sys.argv[8]}, loopback, MB = 10^6 B)")
print(f"  512 MiB file   cidrun serve -> pull: {tb:6.2f}s {mb(big, tb):8.1f} MB/s")
print(f"                 JS peer      -> pull: {tbj:6.2f}s {mb(big, tbj):8.1f} MB/s   cidrun serve / JS = {tbj / tb:5.2f}x")
print(f"  5,000 files    cidrun serve -> pull: {tt:6.2f}s {mb(tree, tt):8.1f} MB/s")
print(f"                 JS peer      -> pull: {ttj:6.2f}s {mb(tree, ttj):8.1f} MB/s   cidrun serve / JS = {ttj / tt:5.2f}x")
print(f"                 curl tar.gz | tar xz: {ttar:6.2f}s {mb(tree, ttar):8.1f} MB/s   pull / tar.gz = {ttar / tt:5.2f}x")
print("  JS stack end to end (js-pull.mjs from the JS peer; cidrun = cidrun serve -> cidrun pull):")
for name, n, ours, th, tc in (("512 MiB file", big, tb, tbh, tbc), ("5,000 files ", tree, tt, tth, ttc)):
    print(f"  {name}   Helia broker   -> JS: {th:6.2f}s {mb(n, th):8.1f} MB/s")
    print(f"                 one CAR        -> JS: {tc:6.2f}s {mb(n, tc):8.1f} MB/s   cidrun / best JS = {min(th, tc) / ours:5.2f}x")
if len(sys.argv) > 13:
    bb, bbj, bt, btj = map(float, sys.argv[13:17])
    print("  base build (client and server), same run:")
    print(f"  512 MiB file   cidrun serve -> pull: {bb:6.2f}s {mb(big, bb):8.1f} MB/s   this build / base = {bb / tb:5.2f}x")
    print(f"                 JS peer      -> pull: {bbj:6.2f}s {mb(big, bbj):8.1f} MB/s   this build / base = {bbj / tbj:5.2f}x")
    print(f"  5,000 files    cidrun serve -> pull: {bt:6.2f}s {mb(tree, bt):8.1f} MB/s   this build / base = {bt / tt:5.2f}x")
    print(f"                 JS peer      -> pull: {btj:6.2f}s {mb(tree, btj):8.1f} MB/s   this build / base = {btj / ttj:5.2f}x")
PY
