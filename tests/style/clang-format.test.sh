#!/usr/bin/env bash
# Every C++ file is formatted with the repository's .clang-format.
set -euo pipefail
cd "${CIDRUN_SOURCE_DIR:?}"
bad=0
total=0
while IFS= read -r f; do
  total=$((total + 1))
  if ! clang-format --dry-run --Werror "$f" >/dev/null 2>&1; then
    echo "not formatted: $f (run: clang-format -i $f)"
    bad=$((bad + 1))
  fi
done < <(git ls-files '*.cpp' '*.h')
echo "clang-format: $((total - bad)) passed, $bad failed"
[ "$bad" -eq 0 ]
