# bench/lib.sh — what the bench scripts share; sourced (`. "$(dirname "$0")/lib.sh"`), not run.
# Sourcing sets $here (the source tree), $bench ("bench/<script>", the prefix of every error),
# an EXIT trap that kills the processes in $pids and removes the paths in $cleanup, and $bench_tmp
# (a private temporary directory, removed on exit).
# shellcheck shell=bash

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bench=bench/$(basename "$0" .sh)
pids=()
cleanup=()
bench_exit() {
  local p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "${cleanup[@]}"
}
trap bench_exit EXIT
bench_tmp=$(mktemp -d)
cleanup+=("$bench_tmp")

die() {
  echo "$bench: $*" >&2
  exit 1
}

# bench_args [BUILD_DIR]: the arguments of the scripts that take a build directory. Sets $build,
# $cidrun, $data (inputs, made once, shared between scripts) and $runs (best of how many).
bench_args() {
  build=${1:-$here/build}
  cidrun=$build/cidrun
  data=${BENCH_DATA:-/var/tmp/cidrun-bench}
  runs=${RUNS:-3}
}
need_cidrun() { [ -x "$cidrun" ] || die "$cidrun not built"; }
need_node_modules() { [ -d "$here/tests/interop/node_modules" ] || die "run npm ci in tests/interop"; }
# js_version PACKAGE: the version of an npm package in tests/interop.
js_version() { node -e 'console.log(require(process.argv[1]).version)' "$here/tests/interop/node_modules/$1/package.json"; }

# Inputs under $data, each made once (random content; the small trees from fixed seeds).
input_big() { # big: one 512 MiB random file
  mkdir -p "$data"
  if [ ! -f "$data/big" ]; then head -c $((512 << 20)) /dev/urandom >"$data/big"; fi
}
input_bigdir() { # bigdir: a directory holding only big (a hard link when possible)
  input_big
  mkdir -p "$data/bigdir"
  [ -e "$data/bigdir/big" ] || ln "$data/big" "$data/bigdir/big" 2>/dev/null || cp "$data/big" "$data/bigdir/big"
}
# random_tree DIR SEED DIRS FILES NAME_FORMAT: DIRS directories of FILES files of 0-8 KiB each.
random_tree() {
  [ -d "$1" ] && return 0
  python3 - "$@" <<'PY'
import os, random, sys
root, seed, dirs, files, dname = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
random.seed(seed)
for d in range(dirs):
    p = os.path.join(root, dname % d); os.makedirs(p)
    for f in range(files):
        with open(os.path.join(p, 'f%03d' % f), 'wb') as fh:
            fh.write(os.urandom(random.randint(0, 8192)))
PY
}
input_small() { # small: 20,000 files in 100 directories
  mkdir -p "$data"
  random_tree "$data/small" 1 100 200 d%03d
}
input_tree5k() { # tree5k: 5,000 files in 50 directories, and its tar.gz
  mkdir -p "$data"
  random_tree "$data/tree5k" 5 50 100 d%02d
  [ -f "$data/tree5k.tar.gz" ] || tar czf "$data/tree5k.tar.gz" -C "$data" tree5k
}

# layer: layer.tar (~100 MB of this machine's /usr/bin, /usr/lib/x86_64-linux-gnu, /usr/include
# and /usr/share files of at most 4 MiB, equal bytes from each (in sorted order), about the mix of
# binaries, libraries and text of a distribution layer; pax format, owners kept), layer.tar.gz
# (gzip -6) and layer.tar.zst (zstd -3). Made once; machine-dependent, so compare only figures of
# the same run.
input_layer() {
  mkdir -p "$data"
  [ -f "$data/layer.tar.zst" ] && return 0
  python3 - "$data/layer.list" <<'PY'
import os, sys
lists = []
for top in ("usr/bin", "usr/lib/x86_64-linux-gnu", "usr/include", "usr/share"):
    names = []
    for d, dirs, files in os.walk("/" + top):
        dirs.sort()
        for f in sorted(files):
            p = os.path.join(d, f)
            if not os.path.islink(p) and os.path.isfile(p) and os.path.getsize(p) <= 4 << 20:
                names.append(p)
    lists.append(names)
# Equal bytes from each: many small headers and docs beside fewer, larger binaries.
sizes, picked = [0] * len(lists), []
while sum(sizes) < 100 << 20 and any(lists):
    i = min((k for k in range(len(lists)) if lists[k]), key=lambda k: sizes[k])
    p = lists[i].pop(0)
    sizes[i] += os.path.getsize(p)
    picked.append(p[1:])
open(sys.argv[1], "w").write("\n".join(sorted(picked)) + "\n")
PY
  tar --format=pax -cf "$data/layer.tar.tmp" -C / --files-from "$data/layer.list"
  mv "$data/layer.tar.tmp" "$data/layer.tar"
  gzip -6 -n -c "$data/layer.tar" >"$data/layer.tar.gz"
  zstd -q -3 -c "$data/layer.tar" >"$data/layer.tar.zst.tmp"
  mv "$data/layer.tar.zst.tmp" "$data/layer.tar.zst"
}

# start_bg NAME CMD...: runs CMD in the background (killed on exit) and waits for its first
# stdout line, which it leaves in $ready.
start_bg() {
  local out=$bench_tmp/$1.out
  shift
  # A name used before (a second run) must not show the old process's line: the new process's
  # redirection truncates the file only once it has forked, after the check below may have run.
  rm -f "$out"
  "$@" >"$out" 2>/dev/null &
  pids+=($!)
  for _ in $(seq 1 1200); do
    if [ -s "$out" ]; then
      # shellcheck disable=SC2034 # read by the caller
      ready=$(head -n1 "$out")
      return 0
    fi
    sleep 0.1
  done
  die "$* did not start"
}
# json TEXT KEY: one member of a JSON object.
json() { python3 -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$1" "$2"; }

# Best of $runs. best_of MEASURE CMD... runs `MEASURE CMD...` $runs times and prints the line with
# the smallest first field (seconds). A script may define before_run (called before each run, not
# timed) and after_run LINE (called with each run's line, e.g. to check it).
best_of() {
  local measure=$1 line best=""
  shift
  for _ in $(seq 1 "$runs"); do
    if declare -F before_run >/dev/null; then before_run; fi
    line=$("$measure" "$@") || exit 1
    if declare -F after_run >/dev/null; then after_run "$line"; fi
    if [ -z "$best" ] || awk -v a="${line%% *}" -v b="${best%% *}" 'BEGIN { exit !(a < b) }'; then best=$line; fi
  done
  echo "$best"
}
# Measures. wall CMD...: wall seconds of CMD (a command or a shell function), its output dropped.
wall() {
  local t0 t1
  t0=$(date +%s.%N)
  "$@" >/dev/null 2>&1 || die "failed: $*"
  t1=$(date +%s.%N)
  awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.6f\n", b - a }'
}
# cpu_wall CMD...: "cpu-seconds wall-seconds" of CMD (a program; user + sys of it and its
# children), its output dropped. best_of then keeps the run of least CPU time.
# Measured by getrusage (microseconds; /usr/bin/time rounds CPU time to 10 ms).
cpu_wall() {
  python3 -c '
import resource, subprocess, sys, time
t = time.perf_counter()
rc = subprocess.call(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
wall = time.perf_counter() - t
r = resource.getrusage(resource.RUSAGE_CHILDREN)
print("%.4f %.4f" % (r.ru_utime + r.ru_stime, wall))
sys.exit(rc)' "$@" || die "failed: $*"
}
# wall_rss CMD...: "seconds peak-RSS-KiB" of CMD (a program) from /usr/bin/time. CMD's stdout is
# kept in $bench_tmp/stdout until the next run; its stderr is dropped.
wall_rss() {
  /usr/bin/time -f '%e %M' -o "$bench_tmp/time" "$@" >"$bench_tmp/stdout" 2>/dev/null || die "failed: $*"
  tail -n1 "$bench_tmp/time"
}
