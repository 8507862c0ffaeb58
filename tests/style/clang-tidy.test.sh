#!/usr/bin/env bash
# The layers listed here are clang-tidy clean (the repository's .clang-tidy; tests/.clang-tidy for
# test code). A layer joins the list once it has been cleaned; `make tidy TIDY_PATHS=src/<layer>`
# shows what is left in one that has not.
# CTest runs one test per layer (style.clang-tidy.<layer>), so that the layers run beside the other
# tests instead of one long test at the end; tests/CMakeLists.txt reads the `layers=` line below,
# which must stay on one line. Without arguments the script checks every listed layer.
#   tests/style/clang-tidy.test.sh [LAYER...]
set -euo pipefail
cd "${CIDRUN_SOURCE_DIR:?}"
layers=(util multiformats ipld p2p store unixfs net exchange gateway image fuse runtime cli integration)
if [ $# -gt 0 ]; then layers=("$@"); fi
paths=()
for l in "${layers[@]}"; do
  found=0
  for d in "src/$l" "tests/$l"; do
    if [ -d "$d" ]; then
      paths+=("$d")
      found=1
    fi
  done
  [ "$found" -eq 1 ] || { echo "clang-tidy.test.sh: no src/$l or tests/$l" >&2; exit 2; }
done
exec scripts/clang-tidy.sh -p "${CIDRUN_BUILD_DIR:?}" -j "${CIDRUN_TIDY_JOBS:-2}" "${paths[@]}"
