#!/bin/sh
# run.sh BUILD TARGET SECONDS [libFuzzer options...]: runs the fuzz target
# TARGET of the build folder BUILD (configured with -DSNNC_FUZZ=ON) for
# SECONDS seconds (0: no time limit; give -runs=N), with its seeds, its
# checked-in corpus fuzz/corpus/TARGET and the corpus of earlier runs,
# BUILD/fuzz/runs/TARGET/corpus, where new inputs go. A crash, a leak or a
# timeout (an input taking over 10 s) stops the run with a nonzero status
# and leaves the input in BUILD/fuzz/runs/TARGET/ (docs/fuzzing.md).
set -eu
if [ $# -lt 3 ]; then
  echo "usage: $0 BUILD TARGET SECONDS [libFuzzer options...]" >&2
  exit 2
fi
build=$1 target=$2 seconds=$3
shift 3
here=$(cd "$(dirname "$0")" && pwd)
exe=$build/fuzz/fuzz_$target
if [ ! -x "$exe" ]; then
  echo "$exe: not built (cmake --build $build --target fuzz)" >&2
  exit 2
fi
# the largest input each target is given: well above its seeds, small
# enough that every execution stays fast
case $target in
  snn|onnx|npy|idx|safetensors|stload|events) max_len=4096 ;;
  nir) max_len=65536 ;; # HDF5 files start at a few KiB
  *) echo "unknown fuzz target '$target'" >&2; exit 2 ;;
esac
runs=$build/fuzz/runs/$target
mkdir -p "$runs/corpus"
dirs="$runs/corpus $build/fuzz/seeds/$target"
[ -d "$here/corpus/$target" ] && dirs="$dirs $here/corpus/$target"
limit=""
# the language's words, which its table-driven lexer does not show libFuzzer
dict=""
[ -f "$here/$target.dict" ] && dict="-dict=$here/$target.dict"
[ "$seconds" != 0 ] && limit="-max_total_time=$seconds"
# shellcheck disable=SC2086
exec "$exe" $limit $dict -timeout=10 -max_len=$max_len -print_final_stats=1 \
  -artifact_prefix="$runs/" "$@" $dirs
