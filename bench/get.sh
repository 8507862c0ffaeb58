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
# Each input is also got with a block source configured that is never asked (every block is
# local; CIDRUN_SOURCES=http://127.0.0.1:9): a configured source must not slow a local get.
# Goal: get at least 70% of cp -a speed in all four rows.
set -euo pipefail
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"
bench_args "$@"
jsget=$here/tests/interop/content/js-get.mjs
need_cidrun
need_node_modules
input_big
input_small

work=$(mktemp -d "$data/get-XXXXXX")
cleanup+=("$work")
repo=$work/repo
big=$("$cidrun" --repo-dir "$repo" add -Q --preserve-mode --preserve-mtime "$data/big")
small=$("$cidrun" --repo-dir "$repo" add -r -Q --preserve-mode --preserve-mtime "$data/small")

# best CMD...: best wall time of CMD writing to $work/out. Before each run the last output is
# moved aside, not removed, and written back (untimed): a removal's discards and journal work
# (on a filesystem mounted with discard) spill into the next timed run, which made the
# same `cp -a` of 20k files take 1 s or 14 s. The set-aside trees go at the end.
before_run() {
  mkdir -p "$work/kept"
  if [ -e "$work/out" ]; then mv "$work/out" "$(mktemp -d "$work/kept/XXXXXX")/"; fi
  sync
}
best() {
  local line
  line=$(best_of wall_rss "$@") || exit 1
  echo "${line%% *}"
}

# The comparisons must be of equal work: check the trees once.
rm -rf "$work/out"; "$cidrun" --repo-dir "$repo" get "$small" -o "$work/out" 2>/dev/null
diff -r "$data/small" "$work/out" >/dev/null || { echo "bench/get: get output differs from the source" >&2; exit 1; }

report() {  # name amount unit ours cp js
  awk -v n="$1" -v a="$2" -v u="$3" -v o="$4" -v c="$5" -v j="$6" 'BEGIN {
    printf "%-16s cidrun get %6.2f s %8.1f %s | cp -a %6.2f s %8.1f %s | JS exporter %6.2f s %8.1f %s | get/cp %.0f%% | get vs JS %.1fx\n",
      n, o, a/o, u, c, a/c, u, j, a/j, u, 100*c/o, j/o }'
}

report_src() {  # name amount unit ours cp
  awk -v n="$1" -v a="$2" -v u="$3" -v o="$4" -v c="$5" 'BEGIN {
    printf "%-16s cidrun get %6.2f s %8.1f %s | cp -a %6.2f s %8.1f %s | get/cp %.0f%%\n",
      n, o, a/o, u, c, a/c, u, 100*c/o }'
}

echo "cidrun get vs cp -a vs ipfs-unixfs-exporter $(js_version ipfs-unixfs-exporter), best of $runs, $(nproc) cores"
ours=$(best "$cidrun" --repo-dir "$repo" get "$big" -o "$work/out")
cp_t=$(best cp -a "$data/big" "$work/out")
js_t=$(best node "$jsget" "$repo" "$big" "$work/out")
report "512MiB file" 536.870912 MB/s "$ours" "$cp_t" "$js_t"
src=$(CIDRUN_SOURCES=http://127.0.0.1:9 best "$cidrun" --repo-dir "$repo" get "$big" -o "$work/out")
report_src "512MiB + source" 536.870912 MB/s "$src" "$cp_t"
ours=$(best "$cidrun" --repo-dir "$repo" get "$small" -o "$work/out")
cp_t=$(best cp -a "$data/small" "$work/out")
js_t=$(best node "$jsget" "$repo" "$small" "$work/out")
report "20k files" 20000 files/s "$ours" "$cp_t" "$js_t"
src=$(CIDRUN_SOURCES=http://127.0.0.1:9 best "$cidrun" --repo-dir "$repo" get "$small" -o "$work/out")
report_src "20k + source" 20000 files/s "$src" "$cp_t"
