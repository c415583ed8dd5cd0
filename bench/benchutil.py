"""What the benchmark programs share: where the repository and snnc are,
and timing one run of a command."""
import os
import resource
import shutil
import subprocess
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def find_snnc(given=None):
    """snnc: the given path, else $SNNC, else the first build*/compiler/snnc
    of the repository, else snnc on the PATH."""
    if given:
        return given
    if os.environ.get("SNNC"):
        return os.environ["SNNC"]
    for d in sorted(REPO.glob("build*")):
        p = d / "compiler" / "snnc"
        if p.is_file() and os.access(p, os.X_OK):
            return str(p)
    p = shutil.which("snnc")
    if p:
        return p
    raise SystemExit("no snnc: build it (see bench/README.md) or give --snnc PATH")


def choices(option, given, allowed):
    """The comma-separated list of an option, each item one of allowed;
    anything else ends the benchmark with a message that names them."""
    items = [x for x in given.split(",") if x]
    for x in items:
        if x not in allowed:
            raise SystemExit(f"{option}: unknown {x!r}; expected {', '.join(allowed)}")
    return items


def children_cpu():
    """CPU seconds (user and system) of the finished child processes."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def timed(cmd, timeout=None):
    """(wall, CPU) seconds of one run of cmd, or None past the timeout; a
    failing run ends the benchmark with its message."""
    t0, c0 = time.perf_counter(), children_cpu()
    try:
        p = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None
    t, c = time.perf_counter() - t0, children_cpu() - c0
    if p.returncode != 0:
        raise SystemExit("%s failed (exit %d):\n%s" % (" ".join(cmd), p.returncode, p.stderr[-2000:]))
    return t, c
