#!/usr/bin/env bash
# Runs the libFuzzer targets of a fuzzing build (tests/fuzz/README.md says how to make one) on
# their committed seed corpora, and fails when any of them finds anything.
#   scripts/fuzz.sh [-B] [-b BUILD_DIR] [-t SECONDS] [-j JOBS] [-m] [TARGET...]
# -B  configure and build BUILD_DIR first (clang 14, ASan+UBSan, -DCIDRUN_FUZZ=ON; ccache)
# -b  the build with -DCIDRUN_FUZZ=ON (default build/fuzz-build, where `make fuzz` and CTest put it)
# -t  seconds per target (default 20; CI uses this, longer runs are by hand: -t 3600)
# -j  targets run at once, and build jobs with -B (default 2)
# -m  merge: new inputs that add coverage are minimized into tests/fuzz/corpus/<target>/
# Each target starts from tests/fuzz/corpus/<target>/ (read only) plus a scratch directory for the
# inputs it makes, with tests/fuzz/<target>.dict when that exists. A crash, a sanitizer report, a
# failed invariant, a timeout (10 s per input) or a leak fails the run: the input is kept under
# BUILD_DIR/fuzz/findings/ and named on stderr. A table of executions and CPU seconds per target
# ends the output. Runs of different targets may share one build at the same time (CTest runs
# one test per target).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=$root/build/fuzz-build
seconds=20
jobs=2
merge=0
make_build=0
while getopts "Bb:t:j:m" opt; do
  case $opt in
    B) make_build=1 ;;
    b) build=$OPTARG ;;
    t) seconds=$OPTARG ;;
    j) jobs=$OPTARG ;;
    m) merge=1 ;;
    *) sed -n '2,16p' "$0" >&2; exit 2 ;;
  esac
done
shift $((OPTIND - 1))
if [ "$make_build" = 1 ]; then
  # Debian's clang-14 package installs clang-14 and clang++-14 (plain clang++ comes with another
  # package); libfuzzer-14-dev brings libFuzzer. scripts/bootstrap.sh installs both.
  for c in clang-14 clang++-14; do
    command -v "$c" >/dev/null || { echo "fuzz.sh: $c missing (apt-get install clang-14 libfuzzer-14-dev)" >&2; exit 2; }
  done
  cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_C_COMPILER=clang-14 -DCMAKE_CXX_COMPILER=clang++-14 \
    -DCIDRUN_SANITIZE=address,undefined -DCIDRUN_FUZZ=ON -DCIDRUN_BENCH=OFF >/dev/null
  cmake --build "$build" -j "$jobs" --target fuzz
fi
if [ "$seconds" = 0 ]; then
  [ "$make_build" = 1 ] && exit 0  # -B -t 0: build only
  echo "fuzz.sh: -t 0 would fuzz forever (libFuzzer's meaning); give seconds" >&2
  exit 2
fi
build=$(cd "$build" && pwd)
corpora=$root/tests/fuzz/corpus
bin=$build/fuzz
[ -d "$bin" ] || { echo "fuzz.sh: $bin missing (build with -DCIDRUN_FUZZ=ON)" >&2; exit 2; }
if [ $# -gt 0 ]; then
  targets=("$@")
else
  mapfile -t targets < <(ls "$corpora")
fi
for t in "${targets[@]}"; do
  [ -x "$bin/fuzz_$t" ] || { echo "fuzz.sh: no target fuzz_$t in $bin" >&2; exit 2; }
  [ -d "$corpora/$t" ] || { echo "fuzz.sh: no corpus $corpora/$t" >&2; exit 2; }
done

work=$build/fuzz/run
findings=$build/fuzz/findings
mkdir -p "$work" "$findings"

run_one() {
  local t=$1 out=$work/$1
  rm -rf "$out"
  mkdir -p "$out/new"
  # Targets that write files (unixfs_dag's flatfs store and `get`) do it here, on tmpfs, and the
  # directory goes whatever the run's end.
  local scratch
  scratch=$(mktemp -d /dev/shm/cidrun-fuzz-XXXXXX)
  local args=(-max_total_time="$seconds" -timeout=10 -rss_limit_mb=2560 -print_final_stats=1
    -artifact_prefix="$findings/$t-" -close_fd_mask=1)
  [ -f "$root/tests/fuzz/$t.dict" ] && args+=(-dict="$root/tests/fuzz/$t.dict")
  local rc=0
  # bash's `time` reports the CPU the target (and its threads) used.
  { TIMEFORMAT='%U %S'; time CIDRUN_FUZZ_SCRATCH=$scratch "$bin/fuzz_$t" "${args[@]}" \
      "$out/new" "$corpora/$t" >"$out/log" 2>&1; } 2>"$out/cpu" || rc=$?
  echo "$rc" >"$out/rc"
  if [ "$merge" = 1 ] && [ "$rc" = 0 ]; then
    CIDRUN_FUZZ_SCRATCH=$scratch "$bin/fuzz_$t" -merge=1 "$corpora/$t" "$out/new" \
      >>"$out/log" 2>&1 || true
  fi
  rm -rf "$scratch"
}

running=0
for t in "${targets[@]}"; do
  run_one "$t" &
  running=$((running + 1))
  if [ "$running" -ge "$jobs" ]; then
    wait -n
    running=$((running - 1))
  fi
done
wait

failed=0
printf '%-14s %12s %10s %8s  %s\n' target executions exec/s cpu_s result
for t in "${targets[@]}"; do
  out=$work/$t
  rc=$(cat "$out/rc")
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$out/log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$out/log" | tail -1)
  cpu=$(awk '{printf "%.1f", $1 + $2}' "$out/cpu" 2>/dev/null || echo "?")
  result=ok
  if [ "$rc" != 0 ]; then
    result="FAILED (exit $rc)"
    failed=1
  fi
  printf '%-14s %12s %10s %8s  %s\n' "$t" "${execs:-?}" "${rate:-?}" "$cpu" "$result"
  if [ "$rc" != 0 ]; then
    echo "--- fuzz_$t: last lines of its log ($out/log):" >&2
    tail -30 "$out/log" >&2
    echo "--- reproduce: $bin/fuzz_$t FILE (inputs kept in $findings)" >&2
  fi
done
exit "$failed"
