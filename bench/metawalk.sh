#!/usr/bin/env bash
# bench/metawalk.sh — a cold metadata walk: `find DIR -xdev | wc -l` on a fresh mount of the Debian
# minbase image (`cidrun mount`, everything local) right after the page cache is dropped, beside
# the same walk of the root directory itself; with the image's metadata pack, and without it
# (removed before each mount). Not a test.
#   bench/metawalk.sh [BUILD_DIR]
# Figures: wall seconds of the find, best of $RUNS (default 3); the mount's own start (the step
# before the find, which reads the pack) is shown apart.
set -euo pipefail
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"
bench_args "$@"
need_cidrun
[ "$(id -u)" -eq 0 ] || die "needs root (FUSE, drop_caches)"
minbase=$data/minbase
[ -d "$minbase/etc" ] || die "no $minbase: run bench/image.sh first (it makes the Debian root)"

work=$(mktemp -d /var/tmp/cidrun-bench-metawalk-XXXXXX)
cleanup+=("$work")
export CIDRUN_NETWORK=none
c() { "$cidrun" --repo-dir "$work/repo" "$@"; }
id=$(c image import -q rootfs:"$minbase/")
mkdir "$work/mnt"
drop() { sync; echo 3 >/proc/sys/vm/drop_caches; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }
walk_mount() { # walk_mount pack|nopack: "find-seconds mount-seconds"
  [ "$1" = pack ] || rm -rf "$work/repo/packs"
  drop
  local t0 t1 t2
  t0=$(date +%s.%N)
  c mount "$id" "$work/mnt" >/dev/null
  t1=$(date +%s.%N)
  find "$work/mnt" -xdev | wc -l >/dev/null
  t2=$(date +%s.%N)
  c umount "$work/mnt"
  echo "$(secs "$t1" "$t2") $(secs "$t0" "$t1")"
}
walk_native() {
  drop
  local t0 t1
  t0=$(date +%s.%N)
  find "$minbase/" -xdev | wc -l >/dev/null
  t1=$(date +%s.%N)
  secs "$t0" "$t1"
}
native=$(best_of walk_native)
packed=$(best_of walk_mount pack)
unpacked=$(best_of walk_mount nopack)
printf 'cold find -xdev of Debian minbase (%s entries)\n' "$(find "$minbase/" -xdev | wc -l)"
printf '  %-32s %7.3f s\n' "the directory itself" "$native"
for row in "mount, metadata pack:$packed" "mount, no pack:$unpacked"; do
  v=${row#*:}
  printf '  %-32s %7.3f s   vs directory %.2f   (the mount itself: %.3f s)\n' "${row%%:*}" \
    "${v%% *}" "$(awk -v a="${v%% *}" -v b="$native" 'BEGIN { print a / b }')" "${v##* }"
done
