#!/usr/bin/env bash
# bench/swarm.sh — a seed and three nodes on loopback, each behind its own emulated link
# (bench/linkemu.py: a TCP proxy pacing each peer's upload). The seed serves a 100 MB root over
# bitswap at SEED_RATE (default 20 Mbit/s); three nodes pull it at the same time, each also
# serving what it has (`serve --p2p-listen` on its repo, behind a NODE_RATE link, default
# 100 Mbit/s), each pulling from the seed and from the two others. Printed beside, same run:
#   single:    one node pulling from the seed alone (the time to beat: 1.3x of it);
#   seed only: the three pulling at once from the seed only (egress ~3x the root).
# Figures: the seed's egress as a multiple of the root's size (goal <= 1.2x), and the last node's
# time as a multiple of the single pull's (goal <= 1.3x). Not a test: it prints figures.
#   bench/swarm.sh [BUILD_DIR]     env: SIZE_MB (100), SEED_RATE (20mbit), NODE_RATE (100mbit),
#                                  PHASES ("single swarm seedonly")
set -euo pipefail
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"
bench_args "$@"
need_cidrun
export CIDRUN_KUBO_AUTO=0 CIDRUN_SOURCES=
size_mb=${SIZE_MB:-100}
seed_rate=${SEED_RATE:-20mbit}
node_rate=${NODE_RATE:-100mbit}
scratch=${BENCH_SCRATCH:-/dev/shm}/cidrun-swarm-bench.$$
mkdir -p "$scratch"
cleanup+=("$scratch")
linkemu=$here/bench/linkemu.py

# The root: one file of SIZE_MB random bytes in 1 MiB raw leaves.
head -c $((size_mb * 1000 * 1000)) /dev/urandom >"$scratch/content"
root=$("$cidrun" --repo-dir "$scratch/seed" add -Q --profile unixfs-v1-2025 "$scratch/content")
root_bytes=$(stat -c %s "$scratch/content")
start_bg seed "$cidrun" --repo-dir "$scratch/seed" serve -q --listen 127.0.0.1:0 \
  --p2p-listen /ip4/127.0.0.1/tcp/0
seed_p2p=$(json "$ready" p2p)

# link NAME MULTIADDR RATE: a paced proxy in front of MULTIADDR; sets $linked (the proxied
# multiaddr) and $link_pid.
link() {
  local name=$1 maddr=$2 rate=$3 port
  port=${maddr#/ip4/127.0.0.1/tcp/}
  port=${port%%/*}
  start_bg "link-$name" python3 "$linkemu" --to "127.0.0.1:$port" --rate "$rate" \
    --stats "$scratch/$name.stats"
  link_pid=${pids[-1]}
  linked="/ip4/127.0.0.1/tcp/$(json "$ready" port)/p2p/${maddr##*/p2p/}"
}
# stop_link PID NAME: stops the proxy; sets $egress to the bytes its target sent through it.
stop_link() {
  kill "$1"
  while kill -0 "$1" 2>/dev/null; do sleep 0.1; done
  egress=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["down"])' "$scratch/$2.stats")
}

# phase NAME NODES MODE: NODES nodes pull at once (MODE swarm: from the seed and each other;
# seed: from the seed only). Sets $last (seconds until the last one finished) and $egress (the
# seed's bytes out).
phase() {
  local name=$1 n=$2 mode=$3 i j seed_link seed_link_pid t0
  local node_addr=() others=() waits=() from=()
  link "$name-seed" "$seed_p2p" "$seed_rate"
  seed_link=$linked
  seed_link_pid=$link_pid
  for i in $(seq 1 "$n"); do
    rm -rf "$scratch/node$i"
    start_bg "$name-node$i" "$cidrun" --repo-dir "$scratch/node$i" serve -q --listen 127.0.0.1:0 \
      --p2p-listen /ip4/127.0.0.1/tcp/0
    others+=("${pids[-1]}")
    link "$name-node$i" "$(json "$ready" p2p)" "$node_rate"
    others+=("$link_pid")
    node_addr+=("$linked")
  done
  t0=$(date +%s.%N)
  for i in $(seq 1 "$n"); do
    from=(--from "$seed_link")
    if [ "$mode" = swarm ]; then
      for j in $(seq 1 "$n"); do [ "$j" = "$i" ] || from+=(--from "${node_addr[$((j - 1))]}"); done
    fi
    (
      "$cidrun" --repo-dir "$scratch/node$i" pull -q "$root" "${from[@]}" || exit 1
      date +%s.%N >"$scratch/$name-done$i"
    ) &
    waits+=($!)
  done
  for w in "${waits[@]}"; do wait "$w" || die "a pull failed in phase $name"; done
  last=0
  for i in $(seq 1 "$n"); do
    last=$(awk -v a="$last" -v b="$(cat "$scratch/$name-done$i")" -v t="$t0" \
      'BEGIN { d = b - t; print (d > a ? d : a) }')
  done
  for p in "${others[@]}"; do kill "$p" 2>/dev/null || true; done
  stop_link "$seed_link_pid" "$name-seed"
}

# PHASES leaves phases out (their figures print as 0), e.g. PHASES="single swarm" while tuning.
phases=" ${PHASES:-single swarm seedonly} "
t_single=0 e_single=0 t_swarm=0 e_swarm=0 t_seed=0 e_seed=0
if [[ $phases == *" single "* ]]; then
  phase single 1 seed
  t_single=$last e_single=$egress
fi
if [[ $phases == *" swarm "* ]]; then
  phase swarm 3 swarm
  t_swarm=$last e_swarm=$egress
fi
if [[ $phases == *" seedonly "* ]]; then
  phase seedonly 3 seed
  t_seed=$last e_seed=$egress
fi
python3 - "$root_bytes" "$seed_rate" "$node_rate" "$t_single" "$e_single" "$t_swarm" "$e_swarm" \
  "$t_seed" "$e_seed" <<'PY'
import sys
size = int(sys.argv[1]); seed_rate, node_rate = sys.argv[2:4]
ts, es, tw, ew, tq, eq = map(float, sys.argv[4:10])
ts = ts or float("nan")  # a phase left out (PHASES)
print(f"bench/swarm: a {size / 1e6:.0f} MB root, seed link {seed_rate}, node links {node_rate}, loopback")
print(f"  single pull from the seed:        {ts:7.1f}s   seed egress {es / size:5.2f}x the root")
print(f"  3 nodes, seed + each other:       {tw:7.1f}s   seed egress {ew / size:5.2f}x   last node / single = {tw / ts:4.2f}x  (goals: <= 1.2x, <= 1.3x)")
print(f"  3 nodes, seed only:               {tq:7.1f}s   seed egress {eq / size:5.2f}x   last node / single = {tq / ts:4.2f}x")
PY
