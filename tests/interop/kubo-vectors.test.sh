#!/usr/bin/env bash
# CTest: every kubo vector (tests/interop/kubo-vectors.json) through `$CIDRUN add -r --hidden -n`.
# Prints PASS/FAIL/SKIP per vector and "N passed, M failed, K skipped"; non-zero exit on any failure.
# Vectors that need a Go toolchain (Go math/rand inputs) are skipped when `go` is absent.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$here/lib/common.sh"
require_cidrun
require_node_modules
node "$here/kubo-vectors.mjs" "$CIDRUN" "$@"
