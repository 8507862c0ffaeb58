#!/usr/bin/env bash
# CTest: cidrun and Helia (js-libp2p: TCP, Noise, yamux, Identify; @helia/bitswap 1.2.0) exchange
# trees over bitswap, both ways, all on 127.0.0.1 (ports chosen by the kernel):
#  - a Helia node serves a tree (profiles v0 and v1): `cidrun pull --from /ip4/.../p2p/<id>`,
#    `cidrun get`, then diff with the tree;
#  - `cidrun serve --p2p-listen`: a Helia node dials the printed multiaddr, fetches the tree over
#    bitswap (every block hash-checked) and compares it byte for byte;
#  - delegated routing (/routing/v1/providers), profile v1: `cidrun pull --from routing+http://R`
#    where R is a `cidrun serve --routing-peer <Helia>` holding nothing finds the Helia node and
#    pulls from it; Helia's own routing client asks `cidrun serve` for providers of the root, dials
#    the bitswap provider it names and fetches the tree from it;
#  - refusals: a peer whose key is not the dialed /p2p id, and an unreachable peer, fail with one
#    error line and leave the repo without the root.
# Last line "N passed, M failed"; non-zero exit on any failure.
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$here/../lib/common.sh"
require_cidrun
require_node_modules
export CIDRUN_KUBO_AUTO=0 CIDRUN_SOURCES=

work=$(mktemp -d /tmp/cidrun-p2p-XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  wait 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
passed=0
failed=0
ok() { passed=$((passed + 1)); echo "ok: $*"; }
bad() { failed=$((failed + 1)); echo "FAIL: $*"; }

start() {
  local out=$work/$1.out
  shift
  "$@" >"$out" 2>"$out.err" &
  pids+=($!)
  for _ in $(seq 1 300); do
    if [ -s "$out" ]; then ready=$(head -n1 "$out"); return 0; fi
    sleep 0.1
  done
  echo "process did not start: $*" >&2
  cat "$out.err" >&2
  return 1
}
field() { node -e 'const v = JSON.parse(process.argv[1])[process.argv[2]]; process.stdout.write(String(Array.isArray(v) ? v[0] : v))' "$1" "$2"; }

tree=$work/tree
mkdir -p "$tree/sub/deeper" "$tree/empty-dir"
head -c 5000000 /dev/urandom >"$tree/big.bin"
: >"$tree/empty.txt"
for i in $(seq 1 60); do echo "small file $i" >"$tree/sub/f$i.txt"; done
echo deep >"$tree/sub/deeper/x"

for profile in v0 v1; do
  start "helia-$profile" node "$here/helia-peer.mjs" serve --dir "$tree" --profile $profile ||
    { bad "helia serve $profile start"; continue; }
  maddr=$(field "$ready" multiaddrs)
  root=$(field "$ready" root)
  repo=$work/repo-$profile
  if [ "$profile" = v1 ]; then
    ours=$("$CIDRUN" --repo-dir "$work/repo-hash" add -r -Q -n --profile unixfs-v1-2025 "$tree")
    if [ "$ours" = "$root" ]; then ok "Helia's unixfs-v1-2025 root is cidrun's: $root"; else
      bad "Helia's unixfs-v1-2025 root $root, cidrun add's $ours"
    fi
  fi
  if "$CIDRUN" --repo-dir "$repo" pull -q "$root" --from "$maddr" 2>"$work/pull.err" &&
    "$CIDRUN" --repo-dir "$repo" get "$root" -o "$work/out-$profile" >/dev/null &&
    diff -r "$tree" "$work/out-$profile" >/dev/null; then
    ok "cidrun pulled the $profile tree from Helia over bitswap, tree identical"
  else
    bad "pull $profile from Helia: $(tail -n3 "$work/pull.err")"
  fi

  # The other way: cidrun serves, Helia fetches.
  start "serve-$profile" "$CIDRUN" --repo-dir "$repo" serve -q --listen 127.0.0.1:0 \
    --p2p-listen /ip4/127.0.0.1/tcp/0 || { bad "serve --p2p-listen $profile start"; continue; }
  p2p=$(field "$ready" p2p)
  gateway=$(field "$ready" gateway)
  case "$p2p" in
    /ip4/127.0.0.1/tcp/*/p2p/12D3KooW*) ok "serve printed its multiaddr $p2p" ;;
    *) bad "serve printed '$ready'" ;;
  esac
  if res=$(node "$here/helia-peer.mjs" fetch "$p2p" "$root" "$tree" 2>"$work/fetch.err"); then
    ok "Helia fetched and verified the $profile tree from cidrun serve: $res"
  else
    bad "Helia fetch $profile from cidrun: $(tail -n5 "$work/fetch.err")"
  fi

  [ "$profile" = v1 ] || continue
  # Routing: a router that holds nothing and names the Helia node; cidrun finds it through it.
  start router "$CIDRUN" --repo-dir "$work/repo-router" serve -q --listen 127.0.0.1:0 \
    --routing-peer "$maddr" || { bad "serve --routing-peer start"; continue; }
  router=$(field "$ready" gateway)
  if "$CIDRUN" --repo-dir "$work/repo-routed" pull -q "$root" --from "routing+${router}" \
    2>"$work/routed.err" &&
    "$CIDRUN" --repo-dir "$work/repo-routed" get "$root" -o "$work/out-routed" >/dev/null &&
    diff -r "$tree" "$work/out-routed" >/dev/null; then
    ok "cidrun found the Helia node through routing+${router} and pulled the tree from it"
  else
    bad "pull through routing+${router}: $(tail -n3 "$work/routed.err")"
  fi
  # Helia's routing client asks cidrun serve (which holds the tree) for the root's providers.
  if res=$(node "$here/helia-peer.mjs" fetch-routed "$gateway" "$root" "$tree" 2>"$work/routed-fetch.err") &&
    [ "$(field "$res" peer)" = "${p2p##*/p2p/}" ]; then
    ok "Helia's routing client found cidrun serve as the provider and fetched the tree: $res"
  else
    bad "Helia fetch through cidrun's /routing/v1: ${res:-} $(tail -n5 "$work/routed-fetch.err")"
  fi
done

# A peer that is not who the address says: the handshake is refused, nothing is stored.
if [ -n "${maddr:-}" ]; then
  other=$(node -e 'console.log("12D3KooWBtg3aaRMjxwedh83aGiUkwSxDwUZkzuJcfaqUmo7R3pq")')
  liar=${maddr%/p2p/*}/p2p/$other
  if "$CIDRUN" --repo-dir "$work/repo-liar" pull -q "$root" --from "$liar" 2>"$work/liar.err"; then
    bad "pull from a peer with the wrong key succeeded"
  elif grep -q "not the $other" "$work/liar.err" && [ "$(grep -c . "$work/liar.err")" -le 3 ] &&
    ! "$CIDRUN" --repo-dir "$work/repo-liar" block stat "$root" >/dev/null 2>&1; then
    ok "a peer whose key is not the dialed id is refused: $(tail -n1 "$work/liar.err")"
  else
    bad "wrong-key refusal: $(cat "$work/liar.err")"
  fi
fi
if "$CIDRUN" --repo-dir "$work/repo-dead" pull -q "$root" \
  --from /ip4/127.0.0.1/tcp/1/p2p/12D3KooWBtg3aaRMjxwedh83aGiUkwSxDwUZkzuJcfaqUmo7R3pq 2>"$work/dead.err"; then
  bad "pull from an unreachable peer succeeded"
elif grep -q "^cidrun: error: .*$root" "$work/dead.err"; then
  ok "an unreachable peer: $(tail -n1 "$work/dead.err")"
else
  bad "unreachable peer: $(cat "$work/dead.err")"
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
