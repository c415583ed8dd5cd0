#!/usr/bin/env bash
# Golden-file test runner: run.sh SNNC KIND MODEL.snn
#   KIND ir:  the IR after sema and after all passes (MODEL.ir)
#   KIND c:   the generated C (MODEL.h.golden, MODEL.c.golden)
# With SNNC_UPDATE_GOLDEN=1 the expected files are rewritten instead.
set -u
snnc=$1 kind=$2 model=$3
cd "$(dirname "$model")" || exit 1
name=$(basename "$model" .snn)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

compare() { # got expected
  if [ "${SNNC_UPDATE_GOLDEN:-}" = 1 ]; then
    cp "$1" "$2" && echo "updated $2"
    return 0
  fi
  if [ ! -f "$2" ]; then
    echo "missing golden file $2 (run with SNNC_UPDATE_GOLDEN=1 to create it)"
    return 1
  fi
  diff -u "$2" "$1" || { echo "FAIL: output differs from $2"; return 1; }
}

case $kind in
ir)
  "$snnc" compile "$name.snn" --dump-ir=after:sema --emit-ir >"$tmp/out.ir" 2>"$tmp/err" ||
    { cat "$tmp/err"; exit 1; }
  compare "$tmp/out.ir" "$name.ir"
  ;;
c)
  "$snnc" compile "$name.snn" -o "$tmp" 2>"$tmp/err" || { cat "$tmp/err"; exit 1; }
  prefix=$(tr 'A-Z' 'a-z' <<<"$(sed -n 's/^network \([A-Za-z0-9_]*\).*/\1/p' "$name.snn" | head -1)")
  rc=0
  compare "$tmp/$prefix.h" "$name.h.golden" || rc=1
  compare "$tmp/$prefix.c" "$name.c.golden" || rc=1
  exit $rc
  ;;
*)
  echo "unknown kind $kind"
  exit 2
  ;;
esac
