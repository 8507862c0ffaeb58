#!/usr/bin/env bash
# Runs clang-tidy (the repository's .clang-tidy) over the translation units under the given paths
# and exits non-zero if any finding is reported. Paths are files or directories relative to the
# repository root; none means every tracked .cpp the build compiles.
#   scripts/clang-tidy.sh [-p BUILD_DIR] [-j JOBS] [PATH...]
# BUILD_DIR must hold compile_commands.json (the top-level CMakeLists.txt always exports it).
# Clean results are cached, as ccache caches objects, in $CIDRUN_TIDY_CACHE (default
# ~/.cache/cidrun-clang-tidy; "off" disables it). A file's key hashes everything its result
# depends on: its own content and compile command (with the checkout's and the build's paths
# left out, so another clone hits the same entries), the tracked headers it includes (as ninja
# recorded them when it last compiled the file; every tracked header when there is no record or
# the source or one of those headers changed since), the .clang-tidy files, this script, the
# clang-tidy
# version and the installed packages' versions (system headers). Only clean results are kept: a
# finding is always reported afresh.
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
    git ls-files -z -- '.clang-tidy' '*/.clang-tidy' scripts/clang-tidy.sh |
      xargs -0 git hash-object --
  } | sha256sum | cut -d' ' -f1 >"$out/global"
  git ls-files -- '*.h' '*.hpp' >"$out/headers"
  ninja -C "$build" -t deps >"$out/deps" 2>/dev/null || : >"$out/deps"
  python3 - "$out/db/compile_commands.json" "$root" "$build" "$(cat "$out/global")" \
    "$out/headers" "$out/deps" "${files[@]}" >"$out/keys" <<'PY'
import hashlib, json, os, shlex, sys
db, root, build, common, headers_file, deps_file = sys.argv[1:7]
entries = {e["file"]: e for e in json.load(open(db))}
tracked = {os.path.join(root, h) for h in open(headers_file).read().split()}
content = {}
def digest(path):
    if path not in content:
        content[path] = hashlib.sha256(open(path, "rb").read()).hexdigest()
    return content[path]
# `ninja -t deps`: "OBJECT: #deps N, deps mtime T (VALID)" then one indented path per line.
deps, current = {}, None
for line in open(deps_file):
    if line.startswith(" "):
        if current is not None:
            deps[current].add(os.path.normpath(os.path.join(build, line.strip())))
    elif ": #deps" in line:
        obj, state = line.split(": #deps", 1)
        current = os.path.normpath(os.path.join(build, obj)) if "(VALID)" in state else None
        if current is not None:
            deps[current] = set()
def included(entry, source):
    # The tracked headers the compiler read for this file when ninja last built its object.
    args = entry.get("arguments") or shlex.split(entry["command"])
    if "-o" not in args:
        return None
    obj = os.path.normpath(os.path.join(entry.get("directory", build), args[args.index("-o") + 1]))
    if obj not in deps:
        return None
    found = sorted(deps[obj] & tracked)
    try:
        built = os.stat(obj).st_mtime
        if any(os.stat(p).st_mtime > built for p in found + [source]):
            return None  # edited since that build: its includes may have changed
    except OSError:
        return None
    return found
every = sorted(tracked)
for f in sys.argv[7:]:
    e = entries[f]
    h = hashlib.sha256(common.encode())
    command = e.get("command") or " ".join(e["arguments"])
    h.update(command.replace(build, "@BUILD@").replace(root, "@ROOT@").encode())
    h.update(open(f, "rb").read())
    headers = included(e, f)
    for p in every if headers is None else headers:
        h.update(os.path.relpath(p, root).encode() + b"\0" + digest(p).encode())
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
