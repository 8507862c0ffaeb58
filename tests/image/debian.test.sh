#!/usr/bin/env bash
# A real Debian root through the image path, with umoci as the reference: a debootstrap minbase
# root (a file capability set on a lower file that is one of a hard-link group) packed by umoci;
# a second layer, packed by umoci from the changed root, that deletes files, a directory and one
# name of a hard-link group, adds a hard link to a lower file, changes only an owner and only a
# mode, adds device nodes and a fifo; a third layer, written by hand because umoci's repack writes
# neither, replacing a directory with an opaque one and linking to files only lower layers hold.
# `cidrun image unpack` must equal `umoci unpack` (paths, types, bytes, modes, owners, xattrs
# with ACLs and capabilities, hard links, device numbers, mtimes); export then import gives the
# same CID; and `run IMAGE` runs the root's own programs and sees its owners.
#
# The debootstrap root is made once (it needs the Debian mirror, about a minute and a half) and
# kept in $CIDRUN_TEST_CACHE (default /var/cache/cidrun-test) under a name that says its recipe:
# change the recipe, change the name. It is made under a temporary name and renamed when whole,
# so a killed run never leaves half a root to be trusted by the next.
set -euo pipefail
: "${CIDRUN:?set CIDRUN to the cidrun binary}"
: "${CIDRUN_SOURCE_DIR:?}"
[ "$(id -u)" -eq 0 ] ||
  { echo "debian.test: needs root (debootstrap, owners, devices)" >&2; exit 1; }
for tool in debootstrap umoci setcap getcap setfattr getfattr setfacl getfacl python3 flock; do
  command -v $tool >/dev/null ||
    { echo "debian.test: $tool is not installed (scripts/bootstrap.sh installs it)" >&2; exit 1; }
done
fail() { echo "debian.test: FAIL: $*" >&2; exit 1; }

# The test runs in a private mount namespace, which takes away with it, however the test ends,
# what debootstrap mounts in the root it makes (proc, sys) and the tmpfs below.
if [ -z "${CIDRUN_DEBIAN_TEST_NS:-}" ]; then
  export CIDRUN_DEBIAN_TEST_NS=1
  exec unshare --mount --propagation private bash "$0" "$@"
fi

cache_dir=${CIDRUN_TEST_CACHE:-/var/cache/cidrun-test}
minbase=$cache_dir/debian-bookworm-minbase-r1
mkdir -p "$cache_dir"
if [ ! -d "$minbase" ]; then
  # One maker at a time; a half-made root left by a killed run is thrown away here.
  exec 9>"$minbase.lock"
  flock 9
  if [ ! -d "$minbase" ]; then
    rm -rf --one-file-system "$minbase.tmp"
    echo "debian.test: making $minbase with debootstrap (once)" >&2
    if ! debootstrap --variant=minbase bookworm "$minbase.tmp" >"$minbase.log" 2>&1; then
      tail -5 "$minbase.log" >&2
      rm -rf --one-file-system "$minbase.tmp"
      fail "debootstrap failed (log: $minbase.log)"
    fi
    mv -T "$minbase.tmp" "$minbase"
  fi
  exec 9>&-
fi

# What the test writes (about 1 GB at its peak: the bundle, two unpacks, the repository) goes to
# a tmpfs: on a disk mounted with discard, deleting a 200 MB tree once it has been written back
# takes ~20 s.
work=$(mktemp -d /tmp/cidrun-debian.XXXXXX)
mount -t tmpfs -o mode=0700,size=3g cidrun-debian-test "$work"
trap 'cd / && umount "$work" && rmdir "$work"' EXIT
export CIDRUN_PATH="$work/repo"
export CIDRUN_NETWORK=none
C() { "$CIDRUN" "$@"; }
src=$CIDRUN_SOURCE_DIR/tests/image

# 1. The image, made by umoci. Layer 1: the root as debootstrap left it, plus a file capability
# on usr/bin/perl (hard-linked with usr/bin/perl5.36.0), a user xattr and POSIX ACLs.
cd "$work"
umoci init --layout oci
umoci new --image oci:debian
umoci unpack --image oci:debian bundle >/dev/null
r=$work/bundle/rootfs
cp -a "$minbase/." "$r/"
[ "$(stat -c %h "$r/usr/bin/perl")" -eq 2 ] || fail "usr/bin/perl is no longer a hard-link pair"
setcap cap_net_raw+ep "$r/usr/bin/perl"
setfattr -n user.origin -v cidrun-debian-test "$r/etc/os-release"
setfacl -m g:adm:rx -d -m g:adm:rx "$r/var/log"  # POSIX ACLs, access and default
umoci repack --refresh-bundle --image oci:debian bundle

# Layer 2, umoci's diff of the changed root.
rm "$r/etc/motd" "$r/usr/bin/uncompress"  # uncompress: one name of a pair with gunzip
rm -r "$r/usr/share/doc/bash"
ln "$r/usr/bin/perl" "$r/usr/local/bin/perl-link"
chown 0:42 "$r/etc/issue"      # owner only (gid 42: shadow)
chmod 0600 "$r/etc/issue.net"  # mode only
mknod "$r/dev/loop0" b 7 0
mknod "$r/dev/fuse" c 10 229
mkfifo "$r/run/initctl"
umoci repack --refresh-bundle --image oci:debian bundle

# Layer 3, by hand: usr/share/doc/apt (files and an examples/ subdirectory below) replaced by an
# opaque directory holding one new file, and hard links to files that only lower layers hold:
# usr/bin/dpkg (layer 1) and usr/bin/perl5.36.0 (layer 2, with its capability). umoci's repack
# would write the target again, as its link count changed. And two paths through the root's
# merged-/usr symlinks (sbin -> usr/sbin, lib -> usr/lib), as a layer built on a root without
# them has: a directory entry `sbin` replaces the symlink with a directory (the OCI layer rules:
# unless both are directories, the existing path is removed and recreated; so do containerd,
# docker and umoci without --keep-dirlink); a file `lib/cidrun-test.conf` is written through the
# symlink, into usr/lib.
python3 - "$work/layer3.tar" <<'EOF'
import io, sys, tarfile
t = tarfile.open(sys.argv[1], "w", format=tarfile.PAX_FORMAT)
def entry(name, kind, mode, data=b"", link=""):
    i = tarfile.TarInfo(name)
    i.type, i.mode, i.mtime, i.linkname, i.size = kind, mode, 1700000000, link, len(data)
    t.addfile(i, io.BytesIO(data) if data else None)
entry("usr/share/doc/apt", tarfile.DIRTYPE, 0o750)
entry("usr/share/doc/apt/.wh..wh..opq", tarfile.REGTYPE, 0o600)
entry("usr/share/doc/apt/README", tarfile.REGTYPE, 0o644, b"replaced by an opaque directory\n")
entry("usr/local/bin/dpkg-link", tarfile.LNKTYPE, 0o755, link="usr/bin/dpkg")
entry("usr/local/bin/perl-lower-link", tarfile.LNKTYPE, 0o755, link="usr/bin/perl5.36.0")
entry("sbin", tarfile.DIRTYPE, 0o755)
entry("sbin/cidrun-tool", tarfile.REGTYPE, 0o755, b"#!/bin/sh\n")
entry("lib/cidrun-test.conf", tarfile.REGTYPE, 0o644, b"through the lib symlink\n")
t.close()
EOF
umoci raw add-layer --image oci:debian "$work/layer3.tar"
rm -rf bundle
echo "ok: image made: the debootstrap root, a change layer by umoci, one by hand"

# 2. Our unpack equals umoci's, mtimes of every directory included (every directory is named by
# a layer, and both keep a parent's mtime when an entry is written into it).
id=$(C image import -q --tag debian oci:"$work/oci":debian)
umoci unpack --image oci:debian umoci >/dev/null
C image unpack debian ours
python3 "$src/compare-trees.py" umoci/rootfs ours ||
  fail "our unpack differs from umoci's"
# The changes are there (not merely the same in both).
o=$work/ours
for gone in etc/motd usr/bin/uncompress usr/share/doc/bash usr/share/doc/apt/examples \
    usr/share/doc/apt/changelog.gz; do
  [ ! -e "$o/$gone" ] || fail "$gone was not removed"
done
[ "$(cat "$o/usr/share/doc/apt/README")" = "replaced by an opaque directory" ] || fail "opaque dir"
[ "$(stat -c '%a' "$o/usr/share/doc/apt")" = 750 ] || fail "opaque dir mode"
same_inode() { [ "$(stat -c '%d %i' "$o/$1")" = "$(stat -c '%d %i' "$o/$2")" ] ||
  fail "$2 is not a hard link to $1"; }
same_inode usr/bin/perl usr/bin/perl5.36.0
same_inode usr/bin/perl usr/local/bin/perl-link
same_inode usr/bin/perl usr/local/bin/perl-lower-link
same_inode usr/bin/dpkg usr/local/bin/dpkg-link
links=$(cd "$o" && stat -c '%n %h' usr/bin/perl usr/bin/dpkg usr/bin/gunzip)
[ "$links" = $'usr/bin/perl 4\nusr/bin/dpkg 2\nusr/bin/gunzip 1' ] || fail "link counts: $links"
getcap "$o/usr/local/bin/perl-lower-link" | grep -q 'cap_net_raw=ep' ||
  fail "perl-lower-link lost the capability"
[ "$(getfattr --absolute-names --only-values -n user.origin "$o/etc/os-release")" = \
  cidrun-debian-test ] || fail "user.origin lost"
acls=$(getfacl --absolute-names --omit-header "$o/var/log" | grep -c 'group:adm:r-x')
[ "$acls" -eq 2 ] || fail "ACLs of var/log lost: $(getfacl --absolute-names "$o/var/log")"
owners=$(cd "$o" && stat -c '%n %u:%g %a' etc/shadow etc/issue etc/issue.net var/mail)
[ "$owners" = "etc/shadow 0:42 640
etc/issue 0:42 644
etc/issue.net 0:0 600
var/mail 0:8 2775" ] || fail "owners or modes: $owners"
nodes=$(cd "$o" && stat -c '%n %F %t:%T' dev/loop0 dev/fuse dev/null run/initctl)
[ "$nodes" = "dev/loop0 block special file 7:0
dev/fuse character special file a:e5
dev/null character special file 1:3
run/initctl fifo 0:0" ] || fail "devices or fifo: $nodes"
[ -d "$o/sbin" ] && [ ! -L "$o/sbin" ] && [ "$(ls "$o/sbin")" = cidrun-tool ] ||
  fail "sbin was not replaced by a directory"
[ -L "$o/lib" ] && [ -f "$o/usr/lib/cidrun-test.conf" ] ||
  fail "lib/cidrun-test.conf is not in usr/lib"
echo "ok: our unpack equals umoci's; whiteouts, opaque dir, links, owners, devices, caps applied"
rm -rf umoci ours

# 3. Export then import gives the same image.
C image export debian oci:"$work/exported":v1 >/dev/null
[ "$(C image import -q oci:"$work/exported":v1)" = "$id" ] ||
  fail "export then import gave another CID"
echo "ok: export then import gives back $id"

# 4. run IMAGE runs the root's own programs and sees what the layers set.
out=$(C run --rm debian /bin/sh -c 'id -u; stat -c "%U:%G %a" /etc/shadow /etc/issue
  stat -c %h /usr/bin/perl; dpkg --version | head -1')
want=$'0\nroot:shadow 640\nroot:shadow 644\n4'
[ "${out%$'\n'*}" = "$want" ] || fail "run printed '$out'"
case ${out##*$'\n'} in
  "Debian 'dpkg' package management program version "*) ;;
  *) fail "dpkg --version printed '${out##*$'\n'}'" ;;
esac
echo "ok: run IMAGE runs dpkg from the root; /etc/shadow is root:shadow"
