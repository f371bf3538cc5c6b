#!/usr/bin/env bash
# Regenerates the fuzz targets' seed corpora (tests/fuzz/corpus/<target>/) from fabric's builders.
# Usage: scripts/fuzz-corpus.sh [BUILD_DIR]   (default build/ci, configured with cmake --preset ci)
# Inputs the fuzzer found are not kept here: a crash becomes a regression (tests/fuzz/README.md).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build/ci}
if [ "${1:-}" = "--help" ] || [ "${1:-}" = "-h" ]; then
  sed -n '2,4p' "$0" | sed 's/^# //'
  exit 0
fi
if [ ! -f "$build/CMakeCache.txt" ]; then
  echo "fuzz-corpus: $build is not configured: run cmake --preset ci first" >&2
  exit 1
fi
cmake --build "$build" --target fabric-fuzz-make-corpus -j 2
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
"$build/tests/fuzz/fabric-fuzz-make-corpus" "$out"
for dir in "$out"/*/; do
  target=$(basename "$dir")
  rm -rf "$root/tests/fuzz/corpus/$target"
  mkdir -p "$root/tests/fuzz/corpus"
  cp -r "$dir" "$root/tests/fuzz/corpus/$target"
done
echo "fuzz-corpus: corpora written under tests/fuzz/corpus/"
