#!/usr/bin/env bash
# bench/nocheckout.sh — running an image from a checkout (the default) beside running it from
# its shared read-only FUSE mount (`run --no-checkout`): disk once run, a container's start, a
# first start on a cold page cache, and reading every file of /usr. Not a test.
#   bench/nocheckout.sh [BUILD_DIR]
# Input: the Debian minbase root that bench/image.sh makes. Figures: wall seconds, best of $RUNS
# (default 3); ratios > 1 mean the mount is slower.
set -euo pipefail
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"
bench_args "$@"
need_cidrun
[ "$(id -u)" -eq 0 ] || die "needs root (containers, FUSE, drop_caches)"
minbase=$data/minbase
[ -d "$minbase/etc" ] || die "no $minbase: run bench/image.sh first (it makes the Debian root)"
content=$(du -sb --apparent-size "$minbase/" | cut -f1)

work=$(mktemp -d /var/tmp/cidrun-bench-nocheckout-XXXXXX)
cleanup+=("$work")
export CIDRUN_NETWORK=none
c() { "$cidrun" --repo-dir "$work/$1" "${@:2}"; }
disk_after() { # disk_after REPO FLAGS...: bytes of a fresh repository after one run
  rm -rf "${work:?}/$1"
  local id
  id=$(c "$1" image import -q rootfs:"$minbase/")
  c "$1" run --rm "${@:2}" "$id" /bin/true
  du -sb "$work/$1" | cut -f1
}
d_checkout=$(disk_after checkout)
d_mount=$(disk_after mount --no-checkout)
id=$(c checkout image import -q rootfs:"$minbase/")
c mount image import -q rootfs:"$minbase/" >/dev/null

start() { c "$1" run --rm "${@:2}" "$id" /bin/true; }
start_cold() { sync; echo 3 >/proc/sys/vm/drop_caches; start "$@"; }
read_usr() { c "$1" run --rm "${@:2}" "$id" sh -c 'find /usr -type f -print0 | xargs -0 cat | wc -c'; }
row() { # row NAME MEASURE: checkout and mount figures, and their ratio
  local a b
  a=$(best_of wall "$2" checkout)
  b=$(best_of wall "$2" mount --no-checkout)
  printf '  %-34s %7.3f s %7.3f s   mount/checkout %.2f\n' "$1" "$a" "$b" \
    "$(awk -v a="$a" -v b="$b" 'BEGIN { print b / a }')"
}
printf 'Debian minbase, %.1f MB of files\n' "$(awk -v b="$content" 'BEGIN { print b / 1e6 }')"
printf '  %-34s %9s %9s\n' "" checkout mount
printf '  %-34s %7.1f MB %6.1f MB   (%.2fx and %.2fx the content)\n' "disk after one run" \
  "$(awk -v b="$d_checkout" 'BEGIN { print b / 1e6 }')" "$(awk -v b="$d_mount" 'BEGIN { print b / 1e6 }')" \
  "$(awk -v a="$d_checkout" -v b="$content" 'BEGIN { print a / b }')" \
  "$(awk -v a="$d_mount" -v b="$content" 'BEGIN { print a / b }')"
start checkout >/dev/null
start mount --no-checkout >/dev/null
row "run /bin/true" start
row "run /bin/true, cold page cache" start_cold
row "read all of /usr (warm)" read_usr
