#!/usr/bin/env bash
# bench/dedup.sh — two related roots in one repository: Debian minbase, and minbase plus python3
# (apt-get install in a copy; the downloaded packages stay, as minbase's own do). What the repository holds once both are imported (blocks and
# metadata packs), and once both have been run from checkouts, beside the content the two share
# only once (each distinct file counted once) and beside the OCI blobs of the same two images
# (each a one-layer gzip image, as `image export` writes them). Not a test.
#   bench/dedup.sh [BUILD_DIR]
# Needs root and a Debian mirror (for the python3 root, made once under $data).
set -euo pipefail
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"
bench_args "$@"
need_cidrun
[ "$(id -u)" -eq 0 ] || die "needs root (chroot, owners)"
minbase=$data/minbase
[ -d "$minbase/etc" ] || die "no $minbase: run bench/image.sh first (it makes the Debian root)"
py=$data/minbase-python3
if [ ! -x "$py/usr/bin/python3" ]; then
  rm -rf "$py.tmp"
  mkdir -p "$py.tmp"
  cp -a "$minbase/." "$py.tmp/"
  cp /etc/resolv.conf "$py.tmp/etc/resolv.conf"
  chroot "$py.tmp" /usr/bin/env DEBIAN_FRONTEND=noninteractive apt-get -qq update >/dev/null
  chroot "$py.tmp" /usr/bin/env DEBIAN_FRONTEND=noninteractive \
    apt-get -qq install -y --no-install-recommends python3 >/dev/null 2>&1 ||
    die "apt-get in the copy failed"
  # minbase's own package lists back (the update fetched newer ones): the two roots differ by
  # python3 and what installing it wrote, not by a newer index.
  rm -rf "$py.tmp/var/lib/apt/lists"
  cp -a "$minbase/var/lib/apt/lists" "$py.tmp/var/lib/apt/lists"
  cp "$minbase/etc/resolv.conf" "$py.tmp/etc/resolv.conf" 2>/dev/null || rm -f "$py.tmp/etc/resolv.conf"
  mv "$py.tmp" "$py"
fi

work=$(mktemp -d /var/tmp/cidrun-bench-dedup-XXXXXX)
cleanup+=("$work")
export CIDRUN_NETWORK=none
c() { "$cidrun" --repo-dir "$work/repo" "$@"; }
a=$(c image import -q rootfs:"$minbase/")
b=$(c image import -q rootfs:"$py/")
imported=$(du -sb "$work/repo" | cut -f1)
c run --rm "$a" /bin/true
c run --rm "$b" /bin/true
ran=$(du -sb "$work/repo" | cut -f1)
# The content both hold, each distinct file once (by its bytes), and each root's own.
unique=$(python3 - "$minbase" "$py" <<'PY'
import hashlib, os, sys
seen = {}
for root in sys.argv[1:]:
    for d, _, files in os.walk(root):
        for f in files:
            p = os.path.join(d, f)
            if os.path.islink(p) or not os.path.isfile(p):
                continue
            h = hashlib.sha256(open(p, "rb").read()).digest()
            seen[h] = os.path.getsize(p)
print(sum(seen.values()))
PY
)
size_a=$(du -sb --apparent-size "$minbase/" | cut -f1)
size_b=$(du -sb --apparent-size "$py/" | cut -f1)
oci=0
for id in "$a" "$b"; do
  c image export "$id" oci:"$work/oci-$id":latest >/dev/null
  oci=$((oci + $(du -sb "$work/oci-$id/blobs" | cut -f1)))
done
mb() { awk -v b="$1" 'BEGIN { printf "%.1f MB", b / 1e6 }'; }
printf 'minbase %s, minbase+python3 %s of files; distinct content of both: %s\n' \
  "$(mb "$size_a")" "$(mb "$size_b")" "$(mb "$unique")"
printf '  repository, both imported:  %s = %.3fx the distinct content\n' "$(mb "$imported")" \
  "$(awk -v a="$imported" -v b="$unique" 'BEGIN { print a / b }')"
printf '  repository, both run:       %s = %.3fx\n' "$(mb "$ran")" \
  "$(awk -v a="$ran" -v b="$unique" 'BEGIN { print a / b }')"
printf '  OCI blobs of the two images: %s = %.3fx (compressed layers, nothing shared)\n' "$(mb "$oci")" \
  "$(awk -v a="$oci" -v b="$unique" 'BEGIN { print a / b }')"
