#!/usr/bin/env bash
# bench/update.sh — what an update costs: the bytes a node that holds v1 of a root fetches (`pull`)
# for v2, through a link emulator that counts them, beside the OCI layer (tar, gzip -6) that
# carries the same change. Not a test.
#   bench/update.sh [BUILD_DIR]
# v1 is a Debian minbase root (made by bench/image.sh). The changes:
#   U1  usr/bin/dpkg replaced by a new build (a byte changed in every 4 KiB page)
#   U2  chmod 0600 and chown 1000:1000 of etc/hostname
#   U3  the same root with new mtimes on every file (a rebuild with identical contents)
# each as a cidrun image (`image import rootfs:`) and as a plain UnixFS tree (`add -r` with
# --preserve-mode --preserve-mtime, where owners have no place). The origin is `cidrun serve`
# behind bench/linkemu.py (default 20 Mbit/s, 25 ms each way: RATE and DELAY_MS override); the
# client pulls v1 over loopback first, then v2 over the link.
set -euo pipefail
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"
bench_args "$@"
need_cidrun
rate=${RATE:-20mbit}
delay=${DELAY_MS:-25}
[ "$(id -u)" -eq 0 ] || die "needs root (owners)"
minbase=$data/minbase
[ -d "$minbase/etc" ] || die "no $minbase: run bench/image.sh first (it makes the Debian root)"

work=$(mktemp -d /var/tmp/cidrun-bench-update-XXXXXX)
cleanup+=("$work")
export CIDRUN_NETWORK=none
# The link emulator listens on loopback, where cidrun does not ask for coded answers by default.
export CIDRUN_COMPRESS=${CIDRUN_COMPRESS:-on}
origin=$work/origin

# variant NAME: a copy of the root with change NAME applied, in $work/NAME
variant() {
  local d=$work/$1
  # The contents, never the shared input itself ($minbase may be a symlink, which cp -a would
  # copy as one, and the changes would land in the input).
  mkdir "$d"
  cp -a "$minbase/." "$d/"
  # Device nodes have no place in a plain UnixFS tree (`add` refuses them): both kinds go without.
  find "$d/dev" -mindepth 1 -delete
  case $1 in
    v1) ;;
    u1) # A new build: every 4 KiB page differs (so does every block), and it still compresses
        # like a program.
        python3 - "$d/usr/bin/dpkg" <<'PY'
import sys
p = sys.argv[1]
b = bytearray(open(p, "rb").read())
for i in range(0, len(b), 4096):
    b[i] ^= 0xFF
open(p, "wb").write(b)
PY
        ;;
    u2) chmod 0600 "$d/etc/hostname"
        chown 1000:1000 "$d/etc/hostname" ;;
    u3) find "$d" -xdev -exec touch -h -d @1767225600 {} + ;;
  esac
}
# layer NAME: the bytes of an OCI layer (tar, gzip -6) that turns v1 into NAME
layer() {
  local d=$work/$1
  case $1 in
    u1) tar -C "$d" -cf - usr/bin/dpkg | gzip -6 | wc -c ;;
    u2) tar -C "$d" -cf - etc/hostname | gzip -6 | wc -c ;;
    u3) tar -C "$d" -cf - . | gzip -6 | wc -c ;;  # a rebuild ships a whole new layer
  esac
}
import() { # import KIND NAME: the CID of variant NAME as an image or a plain tree
  case $1 in
    image) "$cidrun" --repo-dir "$origin" image import -q rootfs:"$work/$2/" ;;
    tree) "$cidrun" --repo-dir "$origin" add -Q -r --cid-version 1 \
      --preserve-mode --preserve-mtime "$work/$2" ;;
  esac
}

for v in v1 u1 u2 u3; do variant $v; done
declare -A cid
for kind in image tree; do
  for v in v1 u1 u2 u3; do cid[$kind.$v]=$(import $kind $v); done
done
v1_bytes=$(du -sb --apparent-size "$minbase/" | cut -f1)

start_bg serve "$cidrun" --repo-dir "$origin" serve -q --listen 127.0.0.1:0
origin_port=${ready##*:}
origin_port=${origin_port%%\"*}

measure() { # measure KIND NAME: "seconds bytes" of pulling NAME into a node that holds v1
  local kind=$1 v=$2 t0 t1 link_pid link_port
  rm -rf "$work/client"
  "$cidrun" --repo-dir "$work/client" pull -q --from "http://127.0.0.1:$origin_port" "${cid[$kind.v1]}"
  start_bg "link-$kind-$v" python3 "$here/bench/linkemu.py" --to "127.0.0.1:$origin_port" \
    --rate "$rate" --up-rate "$rate" --delay-ms "$delay" --stats "$work/$kind-$v.stats"
  link_pid=${pids[-1]}
  link_port=$(json "$ready" port)
  t0=$(date +%s.%N)
  "$cidrun" --repo-dir "$work/client" pull -q --from "http://127.0.0.1:$link_port" "${cid[$kind.$v]}"
  t1=$(date +%s.%N)
  kill "$link_pid"
  while kill -0 "$link_pid" 2>/dev/null; do sleep 0.1; done
  "$cidrun" --repo-dir "$work/client" repo verify >/dev/null || die "repo verify failed after $kind $v"
  echo "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')" \
    "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["down"])' "$work/$kind-$v.stats")"
}

printf 'v1: Debian minbase, %.1f MB of files; link %s, %s ms each way\n' \
  "$(awk -v b="$v1_bytes" 'BEGIN { print b / 1e6 }')" "$rate" "$delay"
printf '  %-34s %12s %12s %9s %14s\n' change "image" "plain tree" "image s" "OCI layer"
for v in u1 u2 u3; do
  read -r ti bi <<<"$(measure image $v)"
  read -r _ bt <<<"$(measure tree $v)"
  case $v in
    u1) what="U1 usr/bin/dpkg replaced" ;;
    u2) what="U2 chmod+chown etc/hostname" ;;
    u3) what="U3 new mtimes everywhere" ;;
  esac
  printf '  %-34s %10.1f KB %10.1f KB %8.2fs %11.1f KB   image %.2f%% of v1\n' "$what" \
    "$(awk -v b="$bi" 'BEGIN { print b / 1e3 }')" "$(awk -v b="$bt" 'BEGIN { print b / 1e3 }')" \
    "$ti" "$(awk -v b="$(layer $v)" 'BEGIN { print b / 1e3 }')" \
    "$(awk -v b="$bi" -v t="$v1_bytes" 'BEGIN { print 100 * b / t }')"
done
