#!/usr/bin/env bash
# Installs the peer frameworks the reference tests compare against, from
# PyPI, into .peers/ at the top of the tree (the tests put it on
# PYTHONPATH): SpikingJelly 0.0.0.0.14 and snnTorch 0.9.4, the last
# versions that run on Debian 12's PyTorch 1.13. Both are pure Python and
# are installed without their dependencies, which come from Debian
# (python3-torch, python3-numpy). If PyPI cannot be reached, the tests that
# need a peer say so and are skipped.
set -uo pipefail
cd "$(dirname "$0")/.."
dest=.peers
py=/usr/bin/python3
[ -x "$py" ] || py=python3
want=("spikingjelly==0.0.0.0.14" "snntorch==0.9.4")
if PYTHONPATH=$dest "$py" -c "import spikingjelly.activation_based, snntorch" 2>/dev/null; then
  exit 0
fi
echo "installing test peers into $dest: ${want[*]}"
if ! "$py" -m pip install -q --disable-pip-version-check --no-deps --upgrade \
     --target "$dest" "${want[@]}" 2>&1 | grep -v "Running pip as the 'root' user"; then
  :
fi
if ! PYTHONPATH=$dest "$py" -c "import spikingjelly.activation_based, snntorch" 2>/dev/null; then
  echo "warning: the peer frameworks could not be installed; the tests against them will be skipped"
fi
exit 0
