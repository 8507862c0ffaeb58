#!/usr/bin/env bash
# CTest: the JS oracle (js-oracle.mjs / lib/oracle.mjs) against the kubo vectors it should agree
# with (all but the mode/mtime ones and buzhash, which are SKIPped with the reason). This checks
# the oracle itself, so that js-compare and usr-share compare cidrun with something that is right.
# Does not need $CIDRUN. Last line "N passed, M failed, K skipped"; non-zero exit on any failure.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$here/lib/common.sh"
require_node_modules
node "$here/js-oracle-vs-kubo.mjs" "$@"
