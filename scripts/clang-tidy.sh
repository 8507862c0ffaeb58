#!/usr/bin/env bash
# Runs clang-tidy (the repository's .clang-tidy) over the translation units under the given paths
# and exits non-zero if any finding is reported. Paths are files or directories relative to the
# repository root; none means every tracked .cpp the build compiles.
#   scripts/clang-tidy.sh [-p BUILD_DIR] [-j JOBS] [PATH...]
# BUILD_DIR must hold compile_commands.json (the top-level CMakeLists.txt always exports it).
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
# One log per file so parallel runs do not interleave; a file's log is kept only if it failed.
printf '%s\n' "${files[@]}" | xargs -P "$jobs" -I{} sh -c '
  log="$2/$(echo "$1" | tr / _).log"
  if clang-tidy -p "$3" --quiet "$1" >"$log" 2>&1; then rm -f "$log"; fi
' sh {} "$out" "$out/db" || true
failed=0
for log in "$out"/*.log; do
  [ -e "$log" ] || continue
  failed=$((failed + 1))
  grep -v '^[0-9]* warnings\? generated\.$' "$log" || true
done
echo "clang-tidy: $((${#files[@]} - failed)) passed, $failed failed"
[ "$failed" -eq 0 ]
