#!/usr/bin/env bash
# bench/add.sh — cidrun add vs the JS reference importer (ipfs-unixfs-importer, via
# tests/interop/js-oracle.mjs), same inputs, same machine, same run. Not a test: it prints figures.
#   bench/add.sh [BUILD_DIR]          (needs `npm ci` in tests/interop)
# Inputs (made once under $BENCH_DATA, default /var/tmp/cidrun-bench):
#   big:   one 512 MiB random file
#   small: 20,000 random files of 0-8 KiB in 100 directories
# For each: best of $RUNS wall times (minimums are stable on a shared machine), MB/s or files/s,
# peak RSS, and the ratio cidrun/JS. cidrun runs with -n (hash only) and, separately, storing
# into a fresh repo; the JS importer always hashes into memory.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$here/build}
cidrun=$build/cidrun
oracle=$here/tests/interop/js-oracle.mjs
data=${BENCH_DATA:-/var/tmp/cidrun-bench}
runs=${RUNS:-3}
[ -x "$cidrun" ] || { echo "bench/add: $cidrun not built" >&2; exit 1; }
[ -d "$here/tests/interop/node_modules" ] || { echo "bench/add: run npm ci in tests/interop" >&2; exit 1; }

mkdir -p "$data"
if [ ! -f "$data/big" ]; then head -c $((512 << 20)) /dev/urandom > "$data/big"; fi
if [ ! -d "$data/small" ]; then
  python3 - "$data/small" <<'PY'
import os, random, sys
random.seed(1)
root = sys.argv[1]
for d in range(100):
    p = os.path.join(root, 'd%03d' % d); os.makedirs(p)
    for f in range(200):
        with open(os.path.join(p, 'f%03d' % f), 'wb') as fh: fh.write(os.urandom(random.randint(0, 8192)))
PY
fi

# best "wall rss" over $runs runs of a command; also checks every run printed the same CID.
best() {
  local best_t= best_m= out cid= prev=
  for _ in $(seq "$runs"); do
    out=$({ /usr/bin/time -f '%e %M' "$@" > /tmp/bench-add.out; } 2>&1 | tail -1)
    cid=$(tail -1 /tmp/bench-add.out)
    if [ -n "$prev" ] && [ "$cid" != "$prev" ]; then echo "bench/add: CID changed between runs" >&2; exit 1; fi
    prev=$cid
    local t=${out% *} m=${out#* }
    if [ -z "$best_t" ] || awk "BEGIN{exit !($t < $best_t)}"; then best_t=$t; best_m=$m; fi
  done
  echo "$best_t $best_m $prev"
}

report() {  # name units-per-run unit ours theirs
  local name=$1 amount=$2 unit=$3 ours=$4 theirs=$5
  read -r ot om oc <<< "$ours"
  read -r tt tm tc <<< "$theirs"
  local same=yes; [ "$oc" = "$tc" ] || same="NO ($oc vs $tc)"
  awk -v n="$name" -v a="$amount" -v u="$unit" -v ot="$ot" -v om="$om" -v tt="$tt" -v tm="$tm" -v s="$same" 'BEGIN {
    printf "%-28s cidrun %7.2f s %9.1f %s  %6.1f MiB RSS | JS %7.2f s %9.1f %s %6.1f MiB RSS | ratio %.1fx | same CID: %s\n",
      n, ot, a/ot, u, om/1024, tt, a/tt, u, tm/1024, tt/ot, s }'
}

sync
echo "cidrun add vs ipfs-unixfs-importer $(node -e 'console.log(require(process.argv[1]).version)' "$here/tests/interop/node_modules/ipfs-unixfs-importer/package.json"), best of $runs, $(nproc) cores"
for flags in "" "--cid-version 1" "--profile unixfs-v1-2025"; do
  ours=$(best "$cidrun" add -n -Q $flags "$data/big")
  theirs=$(best node "$oracle" -n -Q $flags "$data/big")
  report "512MiB file ${flags:-default}" 536.870912 MB/s "$ours" "$theirs"
done
for flags in "" "--cid-version 1"; do
  ours=$(best "$cidrun" add -r -n -Q $flags "$data/small")
  theirs=$(best node "$oracle" -r -n -Q $flags "$data/small")
  report "20k files ${flags:-default}" 20000 files/s "$ours" "$theirs"
done
# Storing: a fresh repo each run (kubo's flatfs layout, one file per block).
repo=$(mktemp -d)
trap 'rm -rf "$repo" /tmp/bench-add.out' EXIT
store_run() { rm -rf "$repo/r"; CIDRUN_PATH="$repo/r" "$cidrun" add -Q "$@"; }
export -f store_run; export cidrun repo
ours=$(best bash -c 'store_run "$@"' _ "$data/big")
theirs=$(best node "$oracle" -n -Q "$data/big")
report "512MiB file, stored" 536.870912 MB/s "$ours" "$theirs"
ours=$(best bash -c 'store_run -r "$@"' _ "$data/small")
theirs=$(best node "$oracle" -r -n -Q "$data/small")
report "20k files, stored" 20000 files/s "$ours" "$theirs"
