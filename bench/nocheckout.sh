#!/usr/bin/env bash
# bench/nocheckout.sh — running an image from a checkout (the default) beside running it from
# its shared read-only FUSE mount (`run --no-checkout`): disk once run (bytes of files, as the
# issue's goal counts, and bytes allocated), the first run of a fresh repository, a container's
# start, a first start on a cold page cache, and reading every file of /usr. Not a test.
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
first_run() { # first_run REPO FLAGS...: a fresh repository's first run of the image (the checkout,
  # and with it the wait until the checkout's files are on disk) in wall seconds; then its size
  # in $work/REPO.size: bytes of files (du -b) and bytes allocated on disk (du -B1)
  rm -rf "${work:?}/$1"
  # and in $work/REPO.started the seconds until the container's program ran (it prints the clock)
  local id t0 t1 ran
  id=$(c "$1" image import -q rootfs:"$minbase/")
  sync
  t0=$(date +%s.%N)
  ran=$(c "$1" run --rm "${@:2}" "$id" date +%s.%N)
  t1=$(date +%s.%N)
  echo "$(du -sb "$work/$1" | cut -f1) $(du -s -B1 "$work/$1" | cut -f1)" >"$work/$1.size"
  awk -v a="$t0" -v b="$ran" 'BEGIN { print b - a }' >"$work/$1.started"
  awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }'
}
t_checkout=$(first_run checkout)
read -r d_checkout a_checkout <"$work/checkout.size"
s_checkout=$(cat "$work/checkout.started")
t_mount=$(first_run mount --no-checkout)
read -r d_mount a_mount <"$work/mount.size"
s_mount=$(cat "$work/mount.started")
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
printf '  %-34s %7.1f MB %6.1f MB   (%.2fx and %.2fx the content)\n' "  allocated on disk (du -B1)" \
  "$(awk -v b="$a_checkout" 'BEGIN { print b / 1e6 }')" "$(awk -v b="$a_mount" 'BEGIN { print b / 1e6 }')" \
  "$(awk -v a="$a_checkout" -v b="$content" 'BEGIN { print a / b }')" \
  "$(awk -v a="$a_mount" -v b="$content" 'BEGIN { print a / b }')"
printf '  %-34s %7.3f s %7.3f s   mount/checkout %.2f (one run each)\n' "first run: the program runs" \
  "$s_checkout" "$s_mount" "$(awk -v a="$s_checkout" -v b="$s_mount" 'BEGIN { print b / a }')"
printf '  %-34s %7.3f s %7.3f s   mount/checkout %.2f (one run each)\n' "first run: run returns" \
  "$t_checkout" "$t_mount" "$(awk -v a="$t_checkout" -v b="$t_mount" 'BEGIN { print b / a }')"
start checkout >/dev/null
start mount --no-checkout >/dev/null
row "run /bin/true" start
row "run /bin/true, cold page cache" start_cold
row "read all of /usr (warm)" read_usr
