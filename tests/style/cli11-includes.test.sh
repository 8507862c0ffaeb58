#!/usr/bin/env bash
# CLI11 is included by src/cli/main.cpp alone (src/cli/command.h says why): its headers cost each
# file that includes them ~48 CPU-s of clang-tidy, and style.clang-tidy.cli runs every cli file.
set -euo pipefail
cd "${CIDRUN_SOURCE_DIR:?}"
others=$(git grep -l '#include <CLI/' -- 'src/*.cpp' 'src/*.h' 'tests/*.cpp' 'tests/*.h' | grep -vx 'src/cli/main.cpp' || true)
if [ -n "$others" ]; then
  echo "CLI11 included outside src/cli/main.cpp (use cli::Command from cli/command.h):"
  echo "$others"
  exit 1
fi
echo "cli11-includes: only src/cli/main.cpp includes CLI11"
