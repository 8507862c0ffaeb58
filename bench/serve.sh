#!/usr/bin/env bash
# bench/serve.sh — the server side of a pull alone: curl downloads from `cidrun serve` vs the
# same downloads from the JS peer (tests/interop/exchange/js-node.mjs, which holds every block in
# memory), same content, same machine, same run. curl writes to /dev/null, so no client-side
# hashing or storing is measured. Not a test: it prints figures (best of $RUNS).
#   bench/serve.sh [BUILD_DIR [BASE_BUILD_DIR]]   (needs `npm ci` in tests/interop; CIDRUN=path
#                                                  overrides BUILD_DIR's cidrun)
# With BASE_BUILD_DIR (a build of an older commit), that build's `cidrun serve` is timed too, on
# the same blocks in the same run: an A/B of two servers.
# Inputs: the big file and tree5k of bench/pull.sh (made by it under $BENCH_DATA if missing).
# Measured, each for cidrun serve and for the JS peer:
#   car-big   one CAR stream (?format=car) of the 512 MiB file's directory
#   car-tree  one CAR stream of the 5,000-file tree
#   raw-big   every block of the big file as ?format=raw, 8 at a time over keep-alive
#   raw-tree  every block of the tree as ?format=raw, 8 at a time over keep-alive
set -euo pipefail
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"
bench_args "$@"
cidrun=${CIDRUN:-$cidrun}
base_cidrun=${2:+$2/cidrun}
[ -z "$base_cidrun" ] || [ -x "$base_cidrun" ] || die "$base_cidrun not built"
jsnode=$here/tests/interop/exchange/js-node.mjs
scratch=${BENCH_SCRATCH:-/dev/shm}/cidrun-serve-bench.$$
need_cidrun
need_node_modules
[ -f "$data/big" ] && [ -d "$data/tree5k" ] || die "run bench/pull.sh once to make the inputs in $data"
export CIDRUN_KUBO_AUTO=0 CIDRUN_SOURCES=

mkdir -p "$scratch"
cleanup+=("$scratch")
src=$scratch/src
big_root=$("$cidrun" --repo-dir "$src" add -r -Q --profile unixfs-v1-2025 "$data/bigdir")
tree_root=$("$cidrun" --repo-dir "$src" add -r -Q --profile unixfs-v1-2025 "$data/tree5k")

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

# The CIDs of every block, read from one CAR (CIDv1 only: both imports use CIDv1).
cids() {
  curl -sf "$1/ipfs/$2?format=car" | python3 -c '
import sys, base64
d = sys.stdin.buffer.read()
def uv(i):
    v = s = 0
    while True:
        b = d[i]; i += 1; v |= (b & 0x7f) << s; s += 7
        if b < 0x80: return v, i
n, i = uv(0); i += n
while i < len(d):
    n, i = uv(i); end = i + n; j = i
    _, j = uv(j); _, j = uv(j); _, j = uv(j); ln, j = uv(j); j += ln
    print("b" + base64.b32encode(d[i:j]).decode().lower().rstrip("="))
    i = end'
}
# urls BASE FILE: a curl config fetching every CID of FILE as a raw block into /dev/null.
urls() {
  while read -r c; do
    printf 'url = "%s/ipfs/%s?format=raw"\noutput = /dev/null\n' "$1" "$c"
  done <"$2"
}
# Each peer is asked for its own DAG of the same content (the two importers' directory nodes
# may differ; the file bytes and the block count are the same).
cids "$gw" "$big_root" >"$scratch/big.cids"
cids "$gw" "$tree_root" >"$scratch/tree.cids"
cids "$js_big" "$js_big_root" >"$scratch/big-js.cids"
cids "$js_tree" "$js_tree_root" >"$scratch/tree-js.cids"
urls "$gw" "$scratch/big.cids" >"$scratch/big-cidrun.cfg"
urls "$js_big" "$scratch/big-js.cids" >"$scratch/big-js.cfg"
urls "$gw" "$scratch/tree.cids" >"$scratch/tree-cidrun.cfg"
urls "$js_tree" "$scratch/tree-js.cids" >"$scratch/tree-js.cfg"
if [ -n "$base_cidrun" ]; then
  urls "$gw_base" "$scratch/big.cids" >"$scratch/big-base.cfg"
  urls "$gw_base" "$scratch/tree.cids" >"$scratch/tree-base.cfg"
fi

best() { best_of wall "$@"; }
car() { curl -sf -o /dev/null -H 'Accept: application/vnd.ipld.car' "$1/ipfs/$2?format=car"; }
raw() { curl -sf --parallel --parallel-max 8 -H 'Accept: application/vnd.ipld.raw' -K "$1"; }

big_bytes=$(curl -sf "$gw/ipfs/$big_root?format=car" | wc -c)
tree_bytes=$(curl -sf "$gw/ipfs/$tree_root?format=car" | wc -c)
t1=$(best car "$gw" "$big_root")
t2=$(best car "$js_big" "$js_big_root")
t3=$(best car "$gw" "$tree_root")
t4=$(best car "$js_tree" "$js_tree_root")
t5=$(best raw "$scratch/big-cidrun.cfg")
t6=$(best raw "$scratch/big-js.cfg")
t7=$(best raw "$scratch/tree-cidrun.cfg")
t8=$(best raw "$scratch/tree-js.cfg")
if [ -n "$base_cidrun" ]; then
  b1=$(best car "$gw_base" "$big_root")
  b3=$(best car "$gw_base" "$tree_root")
  b5=$(best raw "$scratch/big-base.cfg")
  b7=$(best raw "$scratch/tree-base.cfg")
fi
python3 - "$big_bytes" "$tree_bytes" "$(wc -l <"$scratch/big.cids")" "$(wc -l <"$scratch/tree.cids")" \
  "$t1" "$t2" "$t3" "$t4" "$t5" "$t6" "$t7" "$t8" "$runs" ${base_cidrun:+"$b1" "$b3" "$b5" "$b7"} <<'PY'
import sys
big, tree, nbig, ntree = map(int, sys.argv[1:5])
t = list(map(float, sys.argv[5:13]))
base = list(map(float, sys.argv[14:18]))
mb = lambda n, s: n / s / 1e6
print(f"bench/serve (best of {sys.argv[13]}, loopback, curl to /dev/null, MB = 10^6 B)")
rows = [("CAR, 512 MiB file", big, t[0], t[1]), ("CAR, 5,000 files", tree, t[2], t[3]),
        (f"raw x{nbig} blocks, 8 at a time", big, t[4], t[5]),
        (f"raw x{ntree} blocks, 8 at a time", tree, t[6], t[7])]
for name, n, ours, js in rows:
    print(f"  {name:32s} cidrun serve {ours:6.2f}s {mb(n, ours):8.1f} MB/s | JS peer {js:6.2f}s "
          f"{mb(n, js):8.1f} MB/s | cidrun / JS = {js / ours:5.2f}x")
if base:
    print("  base build's cidrun serve, same blocks, same run:")
    for (name, n, ours, _), b in zip(rows, base):
        print(f"  {name:32s} base serve   {b:6.2f}s {mb(n, b):8.1f} MB/s | this build / base = {b / ours:5.2f}x")
PY
