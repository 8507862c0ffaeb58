#!/usr/bin/env bash
# Builds a minimal root filesystem around Debian's static busybox: the demo's image.
#   scripts/make-busybox-root.sh DIR
set -euo pipefail
dir=${1:?usage: make-busybox-root.sh DIR}
bb=/bin/busybox
[ -x "$bb" ] || { echo "make-busybox-root: $bb missing (apt-get install busybox-static)" >&2; exit 1; }
file -L "$bb" 2>/dev/null | grep -q 'statically linked' || ldd "$bb" 2>&1 | grep -q 'not a dynamic' ||
  { echo "make-busybox-root: $bb is not static (install busybox-static)" >&2; exit 1; }
rm -rf "$dir"
mkdir -p "$dir"/{bin,dev,etc,proc,sys,tmp,root,run,var/tmp}
chmod 1777 "$dir/tmp" "$dir/var/tmp"
chmod 0700 "$dir/root"
install -m 0755 "$bb" "$dir/bin/busybox"
for applet in $("$bb" --list); do
  [ "$applet" = busybox ] || ln -s busybox "$dir/bin/$applet"
done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' > "$dir/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' > "$dir/etc/group"
echo cidrun > "$dir/etc/hostname"
# Fixed times make the root's CID the same on every machine with the same busybox.
find "$dir" -exec touch -h -d @0 {} +
