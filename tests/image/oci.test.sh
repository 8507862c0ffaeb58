#!/usr/bin/env bash
# Images in and out, against the reference tools: layers applied as umoci applies them (whiteouts,
# opaque directories, hard links across layers, metadata-only changes, xattrs, file capabilities,
# devices, fifos), export then import giving back the same CID over every transport, skopeo's
# conversions read back, a rootfs directory kept with full fidelity, `run IMAGE` following the
# image config, podman loading and running an export, and hostile layers refused with one line
# and nothing named.
set -euo pipefail
: "${CIDRUN:?set CIDRUN to the cidrun binary}"
: "${CIDRUN_SOURCE_DIR:?}"
[ "$(id -u)" -eq 0 ] || { echo "oci.test: needs root (owners, devices, security.* xattrs)" >&2; exit 1; }
for tool in umoci skopeo podman setfattr setcap python3 zstd; do
  command -v $tool >/dev/null ||
    { echo "oci.test: $tool is not installed (scripts/bootstrap.sh installs it)" >&2; exit 1; }
done

work=$(mktemp -d /tmp/cidrun-oci.XXXXXX)
P=(podman --root "$work/podman" --runroot "$work/runroot" --tmpdir "$work/tmp" --events-backend file)
cleanup() {
  "${P[@]}" rm -af -t 0 >/dev/null 2>&1 || true
  umount -R "$work/podman/overlay" 2>/dev/null || true
  rm -rf "$work" 2>/dev/null || true
}
trap cleanup EXIT
export CIDRUN_PATH="$work/repo"
# Containers get no network (run's default, a bridge on the host, is for users).
export CIDRUN_NETWORK=none
C() { "$CIDRUN" "$@"; }
fail() { echo "oci.test: FAIL: $*" >&2; exit 1; }
src=$CIDRUN_SOURCE_DIR/tests/image
compare() { python3 "$src/compare-trees.py" "$@" --ignore-mtime-since "$started"; }
started=$(($(date +%s) - 5))

# 1. Layers as umoci applies them (gzip only: Debian's umoci reads no zstd).
python3 "$src/make-oci.py" "$work/layers" layers --gzip-only
id=$(C image import -q --tag layers oci:"$work/layers":latest)
umoci unpack --image "$work/layers":latest "$work/umoci" >/dev/null
C image unpack layers "$work/ours"
compare "$work/umoci/rootfs" "$work/ours" || fail "unpack differs from umoci's"
echo "ok: three layers applied as umoci applies them"

# The same layers, compressed gzip, zstd and not at all: the same image (digests of the
# uncompressed layers are what an image names).
python3 "$src/make-oci.py" "$work/mixed" layers
[ "$(C image import -q oci:"$work/mixed":latest)" = "$id" ] || fail "zstd/plain layers gave another CID"
echo "ok: gzip, zstd and plain layers give the same image"

# 2. Export, then import: the same CID over each transport; umoci unpacks our export alike.
C image export layers oci:"$work/exp-oci":v1 >/dev/null
C image export layers oci-archive:"$work/exp.oci.tar" >/dev/null
C image export --compression zstd layers oci-archive:"$work/exp-zstd.oci.tar" >/dev/null
C image export layers docker-archive:"$work/exp.docker.tar":cidrun/layers:v1 >/dev/null
for s in oci:"$work/exp-oci":v1 oci-archive:"$work/exp.oci.tar" oci-archive:"$work/exp-zstd.oci.tar" \
    docker-archive:"$work/exp.docker.tar"; do
  [ "$(C image import -q "$s")" = "$id" ] || fail "export then import of $s gave another CID"
done
C image export layers oci-archive:"$work/again.oci.tar" >/dev/null
cmp -s "$work/again.oci.tar" "$work/exp.oci.tar" ||
  fail "two exports of one image differ"
umoci unpack --image "$work/exp-oci":v1 "$work/umoci2" >/dev/null
compare "$work/ours" "$work/umoci2/rootfs" || fail "umoci's unpack of our export differs"
echo "ok: export/import round trips (oci, oci-archive gzip and zstd, docker-archive); exports are deterministic"

# skopeo reads our exports and writes what we read back.
skopeo copy -q oci-archive:"$work/exp.oci.tar" docker-archive:"$work/skopeo.docker.tar":x/y:z
skopeo copy -q docker-archive:"$work/exp.docker.tar" oci:"$work/skopeo-oci":z
[ "$(C image import -q docker-archive:"$work/skopeo.docker.tar")" = "$id" ] ||
  fail "skopeo's docker-archive of our export gave another CID"
[ "$(C image import -q oci:"$work/skopeo-oci":z)" = "$id" ] ||
  fail "skopeo's oci layout of our docker-archive gave another CID"
echo "ok: skopeo converts our exports both ways and we read its output"

# 3. A root directory with everything a root holds.
root=$work/rootfs
"$CIDRUN_SOURCE_DIR/scripts/make-busybox-root.sh" "$root" >/dev/null
chown 0:42 "$root/etc/hostname"; chmod 0640 "$root/etc/hostname"
mkdir -m 2775 "$root/var/mail"; chown 0:8 "$root/var/mail"
ln "$root/etc/passwd" "$root/etc/passwd-"
mknod "$root/dev/null" c 1 3; mkfifo "$root/run/initctl"
cp "$root/bin/busybox" "$root/bin/pinger"; setcap cap_net_raw+ep "$root/bin/pinger"
setfattr -n user.origin -v cidrun-test "$root/etc/passwd"
printf '#!/bin/sh\necho setuid\n' >"$root/bin/suid"; chmod 4755 "$root/bin/suid"
printf '%s' '{"architecture":"amd64","os":"linux","config":{"Env":["PATH=/bin","GREETING=hello from config"],"WorkingDir":"/etc","Entrypoint":["/bin/sh","-c"],"Cmd":["echo \"$GREETING in $(pwd) as $(id -u)\""],"User":"65534"}}' >"$work/config.json"
bb=$(C image import -q --tag bb --config "$work/config.json" rootfs:"$root")
C image unpack bb "$work/bb"
compare "$root" "$work/bb" --ignore-root-mtime || fail "rootfs: import then unpack differs"
echo "ok: rootfs import keeps owners, setgid, hard links, devices, fifos, xattrs, file caps"

# 4. run IMAGE follows the config (podman's rules: Entrypoint + Cmd, Env, WorkingDir, User);
# words after the image replace Cmd, --entrypoint replaces Entrypoint.
out=$(C run --rm bb)
[ "$out" = "hello from config in /etc as 65534" ] || fail "run IMAGE printed '$out'"
out=$(C run --rm bb 'echo replaced cmd')
[ "$out" = "replaced cmd" ] || fail "run IMAGE CMD printed '$out'"
out=$(C run --rm --entrypoint '["/bin/echo","ep"]' bb)
[ "$out" = "ep" ] || fail "--entrypoint printed '$out'"
out=$(C run --rm --entrypoint /bin/id bb -g)
[ "$out" = "65534" ] || fail "--entrypoint with args printed '$out'"
echo "ok: run IMAGE follows Entrypoint, Cmd, Env, WorkingDir and User"

# The checkout those runs made is the image exactly, with each file's bytes once on disk: a file
# that is one block is the block's inode (3 names: checkout, cache, block), a setuid one is not
# (it stays out of the store's directory), and the leaves of busybox are references to its
# cached copy. verify reads every block through them; gc keeps what they need.
ck=$CIDRUN_PATH/images/$bb
compare "$root" "$ck" --ignore-root-mtime || fail "the checkout differs from the root"
[ "$(stat -c %h "$ck/etc/hostname")" = 3 ] || fail "etc/hostname is not its block's inode"
[ "$(stat -c %h "$ck/bin/suid")" = 2 ] || fail "a setuid file became its block's inode"
refs=$(find "$CIDRUN_PATH/blocks" -type l | wc -l)
[ "$refs" -ge 4 ] || fail "only $refs block references after the checkout"
C repo verify >/dev/null || fail "repo verify after a checkout"
C repo gc -q
C repo verify >/dev/null || fail "repo verify after gc"
[ "$(C run --rm --entrypoint /bin/suid bb)" = setuid ] || fail "run after gc"
echo "ok: a checkout holds each file's bytes once ($refs block references); verify and gc agree"

# 5. podman loads an export (docker-archive) and pulls one (an OCI layout), and runs both with
# cidrun as its runtime: the config is followed, and podman's own unpack of our layer keeps
# owners, modes and the hard link with its group's attributes.
C image export bb docker-archive:"$work/bb.tar":cidrun/bb:v1 >/dev/null
"${P[@]}" load -q -i "$work/bb.tar" >/dev/null
C image export bb oci:"$work/bb-oci":v1 >/dev/null
# podman 4.3 names what it pulls from an OCI layout after the path as given, which must then be
# a valid image name: lowercase, as mktemp's directory is not.
pulled=$(cd "$work" && "${P[@]}" pull -q oci:bb-oci:v1)
# (root here lacks CAP_SYS_RESOURCE: limits no higher than ours.)
R=(run --rm --network none --ulimit nofile=20000:20000 --ulimit nproc=32768:32768 --runtime "$CIDRUN")
for image in cidrun/bb:v1 "$pulled"; do
  out=$(timeout 120 "${P[@]}" "${R[@]}" "$image")
  [ "$out" = "hello from config in /etc as 65534" ] || fail "podman run of $image printed '$out'"
  out=$(timeout 120 "${P[@]}" "${R[@]}" "$image" \
    "stat -c '%n %u:%g %a %h' /var/mail /etc/passwd /etc/passwd- /bin/pinger")
  want=$'/var/mail 0:8 2775 2\n/etc/passwd 0:0 644 2\n/etc/passwd- 0:0 644 2\n/bin/pinger 0:0 755 1'
  [ "$out" = "$want" ] || fail "podman run of $image shows '$out', not '$want'"
done
echo "ok: podman loads a docker-archive and pulls an OCI layout of our exports, and runs both"

# 6. Hostile layers: one line, non-zero, no name given, nothing outside the repository written.
for k in dotdot dotdot-inner hardlink-outside hardlink-later whiteout-dotdot huge-size \
    truncated-gzip truncated-zstd digest-mismatch; do
  rm -rf "$work/bad"
  python3 "$src/make-oci.py" "$work/bad" "$k"
  set +e
  C image import -q --tag "bad-$k" oci:"$work/bad":latest >"$work/out" 2>"$work/err"
  rc=$?
  set -e
  [ "$rc" -ne 0 ] || fail "$k: accepted"
  [ "$(wc -l <"$work/err")" -eq 1 ] && grep -q '^cidrun: error: ' "$work/err" ||
    fail "$k: not one error line: $(cat "$work/err")"
  [ ! -s "$work/out" ] || fail "$k: printed a CID"
  if C image ls -q | grep -qx "bad-$k"; then fail "$k: the name was given"; fi
done
# Paths that lead out only through the root's own symlinks stay inside, as with umoci.
for k in absolute symlink-write-through symlink-dotdot-through; do
  rm -rf "$work/bad" "$work/bad-unpacked"
  python3 "$src/make-oci.py" "$work/bad" "$k"
  C image import -q --tag "$k" oci:"$work/bad":latest >/dev/null
  C image unpack "$k" "$work/bad-unpacked"
  [ -n "$(find "$work/bad-unpacked" -name escape -type f)" ] || fail "$k: the file is not inside"
done
[ ! -e /escape ] && [ ! -e /tmp/escape ] && [ ! -e /etc/escape ] || fail "a file escaped the root"
echo "ok: hostile layers refused in one line; escapes through symlinks stay inside the root"

# trusted.* xattrs (trusted.overlay.* would steer an overlay that uses the root as a lower
# layer) are dropped with a warning, as containerd does; the rest of the entry is kept.
rm -rf "$work/bad" "$work/trusted"
python3 "$src/make-oci.py" "$work/bad" trusted-xattr
C image import -q --tag trusted oci:"$work/bad":latest >/dev/null 2>"$work/err"
grep -q "trusted.overlay.opaque" "$work/err" || fail "no warning for a trusted.* xattr: $(cat "$work/err")"
C image unpack trusted "$work/trusted"
[ "$(getfattr --only-values -n user.kept "$work/trusted/d" 2>/dev/null)" = yes ] || fail "user.kept lost"
if getfattr -m '^trusted\.' -d "$work/trusted/d" 2>/dev/null | grep -q trusted; then
  fail "a trusted.* xattr reached the unpacked root"
fi
echo "ok: trusted.* xattrs dropped with a warning"
