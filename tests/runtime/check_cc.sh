#!/bin/sh
# check_cc.sh CC SOURCE INCLUDE_DIR WORK_DIR: compiles test_stload.c, which
# includes runtime/snnrt_stload.inc, exactly as snnc compiles generated code
# (-std=c99 -O2 -Wall -Wextra -Wpedantic -Werror) with the compiler CC, then
# runs it. Exits 77 (skipped) when CC is not installed.
cc=$1 src=$2 inc=$3 work=$4
if ! command -v "$cc" >/dev/null 2>&1; then
    echo "skipped: $cc is not installed"
    exit 77
fi
mkdir -p "$work" || exit 1
exe="$work/test_stload_$(basename "$cc")"
"$cc" -std=c99 -O2 -Wall -Wextra -Wpedantic -Werror -I "$inc" \
    -o "$exe" "$src" -lm || exit 1
exec "$exe" "$work"
