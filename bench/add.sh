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
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"
bench_args "$@"
oracle=$here/tests/interop/js-oracle.mjs
need_cidrun
need_node_modules
input_big
input_small

# One run: "seconds rss cid", the CID being the last line the run printed; every run of a
# command must print the same CID.
add_run() {
  local m
  m=$(wall_rss "$@") || exit 1
  echo "$m $(tail -1 "$bench_tmp/stdout")"
}
after_run() {
  if [ -n "${prev_cid:-}" ] && [ "${1##* }" != "$prev_cid" ]; then die "CID changed between runs"; fi
  prev_cid=${1##* }
}
best() { best_of add_run "$@"; }

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
echo "cidrun add vs ipfs-unixfs-importer $(js_version ipfs-unixfs-importer), best of $runs, $(nproc) cores"
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
repo=$bench_tmp/repo
store_run() { rm -rf "$repo/r"; CIDRUN_PATH="$repo/r" "$cidrun" add -Q "$@"; }
export -f store_run; export cidrun repo
ours=$(best bash -c 'store_run "$@"' _ "$data/big")
theirs=$(best node "$oracle" -n -Q "$data/big")
report "512MiB file, stored" 536.870912 MB/s "$ours" "$theirs"
ours=$(best bash -c 'store_run -r "$@"' _ "$data/small")
theirs=$(best node "$oracle" -r -n -Q "$data/small")
report "20k files, stored" 20000 files/s "$ours" "$theirs"
