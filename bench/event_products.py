#!/usr/bin/env python3
"""Event-driven against dense-block matrix products at spike rates p: the
crossover behind <NET>_EVENT_COST.

A benchmark program (run by hand, not a test; see bench/README.md). The
generated matrix product (`<net>_gemm`, compiler/backend/c/ckernels.c)
packs the rows of A (a layer's input) in blocks of MR rows and then, per
block, either
  - dense blocks: runs its MR x NR register tile over every step of k where
    any of the MR rows has a value that is not zero, a fraction
    1 - (1 - p)^MR of the steps for independent spikes at rate p; or
  - row events: adds, row by row, the packed rows of B at that row's own
    nonzero values only, a fraction p of the steps per row, 4 panels of B
    at a time (4 independent sums per column) but with no reuse of a load
    of B across rows.
It chooses per block by the count of each: row events when
events x EVENT_COST < kept steps x MR. Both add the same terms in the same
order, so the results are the same bits (tests/grad/test_layer_grads.py).

This program times one layer, y = x W^T over T x B rows (x: [T, B, K]
spikes at rate p, W: [N, K]), then LI (a cheap scan), in snnc's inference
code (`snnc compile --target TARGET`, built with bench/infer_harness.c and
--spikes p, the flags of bench/infer_throughput.py), in three builds:
dense blocks (-D<NET>_EVENT_COST=1e30), row events (=0) and the default
choice. It prints, per rate, the median milliseconds of each build, the
ratio events / dense, the cost of an event relative to a row-step of a
block implied by the two times (t_events / (p MR)) / (t_dense / ((1 -
(1 - p)^MR) MR)), and the default build's time against the faster of the
two; then the crossover rate (where row events stop being faster) and the
median implied cost, the value to compare with EVENT_COST in
compiler/backend/c/capi.c.

Usage: python3 bench/event_products.py [--k 1024] [--n 512] [--batch 128]
       [--rates 0.005,0.01,...] [--rounds 3] [--target TARGET]
"""
import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from infer_throughput import CC, SNNC_CFLAGS, TARGET, TARGET_FLAGS, loadavg, report_peak, thread_env  # noqa: E402
from benchutil import REPO, find_snnc  # noqa: E402

MR = {"avx512": 12, "avx2": 6, "c": 4}  # rows of a block (the tile's MR)
T = 8
MODES = {"dense": "1e30", "events": "0", "default": None}


def build(snnc, target, k, n, batch, folder, mode):
    folder.mkdir(parents=True, exist_ok=True)
    src = folder / "evprod.snn"
    src.write_text("network EvProd {\n  timesteps %d;\n  input x : [%d] encode sequence;\n"
                   "  y = x |> dense(%d, bias = false) as fc |> LI(tau = 2.0);\n  output y readout steps;\n}\n"
                   % (T, k, n))
    p = subprocess.run([snnc, "compile", str(src), "--batch", str(batch), "--target", target, "-o", str(folder)],
                       capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError("snnc compile failed: " + p.stderr.strip()[-800:])
    defs = ["-DSNN_NET=evprod", "-DSNN_NET_UPPER=EVPROD", '-DSNN_HEADER="evprod.h"']
    if MODES[mode] is not None:
        defs.append("-DEVPROD_EVENT_COST=" + MODES[mode])
    exe = folder / ("harness-" + mode)
    cmd = [CC] + SNNC_CFLAGS + TARGET_FLAGS[target] + defs + [
        "-I", str(folder), "-o", str(exe), str(REPO / "bench" / "infer_harness.c"), str(folder / "evprod.c"), "-lm"]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError("cc failed: " + p.stderr.strip()[-800:])
    return exe


def run(exe, batch, rate, a, env):
    cmd = [str(exe), str(batch), str(a.repeats), str(a.min_time), str(a.warmup), "--spikes", repr(rate)]
    p = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError("harness failed: " + p.stderr.strip()[-800:])
    return json.loads(p.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--snnc", help="the snnc binary (default: $SNNC, else build*/compiler/snnc, else PATH)")
    ap.add_argument("--target", default=TARGET, choices=sorted(TARGET_FLAGS))
    ap.add_argument("--k", type=int, default=1024, help="inputs of the layer (K)")
    ap.add_argument("--n", type=int, default=512, help="outputs of the layer (N)")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--rates", default="0.002,0.005,0.01,0.02,0.05,0.1,0.2,0.3,0.5")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--min-time", type=float, default=0.3)
    ap.add_argument("--warmup", type=float, default=0.1)
    ap.add_argument("--peak-seconds", type=float, default=0.5)
    a = ap.parse_args()
    snnc = find_snnc(a.snnc)
    rates = [float(r) for r in a.rates.split(",")]
    env = thread_env(1, "passive", str(REPO / ".peers"))
    mr = MR[a.target]
    print(f"event_products: y = x W^T, x [{T} x {a.batch}, {a.k}] spikes at rate p, W [{a.n}, {a.k}], "
          f"1 thread, --target {a.target} (blocks of {mr} rows)")
    info = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    model = next((ln.split(":", 1)[1].strip() for ln in info.splitlines() if ln.startswith("model name")), "?")
    print(f"cpu        {model}")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        _, fma1, _ = report_peak(tmp, a.peak_seconds, {})
        exes = {m: build(snnc, a.target, a.k, a.n, a.batch, tmp / "gen", m) for m in MODES}
        times = {(m, r): [] for m in MODES for r in rates}
        for rnd in range(a.rounds):
            print(f"round {rnd + 1}/{a.rounds}, load avg {loadavg()}", flush=True)
            for r in rates:
                for m in MODES:
                    times[(m, r)].append(run(exes[m], a.batch, r, a, env)["median"])
    flops = 2.0 * T * a.batch * a.k * a.n
    print(f"\n{'p':>6} {'kept':>6} {'dense ms':>9} {'events ms':>10} {'ev/dense':>8} {'cost':>6} "
          f"{'default ms':>10} {'vs best':>7}  dense GFLOP/s (as a dense product)")
    costs, crossover, prev = [], None, None
    for r in rates:
        d, e, f = (statistics.median(times[(m, r)]) * 1e3 for m in ("dense", "events", "default"))
        kept = 1 - (1 - r) ** mr
        cost = (e / (r * mr)) / (d / (kept * mr))
        costs.append(cost)
        rate = flops / (d * 1e-3) / 1e9
        print(f"{r:6.3f} {kept:6.3f} {d:9.3f} {e:10.3f} {e / d:8.2f} {cost:6.2f} {f:10.3f} {f / min(d, e):7.2f}  "
              f"{rate:.1f}" + (f" ({rate / fma1:.0%} of the 1-thread FMA peak)" if fma1 else ""))
        if prev is not None and prev[1] < 1.0 <= e / d and crossover is None:
            (r0, q0), (r1, q1) = prev, (r, e / d)
            crossover = r0 + (1.0 - q0) * (r1 - r0) / (q1 - q0)
        prev = (r, e / d)
    print(f"\nrow events are faster below p = {crossover:.3f}" if crossover is not None else
          "\nno crossover inside the rates measured")
    print(f"the cost of an event implied by the times: median {statistics.median(costs):.2f} "
          f"(min {min(costs):.2f}, max {max(costs):.2f}) steps of a block row; compiler/backend/c/capi.c "
          f"EVENT_COST is the default's")


if __name__ == "__main__":
    main()
