#!/usr/bin/env bash
# bench/tar.sh — cidrun's tar reader (image/tar.h) vs GNU tar on the same ~100 MB layer, same
# machine, same run. Not a test.
#   bench/tar.sh [BUILD_DIR]
# Input: layer.tar and layer.tar.gz (see input_layer in bench/lib.sh), from the page cache.
# Figures are MB/s of tar by CPU time (user + sys) and by wall time, from the run of least CPU
# time of $RUNS (default 5; wall times swing with the other jobs of a shared machine; for
# pipelines of two threads or processes, CPU is their sum and wall is what a user waits). Ours
# reads every entry's content into a
# 1 MiB buffer (what an importer does before hashing and storing); `tar --no-seek -tf` reads
# every byte too and is the equal-work peer; `tar -tf` seeks over content; `tar -xf` writes the
# files to a tmpfs. For the .tar.gz, ours decompresses on a read-ahead thread
# (util/stream_read_ahead.h) or inline, and also hashes every file's content (SHA-256, the work
# of an importer) to show what the second core buys; GNU tar runs gzip as a second process.
set -euo pipefail
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"
bench_args "$@"
tool=$build/bench/cidrun-stream-bench
[ -x "$tool" ] || die "$tool not built"
input_layer
size=$(stat -c %s "$data/layer.tar")
entries=$(tar -tf "$data/layer.tar" | wc -l)
out=$("$tool" tar "$data/layer.tar")
[ "${out%% *}" = "$entries" ] || die "we read '$out', GNU tar lists $entries entries"

shm=$(mktemp -d /dev/shm/cidrun-bench-tar-XXXXXX)
cleanup+=("$shm")
before_run() { rm -rf "${shm:?}/x"; mkdir "$shm/x"; }
runs=${RUNS:-5}
best() { best_of cpu_wall "$@"; }
mbs() { # "cpu wall" -> "N MB/s (wall N)"
  awk -v s="$size" -v t="$1" 'BEGIN { split(t, a, " "); printf "%6.1f MB/s (wall %6.1f)", s/a[1]/1e6, s/a[2]/1e6 }'
}
ratio() { # by CPU, and by wall
  awk -v a="$1" -v b="$2" 'BEGIN { split(a, x, " "); split(b, y, " "); printf "%.2f (wall %.2f)", y[1]/x[1], y[2]/x[2] }'
}

echo "tar reading of a $((size / 1000000)) MB layer ($entries entries), least CPU of $runs runs, $(nproc) cores, load $(cut -d" " -f1 /proc/loadavg)"
ours=$(best "$tool" tar "$data/layer.tar")
ours_skip=$(best "$tool" tar "$data/layer.tar" --skip)
list_read=$(best tar --no-seek -tf "$data/layer.tar")
list=$(best tar -tf "$data/layer.tar")
extract=$(best tar -xf "$data/layer.tar" -C "$shm/x")
echo "layer.tar:"
echo "  ours, content read      $(mbs "$ours")"
echo "  ours, content skipped   $(mbs "$ours_skip")"
echo "  tar --no-seek -tf       $(mbs "$list_read")"
echo "  tar -tf (seeks)         $(mbs "$list")"
echo "  tar -xf to tmpfs        $(mbs "$extract")"
echo "  ours(read) / tar --no-seek -tf  $(ratio "$ours" "$list_read")"
gz_ra=$(best "$tool" tar "$data/layer.tar.gz" --read-ahead)
gz=$(best "$tool" tar "$data/layer.tar.gz")
gz_hash_ra=$(best "$tool" tar "$data/layer.tar.gz" --hash --read-ahead)
gz_hash=$(best "$tool" tar "$data/layer.tar.gz" --hash)
gz_list=$(best tar -tzf "$data/layer.tar.gz")
gz_extract=$(best tar -xzf "$data/layer.tar.gz" -C "$shm/x")
echo "layer.tar.gz:"
echo "  ours, read-ahead        $(mbs "$gz_ra")"
echo "  ours, inline            $(mbs "$gz")"
echo "  ours, SHA-256 of content, read-ahead  $(mbs "$gz_hash_ra")"
echo "  ours, SHA-256 of content, inline      $(mbs "$gz_hash")"
echo "  tar -tzf (gzip -d |)    $(mbs "$gz_list")"
echo "  tar -xzf to tmpfs       $(mbs "$gz_extract")"
echo "  ours(read-ahead) / tar -tzf  $(ratio "$gz_ra" "$gz_list")"
