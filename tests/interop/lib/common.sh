# Sourced by tests/interop/*.test.sh.
interop_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# $CIDRUN must name the built binary (CTest sets it); a missing binary is a failure, not a skip.
require_cidrun() {
  if [ -z "${CIDRUN:-}" ]; then
    echo "FAIL: \$CIDRUN is not set (CTest sets it to the built cidrun binary)" >&2
    echo "0 passed, 1 failed"
    exit 1
  fi
  if [ ! -x "$CIDRUN" ]; then
    echo "FAIL: \$CIDRUN=$CIDRUN is not an executable file" >&2
    echo "0 passed, 1 failed"
    exit 1
  fi
}

# The JS packages come from `npm ci` in tests/interop (scripts/bootstrap.sh test does it).
require_node_modules() {
  if ! command -v node >/dev/null; then
    echo "FAIL: node is not installed (the interop tests need Node.js >= 20)" >&2
    echo "0 passed, 1 failed"
    exit 1
  fi
  if [ ! -d "$interop_dir/node_modules/ipfs-unixfs-importer" ]; then
    echo "FAIL: $interop_dir/node_modules is missing: run (cd tests/interop && npm ci)" >&2
    echo "0 passed, 1 failed"
    exit 1
  fi
}
