#!/usr/bin/env bash
# podman with cidrun as its OCI runtime (the drop-in check): run --rm, an exit code, -d + exec +
# stop, and a terminal through --console-socket. (root here lacks CAP_SYS_RESOURCE: the rlimits asked for are no higher than ours).
set -euo pipefail
: "${CIDRUN:?set CIDRUN to the cidrun binary}"
: "${CIDRUN_SOURCE_DIR:?}"
command -v podman >/dev/null || { echo "podman.test: podman is not installed (scripts/bootstrap.sh installs it)" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || { echo "podman.test: needs root" >&2; exit 1; }

work=$(mktemp -d /tmp/cidrun-podman.XXXXXX)
P=(podman --root "$work/root" --runroot "$work/runroot" --tmpdir "$work/tmp" --events-backend file
   --runtime "$CIDRUN")
O=(--network none --ulimit nofile=20000:20000 --ulimit nproc=32768:32768)
cleanup() {
  "${P[@]}" rm -af -t 0 >/dev/null 2>&1 || true
  umount -R "$work/root/overlay" 2>/dev/null || true
  rm -rf "$work" 2>/dev/null || true
}
trap cleanup EXIT
"$CIDRUN_SOURCE_DIR/scripts/make-busybox-root.sh" "$work/rootfs" >/dev/null
fail() { echo "podman.test: FAIL: $*" >&2; exit 1; }

out=$(timeout 120 "${P[@]}" run --rm "${O[@]}" --rootfs "$work/rootfs" /bin/busybox echo hi)
[ "$out" = hi ] || fail "run --rm echo printed '$out'"
echo "ok: run --rm prints hi"

set +e
timeout 120 "${P[@]}" run --rm "${O[@]}" --rootfs "$work/rootfs" /bin/busybox sh -c 'exit 42'
rc=$?
set -e
[ "$rc" = 42 ] || fail "exit code 42 came back as $rc"
echo "ok: exit code"

id=$(timeout 120 "${P[@]}" run -d "${O[@]}" --rootfs "$work/rootfs" /bin/busybox sleep 300)
state=$(timeout 60 "${P[@]}" inspect -f '{{.State.Status}}' "$id")
[ "$state" = running ] || fail "-d container is $state"
out=$(timeout 60 "${P[@]}" exec "$id" /bin/busybox sh -c 'echo inside $(hostname)')
case "$out" in "inside "*) ;; *) fail "exec printed '$out'" ;; esac
set +e
timeout 60 "${P[@]}" exec "$id" /bin/busybox sh -c 'exit 3'
rc=$?
set -e
[ "$rc" = 3 ] || fail "exec exit code 3 came back as $rc"
out=$(timeout 60 "${P[@]}" exec -t "$id" /bin/busybox tty | tr -d '\r')
case "$out" in /dev/pts/*) ;; *) fail "exec -t tty printed '$out'" ;; esac
echo "ok: -d, exec (output, exit code, tty)"
timeout 60 "${P[@]}" pause "$id" >/dev/null
state=$(timeout 60 "${P[@]}" inspect -f '{{.State.Status}}' "$id")
[ "$state" = paused ] || fail "pause gave $state"
timeout 60 "${P[@]}" unpause "$id" >/dev/null
timeout 60 "${P[@]}" stop -t 1 "$id" >/dev/null 2>&1
state=$(timeout 60 "${P[@]}" inspect -f '{{.State.Status}}' "$id")
[ "$state" = exited ] || fail "stop left it $state"
timeout 60 "${P[@]}" rm "$id" >/dev/null
echo "ok: pause, unpause, stop, rm"
# Named runc, the runtime gets `--log-format=json --log FILE` from podman, which shows the log's
# last record when create fails: a missing command is then podman's error (exit 127) with our
# message, taken from the log (stderr's line would carry the "cidrun: error:" prefix).
mkdir -p "$work/bin"
ln -s "$CIDRUN" "$work/bin/runc"
PR=(podman --root "$work/root" --runroot "$work/runroot" --tmpdir "$work/tmp" --events-backend file
    --runtime "$work/bin/runc")
set +e
err=$(timeout 120 "${PR[@]}" run --rm "${O[@]}" --rootfs "$work/rootfs" /nonexistent-cmd 2>&1 >/dev/null)
rc=$?
set -e
[ "$rc" = 127 ] || fail "a missing command exited $rc under podman, not 127 ($err)"
want='runc: exec: "/nonexistent-cmd": stat /nonexistent-cmd: No such file or directory'
case "$err" in *"$want"*) ;; *) fail "podman printed '$err', not our log's error" ;; esac
out=$(timeout 120 "${PR[@]}" run --rm "${O[@]}" --rootfs "$work/rootfs" /bin/busybox echo named runc)
[ "$out" = "named runc" ] || fail "run as runc printed '$out'"
echo "ok: named runc: podman shows the runtime log's error, runs fine otherwise"
echo "podman.test: all passed"
