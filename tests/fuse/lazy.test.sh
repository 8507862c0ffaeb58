#!/usr/bin/env bash
# Lazy start: a repository that holds nothing of an image mounts it at once over FUSE and runs a
# container from it, blocks coming from a gateway (`cidrun serve` of another repository) as the
# container reads them; owners, modes and file capabilities show through the mount; `--no-fill`
# fetches only what was read; the server process can be killed and a successor takes over the
# mount while it is in use; `umount` leaves nothing behind.
set -euo pipefail
: "${CIDRUN:?set CIDRUN to the cidrun binary}"
: "${CIDRUN_SOURCE_DIR:?}"
[ "$(id -u)" -eq 0 ] || { echo "lazy.test: needs root (FUSE mounts, containers)" >&2; exit 1; }
[ -e /dev/fuse ] || { echo "lazy.test: /dev/fuse is missing" >&2; exit 1; }

work=$(mktemp -d /tmp/cidrun-lazy.XXXXXX)
serve_pid=
cleanup() {
  [ -z "$serve_pid" ] || kill "$serve_pid" 2>/dev/null || true
  for m in $(awk -v w="$work" '$2 ~ "^"w { print $2 }' /proc/mounts | sort -r); do
    umount -l "$m" 2>/dev/null || true
  done
  rm -rf "$work" 2>/dev/null || true
}
trap cleanup EXIT
fail() { echo "lazy.test: FAIL: $*" >&2; exit 1; }
export CIDRUN_NETWORK=none

# The origin: a busybox image with owners and a file capability, served over HTTP.
root=$work/rootfs
"$CIDRUN_SOURCE_DIR/scripts/make-busybox-root.sh" "$root" >/dev/null
chown 0:42 "$root/etc/hostname"
chmod 0640 "$root/etc/hostname"
head -c 3000000 /dev/urandom >"$root/big.bin"
want=$(sha256sum <"$root/big.bin")
id=$("$CIDRUN" --repo-dir "$work/origin" image import -q rootfs:"$root")
"$CIDRUN" --repo-dir "$work/origin" serve --listen 127.0.0.1:0 -q >"$work/serve.out" 2>&1 &
serve_pid=$!
for _ in $(seq 100); do grep -q gateway "$work/serve.out" && break; sleep 0.1; done
gw=$(sed -n 's/.*"gateway":"\([^"]*\)".*/\1/p' "$work/serve.out")
[ -n "$gw" ] || fail "serve did not start: $(cat "$work/serve.out")"
export CIDRUN_SOURCES=$gw

# 1. run --lazy from an empty repository.
LC=("$CIDRUN" --repo-dir "$work/lazy")
out=$(timeout 120 "${LC[@]}" run --rm --lazy --no-fill "$id" /bin/sh -c 'stat -c "%u:%g %a" /etc/hostname; cat /etc/hostname')
[ "$out" = "$(printf '0:42 640\ncidrun')" ] || fail "run --lazy printed '$out'"
have=$(du -sb "$work/lazy/blocks" | cut -f1)
# The run read busybox (2 MB) and a few small files: big.bin (3 MB) must not have come.
[ "$have" -lt 3000000 ] || fail "--no-fill fetched $have bytes, big.bin included"
echo "ok: run --lazy starts from an empty repository; --no-fill fetched only $have bytes"

# 2. mount --lazy: what the mount shows is the image; a read of a big file is verified content.
mkdir "$work/mnt"
timeout 60 "${LC[@]}" mount --lazy --no-fill "$id" "$work/mnt" >/dev/null
[ "$(stat -c '%u:%g %a' "$work/mnt/etc/hostname")" = "0:42 640" ] || fail "owner/mode through the mount"
[ "$(sha256sum <"$work/mnt/big.bin")" = "$want" ] || fail "big.bin read through the mount differs"
[ "$(readlink "$work/mnt/bin/sh")" = busybox ] || fail "symlink through the mount"
if (echo x >"$work/mnt/new") 2>/dev/null; then fail "the mount is writable"; fi
echo "ok: mount --lazy shows owners, modes, symlinks and content"

# 3. The server dies with the mount in use: its successor answers, nothing fails.
exec 7<"$work/mnt/etc/passwd"
server=$(pgrep -f "fuse-server .*--repo $work/lazy" | head -1 || true)
[ -n "$server" ] || fail "no fuse-server process"
kill -9 "$server"
# Nothing may come from the page cache: every read below reaches the successor.
sync
echo 3 >/proc/sys/vm/drop_caches
ok=
for _ in $(seq 100); do
  if [ "$(cat "$work/mnt/etc/group" 2>/dev/null)" = "$(cat "$root/etc/group")" ] &&
    [ "$(cat <&7)" = "$(cat "$root/etc/passwd")" ]; then ok=1; break; fi
  sleep 0.1
done
exec 7<&-
[ -n "$ok" ] || fail "the mount did not survive its server's death"
successor=$(pgrep -f "fuse-server .*--repo $work/lazy" | head -1 || true)
[ -n "$successor" ] && [ "$successor" != "$server" ] || fail "no successor server"
[ "$(sha256sum <"$work/mnt/big.bin")" = "$want" ] || fail "big.bin after the restart"
echo "ok: a killed server is replaced while the mount is in use"

# 4. umount: nothing left.
"${LC[@]}" umount "$work/mnt"
for _ in $(seq 100); do grep -q " $work/mnt " /proc/mounts || break; sleep 0.1; done
if grep -q " $work/mnt " /proc/mounts; then fail "still mounted after umount"; fi
for _ in $(seq 100); do pgrep -f "fuse-(server|holder) .*$work" >/dev/null || break; sleep 0.1; done
if pgrep -f "fuse-(server|holder) .*$work" >/dev/null; then fail "processes left after umount"; fi
echo "ok: umount leaves no mount and no process"

# 5. Bad input: one line, non-zero.
set +e
"${LC[@]}" mount --lazy bafybeihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku "$work/mnt" 2>"$work/err"
rc=$?
set -e
[ "$rc" -ne 0 ] && [ "$(wc -l <"$work/err")" -eq 1 ] || fail "mount of an unknown CID: rc $rc, $(cat "$work/err")"
echo "ok: a root no source has is one error line"

# 6. trace: the blocks a start reads become the image's start set; a lazy start of the traced
# image asks for them in one request and runs right; trace refuses what is not an image.
OC=("$CIDRUN" --repo-dir "$work/origin")
traced=$(CIDRUN_SOURCES= timeout 120 "${OC[@]}" trace "$id" -- /bin/cat /etc/hostname 2>"$work/trace.err" | tail -1)
grep -Eq '^start set: [1-9][0-9]* blocks' "$work/trace.err" || fail "trace said: $(cat "$work/trace.err")"
[ "$traced" != "$id" ] || fail "trace gave back the same image"
"${OC[@]}" image inspect "$traced" | grep -q '"StartSet"' || fail "the traced image has no start set"
"${OC[@]}" repo verify >/dev/null || fail "repo verify after trace"
out=$(timeout 120 "$CIDRUN" --repo-dir "$work/lazy3" run --rm --lazy --no-fill "$traced" /bin/cat /etc/hostname)
[ "$out" = cidrun ] || fail "run --lazy of the traced image printed '$out'"
plain=$("${OC[@]}" add -Q -r "$root/etc")
set +e
CIDRUN_SOURCES= "${OC[@]}" trace "$plain" -- /bin/true 2>"$work/err"
rc=$?
set -e
[ "$rc" -ne 0 ] && grep -q "not an image" "$work/err" || fail "trace of a plain tree: rc $rc, $(cat "$work/err")"
echo "ok: trace records a start set; a lazy start of the traced image runs"

# 7. The gateway goes away: reading what never came fails with EIO within the retry bound (no
# hang), and the server's log names the block and the source.
mkdir "$work/mnt2"
L4=("$CIDRUN" --repo-dir "$work/lazy4")
timeout 60 "${L4[@]}" mount --lazy --no-fill "$id" "$work/mnt2" >/dev/null
kill "$serve_pid"
wait "$serve_pid" 2>/dev/null || true
serve_pid=
t0=$(date +%s)
if timeout 120 cat "$work/mnt2/big.bin" >/dev/null 2>"$work/err"; then
  fail "a read of blocks no source has succeeded"
fi
t1=$(date +%s)
grep -q "Input/output error" "$work/err" || fail "unreachable block: $(cat "$work/err")"
[ $((t1 - t0)) -le 60 ] || fail "EIO took $((t1 - t0)) s"
state=$(dirname "$(grep -lx "$work/mnt2" /run/cidrun/fuse/*/mountpoint | head -1)")
grep -q "not found (${gw}" "$state/server.log" || fail "no log line naming the block and the source"
"${L4[@]}" umount "$work/mnt2"
echo "ok: an unreachable block is EIO after $((t1 - t0)) s, logged with its source"

# 8. The metadata pack: import wrote one; a mount reads it, and a damaged one is removed with a
# warning (never trusted), the mount answers from the block files, and a new pack is written.
LO=("$CIDRUN" --repo-dir "$work/origin")
pack=$(ls "$work/origin/packs/"*.car)
[ -s "$pack" ] || fail "image import wrote no metadata pack"
python3 -c '
import sys
p = sys.argv[1]
b = bytearray(open(p, "rb").read())
b[len(b) // 2] ^= 0x40
open(p, "wb").write(b)' "$pack"
mkdir "$work/mnt3"
timeout 60 "${LO[@]}" mount "$id" "$work/mnt3" >/dev/null
[ "$(stat -c '%u:%g %a' "$work/mnt3/etc/hostname")" = "0:42 640" ] || fail "owner/mode with a damaged pack"
[ "$(sha256sum <"$work/mnt3/big.bin")" = "$want" ] || fail "big.bin with a damaged pack"
state=$(dirname "$(grep -lx "$work/mnt3" /run/cidrun/fuse/*/mountpoint | head -1)")
grep -q "metadata pack removed" "$state/server.log" || fail "no warning about the damaged pack"
for _ in $(seq 50); do [ -s "$pack" ] && break; sleep 0.1; done
"${LO[@]}" umount "$work/mnt3"
[ -s "$pack" ] || fail "no new pack after a damaged one"
"${LO[@]}" repo verify >/dev/null || fail "repo verify after the damaged pack"
echo "ok: a damaged metadata pack is dropped and written again"

# 9. run --no-checkout: a complete root runs from its shared mount, and no checkout is written.
out=$(timeout 120 "${LO[@]}" run --rm --no-checkout "$id" /bin/sh -c 'stat -c "%u:%g %a" /etc/hostname; sha256sum </big.bin')
[ "$out" = "$(printf '0:42 640\n%s' "$want")" ] || fail "run --no-checkout printed '$out'"
if ls "$work/origin/images/" 2>/dev/null | grep -q '^bafy'; then
  fail "run --no-checkout wrote a checkout: $(ls "$work/origin/images/")"
fi
if "${LO[@]}" run -d --no-checkout "$id" /bin/true 2>"$work/err"; then
  fail "--no-checkout with -d was accepted"
fi
grep -q "not supported" "$work/err" || fail "--no-checkout -d: $(cat "$work/err")"
echo "ok: run --no-checkout runs a complete image from its mount, with no checkout"
