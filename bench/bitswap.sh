#!/usr/bin/env bash
# bench/bitswap.sh — pulls over libp2p bitswap on loopback, three ways in the same run:
#   cidrun serve --p2p-listen -> cidrun pull --from /ip4/.../p2p/ID   (ours)
#   Helia -> Helia (tests/interop/p2p/helia-peer.mjs serve / fetch: js-libp2p, @helia/bitswap)
#   cidrun serve -> cidrun pull over HTTP (the trustless gateway: our own fast path)
# for a 512 MiB file and a 5,000-file tree (bench/lib.sh's inputs), imported as unixfs-v1-2025.
# Goal (issue 16): bitswap >= 5x Helia-to-Helia, and >= 0.7x cidrun's own HTTP pull.
# Best of $RUNS (default 3). Not a test: it prints figures.
#   bench/bitswap.sh [BUILD_DIR]   (needs `npm ci` in tests/interop)
set -euo pipefail
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"
bench_args "$@"
need_cidrun
need_node_modules
export CIDRUN_KUBO_AUTO=0 CIDRUN_SOURCES=
helia=$here/tests/interop/p2p/helia-peer.mjs
scratch=${BENCH_SCRATCH:-/dev/shm}/cidrun-bitswap-bench.$$
mkdir -p "$scratch"
cleanup+=("$scratch")
input_bigdir
input_tree5k

src=$scratch/src
big_root=$("$cidrun" --repo-dir "$src" add -r -Q --profile unixfs-v1-2025 "$data/bigdir")
tree_root=$("$cidrun" --repo-dir "$src" add -r -Q --profile unixfs-v1-2025 "$data/tree5k")
big_bytes=$(stat -c %s "$data/big")
tree_bytes=$(du -sb --apparent-size "$data/tree5k" | cut -f1)

start_bg serve "$cidrun" --repo-dir "$src" serve --listen 127.0.0.1:0 -q \
  --p2p-listen /ip4/127.0.0.1/tcp/0
gw=$(json "$ready" gateway)
p2p=$(json "$ready" p2p)
start_bg helia-big node "$helia" serve --dir "$data/bigdir" --profile v1
helia_big=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["multiaddrs"][0])' "$ready")
[ "$(json "$ready" root)" = "$big_root" ] || die "Helia's root for bigdir differs from ours"
start_bg helia-tree node "$helia" serve --dir "$data/tree5k" --profile v1
helia_tree=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["multiaddrs"][0])' "$ready")
[ "$(json "$ready" root)" = "$tree_root" ] || die "Helia's root for tree5k differs from ours"

before_run() { rm -rf "$scratch/dst"; }
best() { best_of wall "$@"; }
# Helia's fetch holds the blocks in memory and then checks the export against the tree: only its
# fetch time counts (what it prints as fetchSeconds).
helia_fetch() { # helia_fetch ADDR ROOT DIR: "seconds"
  local out
  out=$(node "$helia" fetch "$1" "$2" "$3" 2>"$bench_tmp/helia.err") ||
    die "Helia fetch failed: $(tail -n5 "$bench_tmp/helia.err")"
  json "$out" fetchSeconds
}
best_helia() { best_of helia_fetch "$@"; }

t_big=$(best "$cidrun" --repo-dir "$scratch/dst" pull -q "$big_root" --from "$p2p")
t_big_http=$(best "$cidrun" --repo-dir "$scratch/dst" pull -q "$big_root" --from "$gw")
t_big_helia=$(best_helia "$helia_big" "$big_root" "$data/bigdir")
t_tree=$(best "$cidrun" --repo-dir "$scratch/dst" pull -q "$tree_root" --from "$p2p")
t_tree_http=$(best "$cidrun" --repo-dir "$scratch/dst" pull -q "$tree_root" --from "$gw")
t_tree_helia=$(best_helia "$helia_tree" "$tree_root" "$data/tree5k")

python3 - "$big_bytes" "$tree_bytes" "$runs" "$t_big" "$t_big_http" "$t_big_helia" "$t_tree" \
  "$t_tree_http" "$t_tree_helia" "$(js_version helia)" "$(js_version @helia/bitswap)" <<'PY'
import sys
big, tree, runs = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
tb, tbh, tbj, tt, tth, ttj = map(float, sys.argv[4:10])
mb = lambda n, t: n / t / 1e6
print(f"bench/bitswap (best of {runs}, loopback, MB = 10^6 B; helia {sys.argv[10]}, @helia/bitswap {sys.argv[11]})")
for name, n, ours, http, js in (("512 MiB file", big, tb, tbh, tbj), ("5,000 files ", tree, tt, tth, ttj)):
    print(f"  {name}  cidrun bitswap: {ours:6.2f}s {mb(n, ours):7.1f} MB/s   "
          f"/ Helia = {js / ours:5.2f}x (goal >= 5)   / HTTP = {http / ours:4.2f}x (goal >= 0.7)")
    print(f"                Helia -> Helia: {js:6.2f}s {mb(n, js):7.1f} MB/s")
    print(f"                cidrun HTTP:    {http:6.2f}s {mb(n, http):7.1f} MB/s")
PY
