#!/usr/bin/env bash
# Diagnostics corpus runner: run.sh SNNC [NAME...]
#
# Each case NAME is a malformed model: NAME.snn, or NAME.gen.sh, a script
# that prints one (for models too large or too odd to commit: NUL bytes,
# 100000 nested brackets). `snnc compile NAME.snn -o out` runs in a fresh
# folder holding only the model, so that messages name it as NAME.snn, and
# must exit with 1, print exactly NAME.expected on stderr, nothing on
# stdout, and leave the output folder empty. With no NAME every case runs.
# With SNNC_UPDATE_GOLDEN=1 the .expected files are rewritten instead.
set -u
if [ $# -lt 1 ]; then
  echo "usage: run.sh SNNC [NAME...]"
  exit 2
fi
snnc=$1
shift
case $snnc in
/*) ;;
*/*) snnc=$PWD/$snnc ;;
esac
here=$(cd "$(dirname "$0")" && pwd)
if [ $# -eq 0 ]; then
  set -- $(cd "$here" && ls *.snn *.gen.sh 2>/dev/null | sed 's/\.gen\.sh$//; s/\.snn$//' | sort -u)
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# run_case NAME: 0 when the case passes (or its file was updated)
run_case() {
  local name=$1 work=$tmp/$1
  mkdir -p "$work/out"
  if [ -f "$here/$name.snn" ]; then
    cp "$here/$name.snn" "$work/"
  elif [ -f "$here/$name.gen.sh" ]; then
    bash "$here/$name.gen.sh" >"$work/$name.snn" || { echo "FAIL $name: $name.gen.sh failed"; return 1; }
  else
    echo "FAIL $name: no $name.snn or $name.gen.sh"
    return 1
  fi
  (cd "$work" && "$snnc" compile "$name.snn" -o out) >"$work/stdout" 2>"$work/stderr"
  local rc=$? ok=0
  if [ "${SNNC_UPDATE_GOLDEN:-}" = 1 ]; then
    cp "$work/stderr" "$here/$name.expected" && echo "updated $name.expected"
  elif [ ! -f "$here/$name.expected" ]; then
    echo "FAIL $name: no $name.expected (run with SNNC_UPDATE_GOLDEN=1 to create it)"
    ok=1
  elif ! diff -u "$here/$name.expected" "$work/stderr"; then
    echo "FAIL $name: stderr differs from $name.expected"
    ok=1
  fi
  if [ $rc -ne 1 ]; then
    echo "FAIL $name: exit status $rc, expected 1"
    ok=1
  fi
  if [ -s "$work/stdout" ]; then
    echo "FAIL $name: wrote to stdout:"
    head -c 2000 "$work/stdout"
    ok=1
  fi
  if [ -n "$(ls -A "$work/out")" ]; then
    echo "FAIL $name: left files in the output folder:" $(ls -A "$work/out")
    ok=1
  fi
  rm -rf "$work"
  return $ok
}

failed=0
for name in "$@"; do
  run_case "$name" || failed=$((failed + 1))
done
if [ $# -gt 1 ]; then
  echo "$(($# - failed)) of $# cases passed"
fi
[ $failed -eq 0 ]
