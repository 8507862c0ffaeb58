#!/usr/bin/env bash
# Container start time: cidrun run vs crun vs runc (and the unshare+chroot floor) on the same
# busybox bundle running /bin/true, and `run` with a network (cidrun's --network bridge through the
# CNI plugins beside podman's own start with its default network, netavark's bridge; each also
# with --network none), RUNS times each in one invocation, in rounds: one run of each
# per round, the order rotated every round so that no runtime always runs first (the first cgroup
# attach after a quiet moment waits for an RCU grace period that the next ones share), all of them
# in one private mount namespace where the hybrid host's cgroup2 mount is hidden (crun refuses
# hybrid cgroups) and a private network namespace (the bridges, addresses and firewall rules the
# networked rows make never touch the host's), so every runtime sees the same host. Their state
# directories (--root) are on a
# tmpfs there, as /run is on a systemd host (this machine's /run is on its disk, where creating
# and removing a state directory costs each runtime about 0.3 ms per container).
# Prints min and median (ms) and ratios.
# Not a test: the machine is shared and noisy, compare minimums.
#   sudo bench/start.sh [path/to/cidrun]     RUNS=50 by default
#   BASE=path/to/other/cidrun adds that build's rows (e.g. main's) to compare in the same window.
#   STATE_ON_DISK=1 keeps the state directories on this machine's disk (under /tmp) instead.
set -euo pipefail
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"
CIDRUN=$(realpath "${1:-${CIDRUN:-$here/build/cidrun}}")
RUNS=${RUNS:-50}
[ "$(id -u)" -eq 0 ] || die "run as root"
work=$(mktemp -d /tmp/cidrun-bench.XXXXXX)
cleanup+=("$work")
"$here/scripts/make-busybox-root.sh" "$work/bundle/rootfs" >/dev/null
(cd "$work/bundle" && "$CIDRUN" spec && sed -i 's/"sh"/"\/bin\/true"/' config.json)
B=$work/bundle
# cidrun's default bridge network (the same plugins) on a bridge and subnet of the bench's own,
# its address reservations under $work.
mkdir -p "$work/net" "$work/podman"
cat >"$work/net/bridge.conflist" <<EOF
{"cniVersion": "1.0.0", "name": "cidrun-bench", "plugins": [
  {"type": "bridge", "bridge": "cidrun-b0", "isGateway": true, "ipMasq": true, "hairpinMode": true,
   "ipam": {"type": "host-local", "dataDir": "$work/ipam", "routes": [{"dst": "0.0.0.0/0"}],
            "ranges": [[{"subnet": "10.217.0.0/24"}]]}},
  {"type": "portmap", "capabilities": {"portMappings": true}},
  {"type": "firewall"}]}
EOF
# podman (root lacks CAP_SYS_RESOURCE here, so its default rlimits are
# lowered), with its own storage and state.
PODMAN="podman --root $work/podman/root --runroot $work/state/podman --tmpdir $work/podman/tmp"
PODMAN+=" --events-backend file run --rm --ulimit nofile=20000:20000 --ulimit nproc=32768:32768"

# time_rounds NAME CMD [NAME CMD]... : RUNS rounds, each running every CMD once (with $i set),
# round i starting at the (i mod n)th, so that all of them see the same moments of a noisy machine
# and each is first as often as the others; writes NAME's per-run ms, one a line, to $work/NAME.ms.
time_rounds() {
  local -a names=() cmds=()
  while [ $# -gt 0 ]; do names+=("$1"); cmds+=("$2"); rm -f "$work/$1.ms"; shift 2; done
  local i j k n=${#names[@]} t0 t1
  for ((i = 0; i < RUNS; i++)); do
    for ((j = 0; j < n; j++)); do
      k=$(((i + j) % n))
      t0=$EPOCHREALTIME
      eval "${cmds[$k]}" >/dev/null 2>&1 || { echo "bench: ${names[$k]} failed: ${cmds[$k]}" >&2; return 1; }
      t1=$EPOCHREALTIME
      echo "$t0 $t1" | awk '{printf "%.3f\n", ($2 - $1) * 1000}' >> "$work/${names[$k]}.ms"
    done
  done
}
export -f time_rounds
BASE=${BASE:+$(realpath "$BASE")}
export RUNS work B CIDRUN BASE STATE_ON_DISK PODMAN

rounds=(
  cidrun '"$CIDRUN" --root $work/state/cidrun run --rm --seccomp unconfined --name b$i $B'
  cidrun-seccomp '"$CIDRUN" --root $work/state/cidrun run --rm --name s$i $B'
  cidrun-nocgroup '"$CIDRUN" --root $work/state/cidrun run --rm --no-cgroup --seccomp unconfined --name n$i $B'
  crun 'crun --root $work/state/crun run -b $B c$i'
  crun-nocgroup 'crun --root $work/state/crun --cgroup-manager=disabled run -b $B d$i'
  runc 'runc --root $work/state/runc run -b $B r$i'
  floor 'unshare -m -u -i -n -p -f chroot $B/rootfs /bin/true'
  cidrun-bridge '"$CIDRUN" --root $work/state/cidrun run --rm --network bridge --network-config-dir $work/net --name nb$i $B/rootfs /bin/true'
  cidrun-none '"$CIDRUN" --root $work/state/cidrun run --rm --network none --name nn$i $B/rootfs /bin/true'
  podman-bridge '$PODMAN --rootfs $B/rootfs /bin/true'
  podman-none '$PODMAN --network none --rootfs $B/rootfs /bin/true'
)
if [ -n "$BASE" ]; then
  rounds+=(
    base '"$BASE" --root $work/state/cidrun run --rm --seccomp unconfined --name bb$i $B'
    base-nocgroup '"$BASE" --root $work/state/cidrun run --rm --no-cgroup --seccomp unconfined --name bn$i $B'
  )
fi
# The rounds' commands go through the environment as one string each (NAME, CMD, NAME, ...).
export ROUNDS_N=${#rounds[@]}
for k in "${!rounds[@]}"; do export "ROUND_$k=${rounds[$k]}"; done
# crun refuses hybrid cgroups: every runtime runs in this private mount namespace without the
# cgroup2 mount (runc and cidrun use the v1 hierarchies either way).
unshare -m -n --propagation private bash -c '
  set -euo pipefail
  umount /sys/fs/cgroup/unified 2>/dev/null || true
  ip link set lo up
  mkdir -p "$work/state"
  [ -n "${STATE_ON_DISK:-}" ] || mount -t tmpfs -o mode=0700 bench-state "$work/state"
  args=()
  for ((k = 0; k < ROUNDS_N; k++)); do v=ROUND_$k; args+=("${!v}"); done
  time_rounds "${args[@]}"'

stats() { sort -n "$work/$1.ms" | awk '{a[NR]=$1} END {printf "%.1f %.1f", a[1], (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
printf '%-18s %9s %9s\n' runtime "min ms" "median ms"
for n in cidrun cidrun-seccomp cidrun-nocgroup ${BASE:+base base-nocgroup} crun crun-nocgroup runc floor \
  cidrun-bridge cidrun-none podman-bridge podman-none; do
  read -r mn md <<<"$(stats $n)"
  printf '%-18s %9s %9s\n' "$n" "$mn" "$md"
  declare "min_${n//-/_}=$mn"
done
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }
echo
echo "cidrun / crun (cgroups, min):            $(ratio "$min_cidrun" "$min_crun")   (goal <= 1.0)"
echo "cidrun / runc (min):                     $(ratio "$min_cidrun" "$min_runc")"
echo "cidrun no-cgroup / unshare+chroot (min): $(ratio "$min_cidrun_nocgroup" "$min_floor")   (goal <= 1.5)"
echo "cidrun no-cgroup / crun no-cgroup (min): $(ratio "$min_cidrun_nocgroup" "$min_crun_nocgroup")"
echo "cidrun bridge / podman bridge (min):     $(ratio "$min_cidrun_bridge" "$min_podman_bridge")"
echo "cidrun none / podman none (min):         $(ratio "$min_cidrun_none" "$min_podman_none")"
diff_ms() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.1f", a - b}'; }
echo "a bridge's cost (bridge - none, min):    cidrun $(diff_ms "$min_cidrun_bridge" "$min_cidrun_none") ms, podman $(diff_ms "$min_podman_bridge" "$min_podman_none") ms"
if [ -n "$BASE" ]; then
  echo "base no-cgroup / unshare+chroot (min):   $(ratio "$min_base_nocgroup" "$min_floor")"
  echo "cidrun / base (cgroups, min):            $(ratio "$min_cidrun" "$min_base")"
  echo "cidrun / base (no-cgroup, min):          $(ratio "$min_cidrun_nocgroup" "$min_base_nocgroup")"
fi
