#!/usr/bin/env bash
# Builds snnc and runs every test, twice: a normal build with warnings as
# errors, and a build with AddressSanitizer and UndefinedBehaviorSanitizer;
# then builds the fuzz targets with clang and runs each for a short while
# (docs/fuzzing.md; skipped, saying why, without clang and libFuzzer).
# Installs what is missing first (scripts/install-deps.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
jobs=$(nproc 2>/dev/null || echo 2)

echo "== build (warnings are errors) =="
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSNNC_WERROR=ON >/dev/null
cmake --build build -j "$jobs"
echo "== tests =="
(cd build && ctest --output-on-failure -j "$jobs")

echo "== build with AddressSanitizer and UndefinedBehaviorSanitizer =="
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DSNNC_WERROR=ON -DSNNC_SANITIZE=ON >/dev/null
cmake --build build-asan -j "$jobs"
echo "== tests under the sanitizers =="
(cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ctest --output-on-failure -j "$jobs")

# The fuzz targets: SNNC_FUZZ_SECONDS each (fuzz/CMakeLists.txt), side by side.
echo "== fuzz targets, a short run of each (docs/fuzzing.md) =="
probe=$(mktemp -d)
printf '%s\n' '#include <stddef.h>' '#include <stdint.h>' \
  'int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);' \
  'int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }' >"$probe/p.c"
if ! command -v clang >/dev/null 2>&1; then
  echo "skipped: the fuzz targets, because clang is not installed (libFuzzer comes with it)"
elif ! clang -fsanitize=fuzzer "$probe/p.c" -o "$probe/p" >/dev/null 2>&1; then
  echo "skipped: the fuzz targets, because clang cannot link -fsanitize=fuzzer (Debian: libclang-rt-dev)"
else
  CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSNNC_WERROR=ON -DSNNC_FUZZ=ON >/dev/null
  cmake --build build-fuzz -j "$jobs" --target fuzz
  (cd build-fuzz && ctest --output-on-failure -j "$jobs")
fi
rm -rf "$probe"
