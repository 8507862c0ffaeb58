#!/usr/bin/env bash
# bench/lazy.sh — time to a container's first useful output over a slow link: `pull` + `run`
# (from a checkout, or from the mount: `run --no-checkout`) beside `run --lazy` (blocks fetched
# as they are read), and beside what a tarball of the same
# root costs over the same link (curl of the gzip OCI layer, then tar -x: the floor for "pull a
# tarball, unpack, run"). Not a test.
#   bench/lazy.sh [BUILD_DIR]
# The origin is `cidrun serve` of a Debian minbase image behind bench/linkemu.py (default 20
# Mbit/s down, 25 ms each way: RATE and DELAY_MS override). The container runs
# `cat /etc/os-release` (CMD overrides). Figures: wall seconds and bytes that crossed the link,
# best of $RUNS (default 1: a run moves the whole image).
set -euo pipefail
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"
bench_args "$@"
need_cidrun
runs=${RUNS:-1}
rate=${RATE:-20mbit}
delay=${DELAY_MS:-25}
[ "$(id -u)" -eq 0 ] || die "needs root (containers, FUSE)"
minbase=$data/minbase
[ -d "$minbase/etc" ] || die "no $minbase: run bench/image.sh first (it makes the Debian root)"

work=$(mktemp -d /var/tmp/cidrun-bench-lazy-XXXXXX)
cleanup+=("$work")
export CIDRUN_NETWORK=none
# The link emulator listens on loopback, where cidrun does not ask for coded (compressed)
# answers by default; on the link it stands for, it would.
export CIDRUN_COMPRESS=${CIDRUN_COMPRESS:-on}
id=$("$cidrun" --repo-dir "$work/origin" image import -q rootfs:"$minbase/")
"$cidrun" --repo-dir "$work/origin" image export "$id" oci:"$work/oci":latest >/dev/null
layer=$(python3 -c '
import json, sys
d = sys.argv[1]
idx = json.load(open(d + "/index.json"))
m = json.load(open(d + "/blobs/" + idx["manifests"][0]["digest"].replace(":", "/")))
print(m["layers"][0]["digest"].split(":")[1])' "$work/oci")
start_bg serve "$cidrun" --repo-dir "$work/origin" serve -q --listen 127.0.0.1:0
origin_port=${ready##*:}
origin_port=${origin_port%%\"*}
# The tarball's server: busybox httpd over the layout's blobs (a C server, sendfile).
blob_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
busybox httpd -f -p "127.0.0.1:$blob_port" -h "$work/oci/blobs/sha256" &
pids+=($!)
for _ in $(seq 50); do curl -sfI "http://127.0.0.1:$blob_port/$layer" >/dev/null && break; sleep 0.1; done

link() { # link NAME PORT: a paced proxy in front of PORT; sets $link_port and $link_pid
  start_bg "link-$1" python3 "$here/bench/linkemu.py" --to "127.0.0.1:$2" --rate "$rate" \
    --up-rate "$rate" --delay-ms "$delay" --stats "$work/$1.stats"
  link_pid=${pids[-1]}
  link_port=$(json "$ready" port)
}
stats() { # stats NAME PID: stops the proxy; prints the bytes its target sent
  kill "$2"
  while kill -0 "$2" 2>/dev/null; do sleep 0.1; done
  python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["down"])' "$work/$1.stats"
}
cmd=${CMD:-cat /etc/os-release}

measure() { # measure NAME: "seconds bytes" of one way to the first output
  local name=$1 t0 t1
  rm -rf "$work/repo" "$work/unpacked"
  link "$name" "$([ "$name" = tarball ] && echo "$blob_port" || echo "$origin_port")"
  export CIDRUN_SOURCES=http://127.0.0.1:$link_port
  t0=$(date +%s.%N)
  case $name in
    pull-run)
      "$cidrun" --repo-dir "$work/repo" pull "$id" >/dev/null
      "$cidrun" --repo-dir "$work/repo" run --rm "$id" $cmd >/dev/null ;;
    pull-mount)
      "$cidrun" --repo-dir "$work/repo" pull "$id" >/dev/null
      "$cidrun" --repo-dir "$work/repo" run --rm --no-checkout "$id" $cmd >/dev/null ;;
    lazy)
      "$cidrun" --repo-dir "$work/repo" run --rm --lazy --no-fill "$id" $cmd >/dev/null ;;
    traced)
      "$cidrun" --repo-dir "$work/repo" run --rm --lazy --no-fill "$traced_id" $cmd >/dev/null ;;
    tarball)
      mkdir "$work/unpacked"
      curl -sf "http://127.0.0.1:$link_port/$layer" | tar -xzf - -C "$work/unpacked"
      "$cidrun" run --rm "$work/unpacked" $cmd >/dev/null ;;
  esac
  t1=$(date +%s.%N)
  # The mount's server outlives `run` for a moment (it writes what it fetched): let it go before
  # the repository is removed.
  for _ in $(seq 100); do pgrep -f "fuse-server.*--repo $work/repo" >/dev/null || break; sleep 0.1; done
  echo "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }') $(stats "$name" "$link_pid")"
}
best() { local b=""; for _ in $(seq 1 "$runs"); do l=$(measure "$1"); { [ -z "$b" ] || awk -v a="${l%% *}" -v c="${b%% *}" 'BEGIN { exit !(a < c) }'; } && b=$l; done; echo "$b"; }

# WAYS picks which to measure (default all five; the tarball is the reference of the ratios).
ways=${WAYS:-tarball pull-run pull-mount lazy traced}
# traced: the same image with the start set `cidrun trace` records for the command (at the
# origin, before any measurement), which a lazy start asks for beside the metadata.
case " $ways " in
  *" traced "*)
    traced_id=$(CIDRUN_SOURCES= "$cidrun" --repo-dir "$work/origin" trace "$id" -- $cmd 2>/dev/null | tail -1) ;;
esac
tarball=$(best tarball)
rows=("tarball (curl | tar -xz, run):$tarball")
case " $ways " in *" pull-run "*) rows+=("pull + run:$(best pull-run)") ;; esac
case " $ways " in *" pull-mount "*) rows+=("pull + run --no-checkout:$(best pull-mount)") ;; esac
case " $ways " in *" lazy "*) rows+=("run --lazy --no-fill:$(best lazy)") ;; esac
case " $ways " in *" traced "*) rows+=("run --lazy, traced image:$(best traced)") ;; esac
printf 'link %s, %s ms each way; root %s; command: %s\n' "$rate" "$delay" "$id" "$cmd"
for row in "${rows[@]}"; do
  name=${row%%:*}
  vals=${row#*:}
  printf '  %-32s %7.2f s %9.1f MB   vs tarball %.3f\n' "$name" "${vals%% *}" \
    "$(awk -v b="${vals##* }" 'BEGIN { print b / 1e6 }')" \
    "$(awk -v a="${vals%% *}" -v b="${tarball%% *}" 'BEGIN { print a / b }')"
done
