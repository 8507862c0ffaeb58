#!/usr/bin/env bash
# CTest: generated trees (gen-trees.mjs) through `$CIDRUN add -r -n` in their flag variants, compared
# with the JS oracle; many-subdirectory HAMT decisions and mode/mtime checked against kubo's rules
# (see js-compare.mjs). Last line "N passed, M failed, K skipped"; non-zero exit on any failure.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$here/lib/common.sh"
require_cidrun
require_node_modules
command -v touch >/dev/null || { echo "FAIL: touch(1) is needed to set mtimes"; echo "0 passed, 1 failed"; exit 1; }
node "$here/js-compare.mjs" "$CIDRUN" "$@"
