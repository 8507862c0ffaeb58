#!/usr/bin/env bash
# bench/pull.sh — `cidrun pull` over loopback from `cidrun serve`, vs the same pull from a JS
# peer (tests/interop/exchange/js-node.mjs: JS importer + @ipld/car, serving the same content as
# a trustless gateway), vs `curl | tar xz` of a tar.gz of the same tree from a static HTTP server.
# Same machine, same run. Not a test: it prints figures (best of $RUNS; machines here are shared,
# minimums are the stable number).
#   bench/pull.sh [BUILD_DIR]         (needs `npm ci` in tests/interop)
# Inputs (made once under $BENCH_DATA, default /var/tmp/cidrun-bench):
#   big:    one 512 MiB random file (shared with bench/add.sh), pulled as a one-file directory
#   tree5k: 5,000 random files of 0-8 KiB in 50 directories
# Pulls land in $BENCH_SCRATCH (default /dev/shm) so that the VM's disk does not hide the
# exchange; the tar extraction lands there too. Content is imported as unixfs-v1-2025 by both.
# Goal (issue 5): >= 1 GB/s for the big file and >= 5x the JS peer.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$here/build}
cidrun=$build/cidrun
jsnode=$here/tests/interop/exchange/js-node.mjs
data=${BENCH_DATA:-/var/tmp/cidrun-bench}
scratch=${BENCH_SCRATCH:-/dev/shm}/cidrun-pull-bench.$$
runs=${RUNS:-3}
[ -x "$cidrun" ] || { echo "bench/pull: $cidrun not built" >&2; exit 1; }
[ -d "$here/tests/interop/node_modules" ] || { echo "bench/pull: run npm ci in tests/interop" >&2; exit 1; }
export CIDRUN_KUBO_AUTO=0 CIDRUN_SOURCES=

mkdir -p "$data" "$scratch"
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$scratch"' EXIT
if [ ! -f "$data/big" ]; then head -c $((512 << 20)) /dev/urandom >"$data/big"; fi
mkdir -p "$data/bigdir"
[ -e "$data/bigdir/big" ] || ln "$data/big" "$data/bigdir/big" 2>/dev/null || cp "$data/big" "$data/bigdir/big"
if [ ! -d "$data/tree5k" ]; then
  python3 - "$data/tree5k" <<'PY'
import os, random, sys
random.seed(5)
root = sys.argv[1]
for d in range(50):
    p = os.path.join(root, 'd%02d' % d); os.makedirs(p)
    for f in range(100):
        with open(os.path.join(p, 'f%03d' % f), 'wb') as fh:
            fh.write(os.urandom(random.randint(0, 8192)))
PY
fi
[ -f "$data/tree5k.tar.gz" ] || tar czf "$data/tree5k.tar.gz" -C "$data" tree5k

src=$scratch/src
big_root=$("$cidrun" --repo-dir "$src" add -r -Q --profile unixfs-v1-2025 "$data/bigdir")
tree_root=$("$cidrun" --repo-dir "$src" add -r -Q --profile unixfs-v1-2025 "$data/tree5k")
big_bytes=$(stat -c %s "$data/big")
tree_bytes=$(du -sb --apparent-size "$data/tree5k" | cut -f1)

# start NAME CMD...: runs CMD in the background, waits for its first stdout line -> $ready.
start() {
  local out=$scratch/$1.out
  shift
  "$@" >"$out" 2>/dev/null &
  pids+=($!)
  for _ in $(seq 1 1200); do
    if [ -s "$out" ]; then ready=$(head -n1 "$out"); return 0; fi
    sleep 0.1
  done
  echo "bench/pull: $* did not start" >&2
  exit 1
}
json() { python3 -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$1" "$2"; }

start serve "$cidrun" --repo-dir "$src" serve --listen 127.0.0.1:0 -q
gw=$(json "$ready" gateway)
start js-big node "$jsnode" --dir "$data/bigdir" --profile v1
js_big=$(json "$ready" url)
js_big_root=$(json "$ready" root)
start js-tree node "$jsnode" --dir "$data/tree5k" --profile v1
js_tree=$(json "$ready" url)
js_tree_root=$(json "$ready" root)
(cd "$data" && exec python3 -u -m http.server --bind 127.0.0.1 0 >"$scratch/http.out" 2>/dev/null) &
pids+=($!)
for _ in $(seq 1 100); do grep -q port "$scratch/http.out" 2>/dev/null && break; sleep 0.1; done
static=http://127.0.0.1:$(sed -n 's/.*port \([0-9]*\).*/\1/p' "$scratch/http.out" | head -n1)

# best CMD...: best wall time in seconds over $runs runs; each run starts from an empty target.
best() {
  local b=""
  for _ in $(seq 1 "$runs"); do
    rm -rf "$scratch/dst" "$scratch/untar"
    local t0 t1
    t0=$(date +%s.%N)
    "$@" >/dev/null 2>&1 || { echo "bench/pull: failed: $*" >&2; exit 1; }
    t1=$(date +%s.%N)
    b=$(python3 -c "a=$t1-$t0; b='$b'; print(a if not b or a < float(b) else b)")
  done
  echo "$b"
}
untar() { mkdir -p "$scratch/untar" && curl -sf "$static/tree5k.tar.gz" | tar xz -C "$scratch/untar"; }

t_big=$(best "$cidrun" --repo-dir "$scratch/dst" pull -q "$big_root" --from "$gw")
t_big_js=$(best "$cidrun" --repo-dir "$scratch/dst" pull -q "$js_big_root" --from "$js_big")
t_tree=$(best "$cidrun" --repo-dir "$scratch/dst" pull -q "$tree_root" --from "$gw")
t_tree_js=$(best "$cidrun" --repo-dir "$scratch/dst" pull -q "$js_tree_root" --from "$js_tree")
t_tar=$(best untar)

python3 - "$big_bytes" "$tree_bytes" "$t_big" "$t_big_js" "$t_tree" "$t_tree_js" "$t_tar" "$runs" <<'PY'
import sys
big, tree = int(sys.argv[1]), int(sys.argv[2])
tb, tbj, tt, ttj, ttar = map(float, sys.argv[3:8])
mb = lambda n, t: n / t / 1e6
print(f"bench/pull (best of {sys.argv[8]}, loopback, MB = 10^6 B)")
print(f"  512 MiB file   cidrun serve -> pull: {tb:6.2f}s {mb(big, tb):8.1f} MB/s")
print(f"                 JS peer      -> pull: {tbj:6.2f}s {mb(big, tbj):8.1f} MB/s   cidrun serve / JS = {tbj / tb:5.2f}x")
print(f"  5,000 files    cidrun serve -> pull: {tt:6.2f}s {mb(tree, tt):8.1f} MB/s")
print(f"                 JS peer      -> pull: {ttj:6.2f}s {mb(tree, ttj):8.1f} MB/s   cidrun serve / JS = {ttj / tt:5.2f}x")
print(f"                 curl tar.gz | tar xz: {ttar:6.2f}s {mb(tree, ttar):8.1f} MB/s   pull / tar.gz = {ttar / tt:5.2f}x")
PY
