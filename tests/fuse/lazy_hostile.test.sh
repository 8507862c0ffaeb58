#!/usr/bin/env bash
# Hostile DAGs through a lazy mount: blocks that lie about sizes, nest thousands of levels deep,
# list hundreds of thousands of names, link one node over and over (2^60 bytes of file, 256^7
# paths of HAMT from a few blocks), or arrive corrupted from the gateway. Built as real blocks by
# hostile_dags.py, served by `cidrun serve`, mounted with `mount --lazy` and run with
# `run --lazy`. Every read or listing must give the right bytes or EIO within seconds, with one
# line in the server's log; nothing may hang the kernel, the server, umount or a container's
# teardown; `repo verify` passes afterwards. Each step has its own time bound: a hang fails the
# test instead of stalling CI.
set -euo pipefail
: "${CIDRUN:?set CIDRUN to the cidrun binary}"
: "${CIDRUN_SOURCE_DIR:?}"
[ "$(id -u)" -eq 0 ] || { echo "lazy_hostile.test: needs root (FUSE mounts, containers)" >&2; exit 1; }
[ -e /dev/fuse ] || { echo "lazy_hostile.test: /dev/fuse is missing" >&2; exit 1; }

work=$(mktemp -d /tmp/cidrun-hostile.XXXXXX)
serve_pid=
cleanup() {
  [ -z "$serve_pid" ] || kill "$serve_pid" 2>/dev/null || true
  for m in $(awk -v w="$work" '$2 ~ "^"w { print $2 }' /proc/mounts | sort -r); do
    umount -l "$m" 2>/dev/null || true
  done
  rm -rf "$work" 2>/dev/null || true
}
trap cleanup EXIT
fail() { echo "lazy_hostile.test: FAIL: $*" >&2; exit 1; }
export CIDRUN_NETWORK=none CIDRUN_KUBO_AUTO=0

# Runs a command for at most $1 seconds; a command still running then is a hang: the test fails.
# Otherwise returns the command's own status.
bounded() {
  local secs=$1 rc=0
  shift
  timeout -k 5 "$secs" "$@" || rc=$?
  if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then fail "still running after ${secs} s: $*"; fi
  return "$rc"
}

# The origin: a busybox root (so that a container can run on the hostile tree) and the hostile
# blocks, one of them then overwritten in the origin's store, served over HTTP.
OC=("$CIDRUN" --repo-dir "$work/origin")
"$CIDRUN_SOURCE_DIR/scripts/make-busybox-root.sh" "$work/rootfs" >/dev/null
bb=$("${OC[@]}" add -Q -r "$work/rootfs")
mapfile -t bb_links < <("${OC[@]}" ls "$bb" | awk '{ n = $NF; sub("/$", "", n); print n "=" $1 }')
python3 "$CIDRUN_SOURCE_DIR/tests/fuse/hostile_dags.py" "$work/hostile.car" "${bb_links[@]}" \
  >"$work/roots"
root_of() { awk -v n="$1" '$1 == n { print $2 }' "$work/roots"; }
"${OC[@]}" dag import --silent "$work/hostile.car"
corrupt_file=$(find "$work/origin/blocks" -name "$(root_of corrupt-key).data")
[ -f "$corrupt_file" ] || fail "no block file for the block to corrupt"
chmod u+w "$corrupt_file"
head -c 1024 /dev/zero >"$corrupt_file"
"${OC[@]}" serve --listen 127.0.0.1:0 -q >"$work/serve.out" 2>&1 &
serve_pid=$!
for _ in $(seq 100); do grep -q gateway "$work/serve.out" && break; sleep 0.1; done
gw=$(sed -n 's/.*"gateway":"\([^"]*\)".*/\1/p' "$work/serve.out")
[ -n "$gw" ] || fail "serve did not start: $(cat "$work/serve.out")"
export CIDRUN_SOURCES=$gw

state_of() { dirname "$(grep -lx "$1" /run/cidrun/fuse/*/mountpoint | head -1)"; }
# The server logged exactly one error line matching $2 (a grep -E pattern).
logged_once() {
  local n
  n=$(grep -cE "error: .*$2" "$1/server.log" || true)
  [ "$n" -eq 1 ] || fail "expected one log line matching '$2', found $n: $(cat "$1/server.log")"
}
# Reading $1 fails with EIO and gives not one byte.
read_fails() {
  local rc=0
  bounded 20 cat "$1" >"$work/out" 2>"$work/err" || rc=$?
  [ "$rc" -ne 0 ] || fail "reading $1 succeeded: $(od -c "$work/out" | head -3)"
  grep -q "Input/output error" "$work/err" || fail "reading $1: $(cat "$work/err")"
  [ ! -s "$work/out" ] || fail "reading $1 gave bytes before its error: $(od -c "$work/out" | head -3)"
}

# 1. A mount that fetches only what is read: every case, one at a time.
m=$work/mnt
mkdir "$m"
LC=("$CIDRUN" --repo-dir "$work/lazy")
bounded 60 "${LC[@]}" mount --lazy --no-fill "$(root_of hostile)" "$m" >/dev/null
st=$(state_of "$m")
[ "$(bounded 20 cat "$m/good.txt")" = alpha ] || fail "good.txt"

# Size lies: bigger and smaller, in the file node, in an inner node, in the directory's link.
[ "$(stat -c %s "$m/filesize-big")" = 10 ] && [ "$(stat -c %s "$m/tsize-big")" = 9 ] &&
  [ "$(stat -c %s "$m/tsize-small")" = 2 ] || fail "sizes as their nodes and links claim them"
for f in filesize-big filesize-small inner-lie tsize-big tsize-small; do read_fails "$m/$f"; done
logged_once "$st" "holds 5 bytes where its parent claims 10"
logged_once "$st" "holds 5 bytes where its parent claims 3"
logged_once "$st" "holds 6 bytes where its parent claims 4"
logged_once "$st" "'tsize-big' holds 5 bytes, its directory says 9"
logged_once "$st" "'tsize-small' holds 5 bytes, its directory says 2"
rc=0
bounded 20 stat "$m/size-past-off_t" >/dev/null 2>"$work/err" || rc=$?
[ "$rc" -ne 0 ] && grep -q "Input/output error" "$work/err" || fail "stat of a 2^63-byte file: rc $rc"
logged_once "$st" "'size-past-off_t' claims 9223372036854775808 bytes, more than a file can hold"
echo "ok: size lies (file node, inner node, directory link; bigger and smaller) are EIO, no bytes"

# Absurd depth: a file of 5000 nested nodes; 300 nested directories (256 are shown, as `get`
# and checkouts accept).
read_fails "$m/deep-file"
logged_once "$st" "file DAG nested too deeply"
rc=0
bounded 30 find "$m/deep-dir" >"$work/out" 2>"$work/err" || rc=$?
[ "$rc" -ne 0 ] && grep -q "Input/output error" "$work/err" || fail "find deep-dir: rc $rc, $(cat "$work/err")"
[ "$(wc -l <"$work/out")" -eq 257 ] || fail "find deep-dir listed $(wc -l <"$work/out") paths, not 257"
logged_once "$st" "directories nested deeper than 256 levels"
echo "ok: a 5000-deep file and a 300-deep directory chain are EIO past the limits"

# Huge directories: 69,000 names in one block, 204,800 in a HAMT of 256 shards; listed whole,
# a name looked up; and a HAMT whose every slot links one shard (256^7 paths) is refused.
[ "$(bounded 30 ls -f "$m/huge-dir" | wc -l)" -eq 69002 ] || fail "huge-dir listing"
[ "$(stat -c %s "$m/huge-dir/12345")" = 0 ] || fail "a name of huge-dir"
[ "$(bounded 30 ls -f "$m/huge-hamt" | wc -l)" -eq 204802 ] || fail "huge-hamt listing"
rc=0
bounded 20 ls "$m/hamt-bomb" >/dev/null 2>"$work/err" || rc=$?
[ "$rc" -ne 0 ] && grep -q "Input/output error" "$work/err" || fail "ls hamt-bomb: rc $rc, $(cat "$work/err")"
logged_once "$st" "HAMT links the same shard more than once"
echo "ok: directories of 69,000 and 204,800 names list in bounded time; a HAMT bomb is EIO"

# One node linked over and over: 2^60 bytes of "x" from 51 blocks, read anywhere, never walked
# whole; 64 levels of empty nodes between "abc" and "def" are checked, never walked.
[ "$(stat -c %s "$m/diamond")" = 1152921504606846976 ] || fail "diamond's size"
far=$(bounded 20 dd if="$m/diamond" bs=128K count=4 skip=$((1 << 40)) status=none | tr -d x | wc -c)
got=$(bounded 20 dd if="$m/diamond" bs=128K count=4 skip=$((1 << 40)) status=none | wc -c)
[ "$far" -eq 0 ] && [ "$got" -eq 524288 ] || fail "512 KiB of diamond 2^57 bytes in: $got bytes, $far not x"
[ "$(bounded 20 cat "$m/zero-diamond")" = abcdef ] || fail "zero-diamond"
echo "ok: a 2^60-byte diamond reads right anywhere; a 2^64-path empty diamond reads right"

# A gateway that sends other bytes than the CID's: EIO, the source named.
read_fails "$m/corrupt.bin"
logged_once "$st" "$(root_of corrupt) not found \(${gw}: sent bytes that do not hash"
echo "ok: a corrupt block from the gateway is EIO, logged with its source"

bounded 30 "${LC[@]}" umount "$m"
for _ in $(seq 100); do pgrep -f "fuse-(server|holder) .*$work/lazy" >/dev/null || break; sleep 0.1; done
if pgrep -f "fuse-(server|holder) .*$work/lazy" >/dev/null; then fail "processes left after umount"; fi
CIDRUN_SOURCES= bounded 60 "${LC[@]}" repo verify >/dev/null || fail "repo verify after the mount"
echo "ok: umount leaves no process; repo verify passes"

# 2. With the background fill (the default): it must end although the DAG's paths do not (the
# diamonds, the HAMT bomb: every block is fetched once), and reads with every block present
# (read-ahead walks what is local) stay right and bounded.
m=$work/mnt-fill
mkdir "$m"
FC=("$CIDRUN" --repo-dir "$work/fill")
bounded 60 "${FC[@]}" mount --lazy "$(root_of fillable)" "$m" >/dev/null
filled=
for _ in $(seq 300); do
  if CIDRUN_SOURCES= "${FC[@]}" dag export "$(root_of fillable)" >/dev/null 2>&1; then
    filled=1
    break
  fi
  sleep 0.1
done
[ -n "$filled" ] || fail "the background fill did not complete in 30 s"
[ "$(bounded 20 cat "$m/zero-diamond")" = abcdef ] || fail "zero-diamond after the fill"
got=$(bounded 20 dd if="$m/diamond" bs=128K count=4 skip=$((1 << 30)) status=none | tr -d x | wc -c)
[ "$got" -eq 0 ] || fail "diamond after the fill"
read_fails "$m/inner-lie"
bounded 30 "${FC[@]}" umount "$m"
CIDRUN_SOURCES= bounded 60 "${FC[@]}" repo verify >/dev/null || fail "repo verify after the fill"
echo "ok: the background fill of the hostile tree completes; reads after it are right"

# 3. A container on the hostile tree: its reads fail or succeed in bounded time, it exits, and
# its teardown leaves no mount server behind.
RC=("$CIDRUN" --repo-dir "$work/run")
out=$(bounded 120 "${RC[@]}" run --rm --lazy "$(root_of container)" -- /bin/sh -c '
  cat /good.txt; echo
  cat /filesize-big /inner-lie /deep-file 2>/dev/null || echo eio
  ls /hamt-bomb >/dev/null 2>&1
  set -- /huge-hamt/*; echo $#  # names only: ls would stat each through the overlay
  head -c 3 /diamond; cat /zero-diamond; echo
  find /deep-dir 2>/dev/null | wc -l') || fail "run --lazy on the hostile tree: $out"
[ "$out" = "$(printf 'alpha\neio\n204800\nxxxabcdef\n257')" ] || fail "the container printed: $out"
for _ in $(seq 100); do pgrep -f "fuse-(server|holder) .*$work/run" >/dev/null || break; sleep 0.1; done
if pgrep -f "fuse-(server|holder) .*$work/run" >/dev/null; then fail "mount processes left after the container"; fi
CIDRUN_SOURCES= bounded 60 "${RC[@]}" repo verify >/dev/null || fail "repo verify after the run"
echo "ok: a container reads the hostile tree, exits and leaves nothing behind"
