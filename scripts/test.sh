#!/usr/bin/env bash
# Sets everything up and runs the whole test suite, as CI does (.ci/run runs exactly this):
#   1. a release build (gcc) and every test;
#   2. a build with AddressSanitizer + UndefinedBehaviorSanitizer (clang) and every test again,
#      plus each fuzz target for a short, bounded run.
# Ends with CTest's summary line; exits non-zero on any failure, sanitizer report or fuzz crash.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
jobs=$(nproc)

echo "== release build and tests"
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$jobs" >/dev/null
(cd build && ctest --output-on-failure -j"$jobs")

echo "== sanitizer build (address, undefined) with fuzz targets, and tests again"
CC=clang cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DSANITIZE=address,undefined -DFUZZ=ON >/dev/null
cmake --build build-asan -j"$jobs" >/dev/null
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:strict_string_checks=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
(cd build-asan && ctest --output-on-failure -j"$jobs")
