#!/usr/bin/env bash
# The long fuzzing tier (not run by CI): every libFuzzer target for hours, keeping what it finds.
#
# Usage: scripts/fuzz-long.sh [-t SECONDS] [-j JOBS] [-w WORKDIR] [-b BUILD_DIR] [TARGET...]
#   -t  seconds per target (default 3600)          -j  targets run at once (default 1)
#   -w  work directory (default build/fuzz-work)   -b  build directory (default build/ci)
#   TARGET  names as in tests/fuzz/targets.cmake (default: every target)
#
# Each target runs on WORKDIR/<target>/corpus (created, kept across runs: new inputs go there)
# plus the committed corpus and regressions, which are only read. A crash, leak, timeout or
# out-of-memory input lands in WORKDIR/<target>/artifacts/ and is listed at the end; the script
# then exits non-zero. tests/fuzz/README.md says how to turn one into a regression test.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
seconds=3600
jobs=1
work=$root/build/fuzz-work
build=$root/build/ci
while getopts "t:j:w:b:h" opt; do
  case $opt in
    t) seconds=$OPTARG ;;
    j) jobs=$OPTARG ;;
    w) work=$OPTARG ;;
    b) build=$OPTARG ;;
    *) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; [ "$opt" = h ] && exit 0 || exit 2 ;;
  esac
done
shift $((OPTIND - 1))

if [ ! -f "$build/CMakeCache.txt" ]; then
  echo "fuzz-long: $build is not configured: run cmake --preset ci first" >&2
  exit 1
fi
if ! cmake --build "$build" --target fabric_libfuzzer -j 2 >/dev/null; then
  echo "fuzz-long: the libFuzzer sub-build failed or is disabled: it needs clang and" \
       "libclang-rt-14-dev (scripts/install-deps.sh) and FABRIC_LIBFUZZER not OFF" >&2
  exit 1
fi
fuzzers=$build/fuzz-libfuzzer
if [ $# -eq 0 ]; then
  set -- $(cd "$fuzzers" && ls fabric-fuzz-* | sed 's/^fabric-fuzz-//')
fi

run_one() {
  local t=$1 dict=()
  [ -f "$root/tests/fuzz/dict/$t.dict" ] && dict=(-dict="$root/tests/fuzz/dict/$t.dict")
  mkdir -p "$work/$t/corpus" "$work/$t/artifacts"
  echo "fuzz-long: $t for ${seconds}s (log: $work/$t/log)"
  if "$fuzzers/fabric-fuzz-$t" -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 \
       -artifact_prefix="$work/$t/artifacts/" -print_final_stats=1 "${dict[@]}" \
       "$work/$t/corpus" "$root/tests/fuzz/corpus/$t" "$root/tests/fuzz/regressions/$t" \
       >"$work/$t/log" 2>&1; then
    echo "fuzz-long: $t clean: $(ls "$work/$t/corpus" | wc -l) inputs in its work corpus"
  else
    echo "fuzz-long: $t FAILED: see $work/$t/log and $work/$t/artifacts/"
    return 1
  fi
}
export -f run_one
export root work seconds fuzzers

status=0
printf '%s\n' "$@" | xargs -P "$jobs" -I{} bash -c 'run_one {}' || status=1
exit $status
