#!/usr/bin/env bash
# Installs the peer frameworks the reference tests compare against, from
# PyPI, into .peers/ at the top of the tree (the tests put it on
# PYTHONPATH): SpikingJelly 0.0.0.0.14 and snnTorch 0.9.4, the last
# versions that run on Debian 12's PyTorch 1.13, nir 1.0.4 and nirtorch 1.0
# (the versions snnTorch 0.9.4 exports and imports NIR with; newer nir
# breaks nirtorch 1.0's loader), nir 1.0.8 apart in .peers/nir108 (the
# NIR tests write gzip-compressed graphs with it, in a process of their
# own, and read snnc's exports with it), and onnxruntime 1.16.3
# (the ONNX tests run plain ANNs in it), whose wheel works with Debian 12's
# Python 3.11 and NumPy 1.24. All are installed without their
# dependencies: the ones they import come from Debian (python3-torch,
# python3-numpy, python3-onnx, python3-h5py), and onnxruntime's others (coloredlogs,
# flatbuffers, packaging, sympy) are not needed for running a model. If
# PyPI cannot be reached, the tests that need a peer say so and are
# skipped.
set -uo pipefail
cd "$(dirname "$0")/.."
dest=.peers
py=/usr/bin/python3
[ -x "$py" ] || py=python3
# package==version and the import that shows it is there
peers=("spikingjelly==0.0.0.0.14:spikingjelly.activation_based" "snntorch==0.9.4:snntorch"
       "onnxruntime==1.16.3:onnxruntime" "nir==1.0.4:nir" "nirtorch==1.0:nirtorch")
want=()
for p in "${peers[@]}"; do
  if ! PYTHONPATH=$dest "$py" -c "import ${p#*:}" 2>/dev/null; then
    want+=("${p%%:*}")
  fi
done
# nir 1.0.8 in a folder of its own, beside nir 1.0.4 (which nirtorch 1.0 needs)
install_apart() {
  local apart=$dest/nir108 check='import nir, sys; sys.exit(nir.version != "1.0.8")'
  PYTHONPATH=$apart "$py" -c "$check" 2>/dev/null && return
  echo "installing test peers into $apart: nir==1.0.8"
  "$py" -m pip install -q --disable-pip-version-check --no-deps --upgrade --target "$apart" nir==1.0.8 2>&1 |
    grep -v "Running pip as the 'root' user"
  PYTHONPATH=$apart "$py" -c "$check" 2>/dev/null ||
    echo "warning: nir 1.0.8 could not be installed; the tests that need it will be skipped"
}
if [ ${#want[@]} -eq 0 ]; then
  install_apart
  exit 0
fi
echo "installing test peers into $dest: ${want[*]}"
if ! "$py" -m pip install -q --disable-pip-version-check --no-deps --upgrade \
     --target "$dest" "${want[@]}" 2>&1 | grep -v "Running pip as the 'root' user"; then
  :
fi
for p in "${peers[@]}"; do
  if ! PYTHONPATH=$dest "$py" -c "import ${p#*:}" 2>/dev/null; then
    echo "warning: ${p%%:*} could not be installed; the tests that need it will be skipped"
  fi
done
install_apart
exit 0
