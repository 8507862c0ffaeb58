#!/usr/bin/env bash
# CTest: the machine's /usr/share (tens of thousands of entries) through `$CIDRUN add -r -n -Q`, same
# root CID as the JS oracle in default, --cid-version 1 and --profile unixfs-v1-2025 (usr-share.mjs
# says how sockets, unreadable files and JS/kubo HAMT differences are handled).
# Last line "N passed, M failed"; non-zero exit on any failure. USR_SHARE=DIR overrides the tree.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$here/lib/common.sh"
require_cidrun
require_node_modules
node "$here/usr-share.mjs" "$CIDRUN" --dir "${USR_SHARE:-/usr/share}" "$@"
