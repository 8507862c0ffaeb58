#!/usr/bin/env bash
# bench/get.sh — cidrun get vs `cp -a` of the same data and vs the JS exporter
# (ipfs-unixfs-exporter reading the same block store, tests/interop/content/js-get.mjs), same
# machine, same run. Not a test: it prints figures.
#   bench/get.sh [BUILD_DIR]          (needs `npm ci` in tests/interop)
# Inputs (made once under $BENCH_DATA, default /var/tmp/cidrun-bench, shared with bench/add.sh):
#   big:   one 512 MiB random file
#   small: 20,000 random files of 0-8 KiB in 100 directories
# Both are added with --preserve-mode --preserve-mtime, so get restores metadata as cp -a does.
# Best of $RUNS wall times (all runs from the page cache; minimums are stable on a shared
# machine); the output tree is removed between runs and its removal is not timed.
# Goal (issue 3): get at least 70% of cp -a speed.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$here/build}
cidrun=$build/cidrun
jsget=$here/tests/interop/content/js-get.mjs
data=${BENCH_DATA:-/var/tmp/cidrun-bench}
runs=${RUNS:-3}
[ -x "$cidrun" ] || { echo "bench/get: $cidrun not built" >&2; exit 1; }
[ -d "$here/tests/interop/node_modules" ] || { echo "bench/get: run npm ci in tests/interop" >&2; exit 1; }

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

work=$(mktemp -d "$data/get-XXXXXX")
trap 'rm -rf "$work"' EXIT
repo=$work/repo
big=$("$cidrun" --repo-dir "$repo" add -Q --preserve-mode --preserve-mtime "$data/big")
small=$("$cidrun" --repo-dir "$repo" add -r -Q --preserve-mode --preserve-mtime "$data/small")

best() {  # best wall time of "$@" writing to $work/out
  local best_t=
  for _ in $(seq "$runs"); do
    rm -rf "$work/out"; sync
    /usr/bin/time -f '%e' -o "$work/time" "$@" > /dev/null 2>&1
    local t
    t=$(tail -1 "$work/time")
    if [ -z "$best_t" ] || awk "BEGIN{exit !($t < $best_t)}"; then best_t=$t; fi
  done
  echo "$best_t"
}

# The comparisons must be of equal work: check the trees once.
rm -rf "$work/out"; "$cidrun" --repo-dir "$repo" get "$small" -o "$work/out" 2>/dev/null
diff -r "$data/small" "$work/out" >/dev/null || { echo "bench/get: get output differs from the source" >&2; exit 1; }

report() {  # name amount unit ours cp js
  awk -v n="$1" -v a="$2" -v u="$3" -v o="$4" -v c="$5" -v j="$6" 'BEGIN {
    printf "%-16s cidrun get %6.2f s %8.1f %s | cp -a %6.2f s %8.1f %s | JS exporter %6.2f s %8.1f %s | get/cp %.0f%% | get vs JS %.1fx\n",
      n, o, a/o, u, c, a/c, u, j, a/j, u, 100*c/o, j/o }'
}

echo "cidrun get vs cp -a vs ipfs-unixfs-exporter $(node -e 'console.log(require(process.argv[1]).version)' "$here/tests/interop/node_modules/ipfs-unixfs-exporter/package.json"), best of $runs, $(nproc) cores"
ours=$(best "$cidrun" --repo-dir "$repo" get "$big" -o "$work/out")
cp_t=$(best cp -a "$data/big" "$work/out")
js_t=$(best node "$jsget" "$repo" "$big" "$work/out")
report "512MiB file" 536.870912 MB/s "$ours" "$cp_t" "$js_t"
ours=$(best "$cidrun" --repo-dir "$repo" get "$small" -o "$work/out")
cp_t=$(best cp -a "$data/small" "$work/out")
js_t=$(best node "$jsget" "$repo" "$small" "$work/out")
report "20k files" 20000 files/s "$ours" "$cp_t" "$js_t"
