#!/usr/bin/env bash
# CTest: CAR interop with the JS reference stack, both directions.
#  1. cidrun add (modes, ns/pre-1970 mtimes, symlinks, empty dirs, unicode, HAMT) -> dag export ->
#     @ipld/car + ipfs-unixfs-exporter read back the same tree, metadata included.
#  2. ipfs-unixfs-importer + @ipld/car make a CAR -> cidrun dag import -> get -> same tree.
# Last line "N passed, M failed"; non-zero exit on any failure.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$here/../lib/common.sh"
require_cidrun
require_node_modules
js="node $here/car-interop.mjs"
work=$(mktemp -d)
trap 'chmod -R u+rwx "$work" 2>/dev/null; rm -rf "$work"' EXIT
passed=0 failed=0
check() { if "$@"; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "FAIL: $*"; fi; }

src=$work/src
mkdir -p "$src/sub/deep" "$src/empty" "$src/sticky" "$src/ünï-дир" "$src/many"
cd "$src"
printf hello > a.txt; : > zero; head -c 3000000 /dev/urandom > sub/big; printf y > sub/deep/f
printf x > "ünï-дир/файл 名前 🎉"; ln -s a.txt link; ln -s /etc/passwd sub/abs
printf s > suid; chmod 4755 suid; chmod 1777 sticky; chmod 0700 sub/deep
for i in $(seq 1 300); do printf "$i" > "many/entry-$i"; done
touch -h -d '1960-01-01 00:00:00.123456789 UTC' sub/big
touch -h -d '2001-02-03 04:05:06.000000001 UTC' a.txt link
touch -d '1999-09-09 09:09:09.5 UTC' many sub/deep sub empty sticky "ünï-дир"
touch -d '2010-10-10 10:10:10.25 UTC' .
cd "$work"

repo=$work/repo
root=$("$CIDRUN" --repo-dir "$repo" add -r -Q --preserve-mode --preserve-mtime --hamt-threshold 2000 "$src")
"$CIDRUN" --repo-dir "$repo" dag export "$root" > "$work/cidrun.car"
$js manifest-dir "$src" > "$work/src.json"
$js manifest-car "$work/cidrun.car" > "$work/js-read.json"
check $js compare "$work/src.json" "$work/js-read.json"

jsroot=$($js make-car "$src" "$work/js.car")
repo2=$work/repo2
out=$("$CIDRUN" --repo-dir "$repo2" dag import "$work/js.car")
check test "$out" = "$(printf 'Pinned root\t%s\tsuccess' "$jsroot")"
"$CIDRUN" --repo-dir "$repo2" get "$jsroot" -o "$work/out" 2>/dev/null
$js manifest-dir "$work/out" > "$work/out.json"
check $js compare "$work/src.json" "$work/out.json"
check "$CIDRUN" --repo-dir "$repo2" repo verify >/dev/null

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
