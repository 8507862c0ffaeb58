#!/usr/bin/env bash
# scripts/sanitize.sh run: a report fails the run whatever the program's exit status; LSan's
# "Unable to get registers from thread N." alone (a thread that exited during the leak check) is
# a notice and does not. The programs below write into the log files the sanitizers would.
# run --each: every listed test runs alone, and one that prints a report fails.
set -euo pipefail
cd "${CIDRUN_SOURCE_DIR:?}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/build"
# A stand-in for an instrumented program: writes $1 into the LSan log path sanitize.sh set, exits $2.
cat >"$work/build/prog" <<'PROG'
#!/usr/bin/env bash
log=$(tr ':' '\n' <<<"$LSAN_OPTIONS" | sed -n 's/^log_path=//p')
[ -n "$1" ] && printf '%b' "$1" >"$log.$$"
exit "$2"
PROG
chmod +x "$work/build/prog"
run() { bash scripts/sanitize.sh run -b "$work/build" prog "$@" 2>"$work/err"; }
notice='==123==Unable to get registers from thread 124.\n'

run '' 0 || { echo "FAIL: a clean run failed"; exit 1; }
rc=0; run '' 3 || rc=$?
[ "$rc" = 3 ] || { echo "FAIL: the program's exit status 3 became $rc"; exit 1; }
run "$notice$notice" 0 || { echo "FAIL: LSan's notice alone failed the run"; cat "$work/err"; exit 1; }
grep -q 'not a finding' "$work/err" || { echo "FAIL: the notice was not shown"; exit 1; }
if run "$notice==123==ERROR: LeakSanitizer: detected memory leaks\n" 0; then
  echo "FAIL: a leak next to the notice passed"; exit 1
fi
if run '==9==ERROR: AddressSanitizer: heap-use-after-free\n' 0; then
  echo "FAIL: an ASan report passed"; exit 1
fi
grep -q 'heap-use-after-free' "$work/err" || { echo "FAIL: the report was not printed"; exit 1; }

# A stand-in GoogleTest program: Suite.A passes, Suite.B passes but prints a UBSan report (as a
# process inside a container does), Other.C fails; it refuses to run more than one test at once.
cat >"$work/build/gtest" <<'PROG'
#!/usr/bin/env bash
case "$1" in
  --gtest_list_tests)
    if [ "${2:-}" = --gtest_filter=Suite.A ]; then printf 'Suite.\n  A\n'
    else printf 'Suite.\n  A\n  B\nOther.\n  C\n'; fi ;;
  --gtest_filter=Suite.A) echo ran A ;;
  --gtest_filter=Suite.B) echo "x.cpp:1:2: runtime error: signed integer overflow" ;;
  --gtest_filter=Other.C) exit 1 ;;
  *) echo "not one test: $*"; exit 3 ;;
esac
PROG
chmod +x "$work/build/gtest"
each() { bash scripts/sanitize.sh run -b "$work/build" gtest --each "$@" >"$work/out" 2>&1; }
each --gtest_filter=Suite.A || { echo "FAIL: --each failed a passing test"; cat "$work/out"; exit 1; }
grep -q '1 tests of gtest, each in its own process; 0 failed' "$work/out" || {
  echo "FAIL: --each summary"; cat "$work/out"; exit 1; }
if each; then echo "FAIL: --each passed a test that printed a report"; exit 1; fi
grep -q '3 tests of gtest.*2 failed: Suite.B Other.C' "$work/out" || {
  echo "FAIL: --each did not name the failed tests"; cat "$work/out"; exit 1; }
echo "sanitize script: notice alone passes, findings fail, --each runs every test alone"
