#!/usr/bin/env bash
# bench/decompress.sh — cidrun's decompressing sources (util/stream_compression.h) vs the gzip,
# pigz and zstd programs on the same ~100 MB layer, same machine, same run. Not a test.
#   bench/decompress.sh [BUILD_DIR]
# Input (made once under $BENCH_DATA, default /var/tmp/cidrun-bench): layer.tar (see input_layer
# in bench/lib.sh), compressed with gzip -6 and zstd -3, read from the page cache. Each figure is
# MB/s of decompressed output from the run of least CPU time (user + sys) of $RUNS (default 5):
# on a shared 2-core machine wall times swing with other jobs while CPU time stays put; the wall
# figure of that run is shown beside it. Every program writes to /dev/null (ours reads into a
# 1 MiB buffer and drops it). "ours/peer" above 1 means we are faster (by CPU time). pigz
# inflates on one thread but reads, writes and checks the CRC on others, so its wall figure can
# pass one core's.
set -euo pipefail
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"
bench_args "$@"
tool=$build/bench/cidrun-stream-bench
[ -x "$tool" ] || die "$tool not built"
input_layer
size=$(stat -c %s "$data/layer.tar")

# The same work: every run decompresses to exactly the tar's bytes.
for f in layer.tar.gz layer.tar.zst; do
  out=$("$tool" decompress "$data/$f")
  [ "$out" = "$size bytes" ] || die "$f decompressed to '$out', expected $size bytes"
done

runs=${RUNS:-5}
best() { best_of cpu_wall "$@"; }
report() { # name "ours-cpu ours-wall" peer-name "peer-cpu peer-wall"
  awk -v n="$1" -v s="$size" -v o="$2" -v pn="$3" -v p="$4" 'BEGIN {
    split(o, a, " "); split(p, b, " ");
    printf "%-32s ours %6.1f MB/s (wall %6.1f) | %-9s %6.1f MB/s (wall %6.1f) | ours/peer %.2f\n",
      n, s/a[1]/1e6, s/a[2]/1e6, pn, s/b[1]/1e6, s/b[2]/1e6, b[1]/a[1] }'
}

echo "decompression of a $((size / 1000000)) MB tar, least CPU of $runs runs, $(nproc) cores, load $(cut -d" " -f1 /proc/loadavg)"
echo "gzip -6: $(stat -c %s "$data/layer.tar.gz") bytes, zstd -3: $(stat -c %s "$data/layer.tar.zst") bytes"
ours_gz=$(best "$tool" decompress "$data/layer.tar.gz")
gzip_t=$(best gzip -dc "$data/layer.tar.gz")
pigz_t=$(best pigz -dc "$data/layer.tar.gz")
ours_zst=$(best "$tool" decompress "$data/layer.tar.zst")
zstd_t=$(best zstd -q -dc "$data/layer.tar.zst")
report "gzip (zlib inflate, one thread)" "$ours_gz" "gzip -dc" "$gzip_t"
report "gzip (zlib inflate, one thread)" "$ours_gz" "pigz -dc" "$pigz_t"
report "zstd (libzstd, one thread)" "$ours_zst" "zstd -dc" "$zstd_t"
