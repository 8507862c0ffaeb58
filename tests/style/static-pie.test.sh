#!/usr/bin/env bash
# cidrun is a static PIE (CMakeLists.txt, CIDRUN_STATIC_DEPS): no dynamic linker work at start,
# which is about 1 ms of a container start (issue 4), and still a random load address. A new
# dependency linked as a shared library, or a lost -static-pie, would undo that without a sound.
set -euo pipefail
bin=${CIDRUN:?}
if grep -qx 'CIDRUN_STATIC_DEPS:BOOL=OFF' "${CIDRUN_BUILD_DIR:?}/CMakeCache.txt"; then
  echo "static-pie: not checked, this build has CIDRUN_STATIC_DEPS=OFF"
  exit 0
fi
fail() { echo "static-pie: $bin $*" >&2; exit 1; }
header=$(readelf -hW "$bin")
grep -Eq 'Type: +DYN' <<<"$header" || fail "is not position independent (ELF type is not DYN)"
segments=$(readelf -lW "$bin")
! grep -q 'INTERP' <<<"$segments" || fail "names a program interpreter (it is dynamically linked)"
dynamic=$(readelf -dW "$bin")
needed=$(grep 'NEEDED' <<<"$dynamic" || true)
[ -z "$needed" ] || fail "needs shared libraries: $(sed -E 's/.*\[(.*)\]/\1/' <<<"$needed" | tr '\n' ' ')"
grep -q 'RELR' <<<"$dynamic" || fail "has no packed relative relocations (DT_RELR)"
echo "static-pie: $bin is a static PIE with packed relocations"
