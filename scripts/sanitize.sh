#!/usr/bin/env bash
# Builds and runs tests under the sanitizers, in a build directory of their own, and fails on any
# sanitizer report, including one from a process the test started (a `cidrun` command).
#   scripts/sanitize.sh build [-b BUILD_DIR] [-s LIST] [-j JOBS] TARGET...
#   scripts/sanitize.sh run [-b BUILD_DIR] PROGRAM [--each] [ARG...]
# build: configures BUILD_DIR if it has no CMakeCache.txt (clang 14, -DCIDRUN_SANITIZE=LIST,
#   default address,undefined; ccache) and builds the targets. CI's ASan+UBSan runs reuse the
#   fuzzing build (build/fuzz-build, which fuzz.build configures with the same sanitizers), so
#   the libraries are compiled once for both.
# run: runs PROGRAM (a path relative to BUILD_DIR, or absolute) with every report written to a
#   fresh directory instead of stderr, then prints the reports and fails if there is one, whatever
#   PROGRAM's exit status: a test that expects a command to fail would otherwise pass when the
#   command died of a sanitizer report. Reports from inside a container (after pivot_root) cannot
#   reach that directory; they go to the container's stderr.
# run --each: PROGRAM is a GoogleTest program; each of its tests (those ARG's --gtest_filter
#   selects) runs in a process of its own, as CTest runs the ordinary build's tests (the container
#   tests expect it: one work directory and busybox root per process). A test fails on its exit
#   status, and also on a report it printed (one from inside a container).
# Every finding stops the process (the build has -fno-sanitize-recover=all; halt_on_error below).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
usage() { sed -n '4,5p' "$0" | sed 's/^# *//' >&2; exit 2; }
[ $# -ge 1 ] || usage
mode=$1
shift
build=$root/build/fuzz-build
sanitizers=address,undefined
jobs=2
while getopts "b:s:j:" opt; do
  case $opt in
    b) build=$OPTARG ;;
    s) sanitizers=$OPTARG ;;
    j) jobs=$OPTARG ;;
    *) usage ;;
  esac
done
shift $((OPTIND - 1))
[ $# -ge 1 ] || usage

case $mode in
  build)
    if [ ! -f "$build/CMakeCache.txt" ]; then
      for c in clang-14 clang++-14; do
        command -v "$c" >/dev/null || { echo "sanitize.sh: $c missing (apt-get install clang-14)" >&2; exit 2; }
      done
      cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
        -DCMAKE_C_COMPILER=clang-14 -DCMAKE_CXX_COMPILER=clang++-14 \
        -DCIDRUN_SANITIZE="$sanitizers" -DCIDRUN_BENCH=OFF >/dev/null
    fi
    exec cmake --build "$build" -j "$jobs" --target "$@"
    ;;
  run) ;;
  *) usage ;;
esac

build=$(cd "$build" && pwd)
program=$1
shift
case $program in /*) ;; *) program=$build/$program ;; esac
[ -x "$program" ] || { echo "sanitize.sh: $program missing (build it first)" >&2; exit 2; }
mkdir -p "$build/sanitize"
reports=$(mktemp -d "$build/sanitize/$(basename "$program").XXXXXX")
# The symbolizer turns addresses into file:line in the reports.
symbolizer=$(command -v llvm-symbolizer-14 || command -v llvm-symbolizer || true)
common="halt_on_error=1:print_stacktrace=1:strip_path_prefix=$root/"
[ -n "$symbolizer" ] && common+=":external_symbolizer_path=$symbolizer"
export ASAN_OPTIONS="$common:log_path=$reports/asan:detect_leaks=1:check_initialization_order=1:strict_init_order=1:detect_stack_use_after_return=0"
export UBSAN_OPTIONS="$common:log_path=$reports/ubsan"
export LSAN_OPTIONS="$common:log_path=$reports/lsan:suppressions=$root/tests/sanitize/lsan.supp:print_suppressions=0"
export TSAN_OPTIONS="$common:log_path=$reports/tsan:second_deadlock_stack=1"
rc=0
if [ "${1:-}" = --each ]; then
  shift
  mapfile -t tests < <("$program" --gtest_list_tests "$@" |
    awk '/^[^ ]/ { suite = $1 } /^  / { print suite $1 }')
  [ "${#tests[@]}" -gt 0 ] || { echo "sanitize.sh: no test of $program matches: $*" >&2; exit 2; }
  failed=()
  out=$reports/test-output
  for t in "${tests[@]}"; do
    if ! "$program" --gtest_filter="$t" >"$out" 2>&1 ||
      grep -Eq 'ERROR: (Address|Leak|Thread)Sanitizer|runtime error: ' "$out"; then
      failed+=("$t")
      cat "$out" >&2
    fi
  done
  rm -f "$out"
  echo "sanitize.sh: ${#tests[@]} tests of $(basename "$program"), each in its own process;" \
    "${#failed[@]} failed${failed[*]:+: ${failed[*]}}"
  [ "${#failed[@]}" -eq 0 ] || rc=1
else
  "$program" "$@" || rc=$?
fi
found=0
# LeakSanitizer logs "Unable to get registers from thread N." when a thread exits while it stops
# the world for its leak check. That line is a notice, not a finding: LSan goes on, skips the
# vanished thread or scans its whole stack, and reports any real leak separately. A file holding
# only such lines is shown but does not fail the run; a file with anything else in it does.
notice='^==[0-9]+==Unable to get registers from thread [0-9]+\.$'
for f in "$reports"/*; do
  [ -e "$f" ] || continue
  if [ -s "$f" ] && ! grep -Evq "$notice" "$f"; then
    echo "--- sanitizer notice $f (not a finding):" >&2
    cat "$f" >&2
    continue
  fi
  found=$((found + 1))
  echo "--- sanitizer report $f:" >&2
  cat "$f" >&2
done
if [ "$found" -gt 0 ]; then
  echo "sanitize.sh: $found sanitizer report(s) from $(basename "$program") and the processes it started (kept in $reports)" >&2
  exit 1
fi
rm -rf "$reports"
exit "$rc"
