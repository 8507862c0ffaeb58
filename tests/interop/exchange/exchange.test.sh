#!/usr/bin/env bash
# CTest: cidrun exchanging content with independent JS IPFS peers, all on 127.0.0.1, ports 0.
#  - js-node.mjs (JS importer + @ipld/car) serves a tree as a Trustless Gateway and as kubo's RPC
#    API: `cidrun pull` through both, `cidrun get`, then diff with the tree (profiles v0 and v1);
#  - `cidrun serve`: Helia's trustless-gateway broker and a plain CAR client (js-fetch.mjs)
#    fetch, hash-check and compare the tree; js-pull.mjs (the bench's JS pull) stores all of it;
#  - a corrupting JS peer: pull fails naming the CID and stores nothing;
#  - `cidrun push --to kubo+http://` into an empty JS node, pulled back and compared.
# Last line "N passed, M failed"; non-zero exit on any failure.
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$here/../lib/common.sh"
require_cidrun
require_node_modules
export CIDRUN_KUBO_AUTO=0 CIDRUN_SOURCES=

work=$(mktemp -d /tmp/cidrun-exchange-XXXXXX)
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

# Starts a background process that prints one JSON line when ready; sets $ready to that line.
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
field() { node -e 'process.stdout.write(String(JSON.parse(process.argv[1])[process.argv[2]]))' "$1" "$2"; }

# The tree: a multi-block file, an empty file, many small files, an empty directory.
tree=$work/tree
mkdir -p "$tree/sub/deeper" "$tree/empty-dir"
head -c 5000000 /dev/urandom >"$tree/big.bin"
: >"$tree/empty.txt"
for i in $(seq 1 60); do echo "small file $i" >"$tree/sub/f$i.txt"; done
echo deep >"$tree/sub/deeper/x"

for profile in v0 v1; do
  start "js-$profile" node "$here/js-node.mjs" --dir "$tree" --profile $profile || { bad "js-node $profile start"; continue; }
  url=$(field "$ready" url)
  root=$(field "$ready" root)
  for kind in gateway kubo; do
    from=$url
    [ $kind = kubo ] && from=kubo+$url
    repo=$work/repo-$profile-$kind
    if "$CIDRUN" --repo-dir "$repo" pull -q "$root" --from "$from" &&
      "$CIDRUN" --repo-dir "$repo" get "$root" -o "$work/out-$profile-$kind" >/dev/null &&
      diff -r "$tree" "$work/out-$profile-$kind" >/dev/null; then
      ok "pull $profile from JS peer via $kind, tree identical"
    else
      bad "pull $profile from JS peer via $kind"
    fi
  done
  if [ $profile = v0 ]; then
    mine=$("$CIDRUN" --repo-dir "$work/repo-v0-gateway" add -r -Q "$tree")
    [ "$mine" = "$root" ] && ok "cidrun add CID equals the JS importer's ($root)" || bad "add CID $mine != JS $root"
  fi

  start "serve-$profile" "$CIDRUN" --repo-dir "$work/repo-$profile-gateway" serve --listen 127.0.0.1:0 -q ||
    { bad "serve $profile start"; continue; }
  gw=$(field "$ready" gateway)
  for mode in helia car; do
    if res=$(cd "$here/.." && node exchange/js-fetch.mjs "$gw" "$root" "$tree" --mode $mode 2>"$work/fetch.err"); then
      ok "JS $mode client verified the tree from cidrun serve ($profile): $res"
    else
      bad "JS $mode client from cidrun serve ($profile): $(tail -n3 "$work/fetch.err")"
    fi
  done
  # js-pull.mjs (bench/pull.sh's JS pull) must fetch, verify and store the whole DAG: as many
  # blocks as the repo serving it holds (it holds only this DAG).
  want=$("$CIDRUN" --repo-dir "$work/repo-$profile-gateway" repo stat --json | sed -n 's/.*"NumObjects": *\([0-9]*\).*/\1/p')
  for mode in helia car; do
    rm -rf "$work/js-store"
    if res=$(cd "$here/.." && node exchange/js-pull.mjs "$gw" "$root" "$work/js-store" --mode $mode 2>"$work/fetch.err") &&
      [ "$(find "$work/js-store" -type f | wc -l)" = "$want" ] && [ -n "$want" ]; then
      ok "JS pull ($mode) stored all $want blocks from cidrun serve ($profile)"
    else
      bad "JS pull ($mode) from cidrun serve ($profile): want $want blocks, $res $(tail -n3 "$work/fetch.err")"
    fi
  done
done

# A peer that flips a bit in every block: nothing may be stored, the error names the CID.
start js-corrupt node "$here/js-node.mjs" --dir "$tree" --corrupt || bad "corrupt peer start"
curl_root=$(field "$ready" root)
if err=$("$CIDRUN" --repo-dir "$work/repo-bad" pull -q "$curl_root" --from "$(field "$ready" url)" 2>&1); then
  bad "pull from a corrupting peer succeeded"
elif grep -q "$curl_root" <<<"$err" && [ -z "$(find "$work/repo-bad/blocks" -name '*.data' 2>/dev/null)" ]; then
  ok "corrupting peer rejected, nothing stored, error names the CID"
else
  bad "corrupting peer: unexpected outcome: $err"
fi

# push into an empty JS node through its RPC API, then pull it back from there.
start js-empty node "$here/js-node.mjs" || bad "empty node start"
empty=$(field "$ready" url)
root=$("$CIDRUN" --repo-dir "$work/repo-v0-gateway" add -r -Q "$tree")
if "$CIDRUN" --repo-dir "$work/repo-v0-gateway" push -q "$root" --to "kubo+$empty" &&
  "$CIDRUN" --repo-dir "$work/repo-back" pull -q "$root" --from "kubo+$empty" &&
  "$CIDRUN" --repo-dir "$work/repo-back" get "$root" -o "$work/out-back" >/dev/null &&
  diff -r "$tree" "$work/out-back" >/dev/null; then
  ok "push to the JS node (dag/import), pulled back identical"
else
  bad "push to the JS node and back"
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
