#!/usr/bin/env bash
# Runs clang-tidy (the repository's .clang-tidy) over the translation units under the given paths
# and exits non-zero if any finding is reported. Paths are files or directories relative to the
# repository root; none means every tracked .cpp the build compiles.
#   scripts/clang-tidy.sh [-p BUILD_DIR] [-j JOBS] [PATH...]
# BUILD_DIR must hold compile_commands.json (the top-level CMakeLists.txt always exports it).
# Clean results are cached, as ccache caches objects, in $CIDRUN_TIDY_CACHE (default
# ~/.cache/cidrun-clang-tidy; "off" disables it). A file's key hashes everything its result
# depends on: its own content and compile command (with the checkout's and the build's paths
# left out, so another clone hits the same entries), every tracked header and .clang-tidy, this
# script, the clang-tidy version and the installed packages' versions (system headers). Only
# clean results are kept: a finding is always reported afresh.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${CIDRUN_BUILD_DIR:-$root/build}
jobs=${CIDRUN_TIDY_JOBS:-2}
while getopts "p:j:" opt; do
  case $opt in
    p) build=$OPTARG ;;
    j) jobs=$OPTARG ;;
    *) echo "usage: $0 [-p BUILD_DIR] [-j JOBS] [PATH...]" >&2; exit 2 ;;
  esac
done
shift $((OPTIND - 1))
build=$(cd "$build" 2>/dev/null && pwd) || { echo "clang-tidy.sh: no build directory" >&2; exit 2; }
db=$build/compile_commands.json
[ -f "$db" ] || { echo "clang-tidy.sh: $db missing (configure the build first)" >&2; exit 2; }
command -v clang-tidy >/dev/null || { echo "clang-tidy.sh: clang-tidy not installed" >&2; exit 2; }

cd "$root"
for p in "$@"; do
  [ -e "$p" ] || { echo "clang-tidy.sh: $p: no such file or directory" >&2; exit 2; }
done
# Only files the build compiles have flags; a path that selects none is a mistake, not a pass.
mapfile -t files < <(comm -12 \
  <(git ls-files -- "${@:-.}" | grep '\.cpp$' | sed "s|^|$root/|" | sort) \
  <(sed -n 's/^ *"file": "\(.*\)",*$/\1/p' "$db" | sort -u))
if [ "${#files[@]}" -eq 0 ]; then
  echo "clang-tidy.sh: no compiled .cpp files under: ${*:-.}" >&2
  exit 2
fi

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
# The build precompiles headers for some targets (-include cmake_pch.hxx); clang takes the GCC
# precompiled header next to it for its own and stops. clang-tidy reads a copy of the database
# without it, so every file must include what it uses. The exec stub's GCC-only code-generation
# flag (no memset calls in a libc-free program) is unknown to clang and says nothing to analysis.
mkdir "$out/db"
sed -e 's| -Winvalid-pch||g' -e 's| -include [^ ]*/cmake_pch\.hxx||g' \
  -e 's| -fno-tree-loop-distribute-patterns||g' "$db" >"$out/db/compile_commands.json"
cache=${CIDRUN_TIDY_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/cidrun-clang-tidy}
# "FILE KEY" per line (KEY "-" without a cache).
if [ "$cache" = off ]; then
  printf '%s -\n' "${files[@]}" >"$out/keys"
else
  mkdir -p "$cache"
  {
    clang-tidy --version
    dpkg-query -W 2>/dev/null || true
    git ls-files -z -- '*.h' '*.hpp' '.clang-tidy' '*/.clang-tidy' scripts/clang-tidy.sh |
      xargs -0 git hash-object --
  } | sha256sum | cut -d' ' -f1 >"$out/global"
  python3 - "$out/db/compile_commands.json" "$root" "$build" "$(cat "$out/global")" \
    "${files[@]}" >"$out/keys" <<'PY'
import hashlib, json, sys
db, root, build, common = sys.argv[1:5]
commands = {e["file"]: e.get("command") or " ".join(e["arguments"]) for e in json.load(open(db))}
for f in sys.argv[5:]:
    h = hashlib.sha256(common.encode())
    h.update(commands[f].replace(build, "@BUILD@").replace(root, "@ROOT@").encode())
    h.update(open(f, "rb").read())
    print(f, h.hexdigest())
PY
fi
# One log per file so parallel runs do not interleave; a file's log is kept only if it failed.
# sh -c's arguments: $0 the scratch dir, $1 the database, $2 the cache, then a line of keys.
xargs -P "$jobs" -L 1 sh -c '
  name="$0/$(echo "$3" | tr / _)"
  if [ "$4" != - ] && [ -e "$2/$4" ]; then touch "$name.cached"; exit 0; fi
  if clang-tidy -p "$1" --quiet "$3" >"$name.log" 2>&1; then
    rm -f "$name.log"
    if [ "$4" != - ]; then touch "$2/$4"; fi
  fi
' "$out" "$out/db" "$cache" <"$out/keys" || true
failed=0
for log in "$out"/*.log; do
  [ -e "$log" ] || continue
  failed=$((failed + 1))
  grep -v '^[0-9]* warnings\? generated\.$' "$log" || true
done
cached=$(find "$out" -maxdepth 1 -name '*.cached' | wc -l)
echo "clang-tidy: $((${#files[@]} - failed)) passed ($cached of them unchanged since a clean run), $failed failed"
[ "$failed" -eq 0 ]
