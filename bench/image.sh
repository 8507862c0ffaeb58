#!/usr/bin/env bash
# bench/image.sh — importing an OCI image: `cidrun image import` beside `podman load` and `umoci
# unpack` of the same archive, same machine, same run; then what the imported image costs on
# disk once run (blocks + checkout) beside its content. Not a test.
#   bench/image.sh [BUILD_DIR]
# Input: a Debian minbase root (debootstrap --variant=minbase, made once under $data; needs root
# and a Debian mirror), packed as a one-layer gzip OCI archive by `cidrun image export` (so all
# three read the same bytes). Figures: wall seconds, best of $RUNS (default 3); ratios < 1 mean
# cidrun is faster.
set -euo pipefail
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"
bench_args "$@"
need_cidrun
[ "$(id -u)" -eq 0 ] || die "needs root (debootstrap, podman, owners)"
for t in podman umoci debootstrap; do command -v $t >/dev/null || die "$t is not installed"; done

minbase=$data/minbase
if [ ! -d "$minbase/etc" ]; then
  mkdir -p "$data"
  debootstrap --variant=minbase bookworm "$minbase.tmp" >/dev/null || die "debootstrap failed"
  mv "$minbase.tmp" "$minbase"
fi
content=$(du -sb --apparent-size "$minbase/" | cut -f1)

work=$(mktemp -d /var/tmp/cidrun-bench-image-XXXXXX)
cleanup+=("$work")
"$cidrun" --repo-dir "$work/src" image import -q --tag minbase rootfs:"$minbase/" >/dev/null
"$cidrun" --repo-dir "$work/src" image export minbase oci-archive:"$work/minbase.tar":latest >/dev/null
archive=$(stat -c %s "$work/minbase.tar")

ours() { "$cidrun" --repo-dir "$work/repo" image import -q oci-archive:"$work/minbase.tar"; }
podman_load() {
  podman --root "$work/podman" --runroot "$work/podman-run" --tmpdir "$work/podman-tmp" \
    --events-backend file load -q -i "$work/minbase.tar"
}
umoci_unpack() { umoci unpack --image "$work/oci:latest" "$work/bundle"; }
mkdir -p "$work/oci"
tar -xf "$work/minbase.tar" -C "$work/oci"

before_run() { rm -rf "$work/repo" "$work/bundle"; podman --root "$work/podman" \
  --runroot "$work/podman-run" rmi -af >/dev/null 2>&1 || true; sync; }
t_ours=$(best_of wall ours)
t_podman=$(best_of wall podman_load)
t_umoci=$(best_of wall umoci_unpack)
unset -f before_run

# Disk once run: the repository (blocks, checkout, per-file cache) after one `run`.
rm -rf "$work/repo"
id=$(ours)
CIDRUN_NETWORK=none "$cidrun" --repo-dir "$work/repo" run --rm "$id" /bin/true
disk=$(du -sb "$work/repo" | cut -f1)
blocks=$(du -sb "$work/repo/blocks" | cut -f1)

printf 'image: Debian minbase, %d MB of files, one gzip layer of %d MB\n' \
  $((content / 1000000)) $((archive / 1000000))
printf '  cidrun image import   %7.2f s\n' "$t_ours"
printf '  podman load           %7.2f s   cidrun/podman %.2f\n' "$t_podman" \
  "$(awk -v a="$t_ours" -v b="$t_podman" 'BEGIN { print a / b }')"
printf '  umoci unpack          %7.2f s   cidrun/umoci  %.2f\n' "$t_umoci" \
  "$(awk -v a="$t_ours" -v b="$t_umoci" 'BEGIN { print a / b }')"
printf 'disk after one run: %d MB (blocks %d MB) = %.2fx the content\n' \
  $((disk / 1000000)) $((blocks / 1000000)) "$(awk -v a="$disk" -v b="$content" 'BEGIN { print a / b }')"
