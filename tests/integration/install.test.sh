#!/usr/bin/env bash
# `cmake --install` of this build (make install, make install-debug; cmake/install-cidrun.cmake):
# the installed binary has no debug information or symbol table and runs; the debug information is
# installed apart under lib/debug/.build-id/ by the binary's build ID, with its DWARF and symbols;
# a second install replaces a binary that is running.
set -euo pipefail
: "${CIDRUN:?set CIDRUN to the cidrun binary}"
: "${CIDRUN_BUILD_DIR:?}"
fail() { echo "install.test: FAIL: $*" >&2; exit 1; }

work=$(mktemp -d /tmp/cidrun-install.XXXXXX)
reader=
cleanup() {
  [ -z "$reader" ] || kill "$reader" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
install_into() { DESTDIR=$work/root cmake --install "$CIDRUN_BUILD_DIR" --prefix /usr/local "$@" >/dev/null; }

install_into
bin=$work/root/usr/local/bin/cidrun
[ -x "$bin" ] || fail "no executable $bin"
sections=$(readelf -S -W "$bin")
grep -q '\.debug_info' <<<"$sections" && fail "the installed binary has .debug_info"
grep -q '\.symtab' <<<"$sections" && fail "the installed binary has a symbol table"
grep -q '\.gnu_debuglink' <<<"$sections" || fail "the installed binary names no debug file"
[ "$("$bin" --version)" = "$("$CIDRUN" --version)" ] || fail "the installed binary's --version differs"
[ ! -e "$work/root/usr/local/lib/debug" ] || fail "debug information installed without --component debug"
echo "ok: bin/cidrun stripped ($(stat -c %s "$bin") bytes; the build's: $(stat -c %s "$CIDRUN"))"

install_into --component debug
id=$(readelf -n "$CIDRUN" | sed -n 's/.*Build ID: \([0-9a-f]*\).*/\1/p')
[ -n "$id" ] || fail "$CIDRUN has no build ID"
[ "$(readelf -n "$bin" | sed -n 's/.*Build ID: \([0-9a-f]*\).*/\1/p')" = "$id" ] ||
  fail "the installed binary's build ID differs from the build's"
debug=$work/root/usr/local/lib/debug/.build-id/${id:0:2}/${id:2}.debug
[ -f "$debug" ] || fail "no $debug"
sections=$(readelf -S -W "$debug")
grep -q '\.debug_info' <<<"$sections" || fail "$debug has no .debug_info"
grep -q '\.symtab' <<<"$sections" || fail "$debug has no symbol table"
echo "ok: debug information at lib/debug/.build-id/${id:0:2}/${id:2}.debug ($(stat -c %s "$debug") bytes)"

# Installing again while the installed binary runs (waiting on its stdin) replaces the file
# instead of failing on it; the running process is left alone.
mkfifo "$work/stdin"
"$bin" --repo-dir "$work/repo" block put <"$work/stdin" >/dev/null 2>&1 &
reader=$!
exec 3>"$work/stdin"
for _ in $(seq 100); do
  [ "$(readlink "/proc/$reader/exe" 2>/dev/null)" = "$bin" ] && break
  sleep 0.05
done
[ "$(readlink "/proc/$reader/exe" 2>/dev/null)" = "$bin" ] || fail "the installed binary did not start"
install_into || fail "a second install over the running binary failed"
kill -0 "$reader" 2>/dev/null || fail "the running binary ended during the install"
exec 3>&-
wait "$reader" || true
reader=
[ "$("$bin" --version)" = "$("$CIDRUN" --version)" ] || fail "the reinstalled binary does not run"
echo "ok: a second install replaces a running binary"
