#!/usr/bin/env bash
# The layers listed here are clang-tidy clean (the repository's .clang-tidy; tests/.clang-tidy for
# test code). A layer joins the list once it has been cleaned; `make tidy TIDY_PATHS=src/<layer>`
# shows what is left in one that has not.
set -euo pipefail
cd "${CIDRUN_SOURCE_DIR:?}"
layers=(util multiformats ipld store unixfs net exchange gateway image)
paths=()
for l in "${layers[@]}"; do
  paths+=("src/$l")
  if [ -d "tests/$l" ]; then paths+=("tests/$l"); fi
done
exec scripts/clang-tidy.sh -p "${CIDRUN_BUILD_DIR:?}" -j "${CIDRUN_TIDY_JOBS:-2}" "${paths[@]}"
