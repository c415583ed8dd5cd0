#!/usr/bin/env python3
"""The products of narrow layers at input rates p: the crossovers behind
<NET>_NARROW_EVENT_COST and <NET>_NARROW_DENSE_COST.

A benchmark program (run by hand, not a test; see bench/README.md). A dense
layer of at most 16 outputs (a 10-class readout) has products of its own in
the generated code (compiler/backend/c/ckernels.c, docs/targets.md, "Narrow
layers"); two of them choose at run time between a dense loop and events:

1. The inference forward on floats, `<net>_gemm_n`: per block of 8 rows,
   either a dense block (8 x 16 sums over every k: K steps a row), or, where
   the block's first row has fewer than K / NARROW_EVENT_COST values that
   are not zero, row by row at its nonzero values only (p K values a row).
   Network: `input x : [K] encode sequence; y = x |> dense(O, bias = false)
   as fc |> LI(tau = 2.0); output y readout steps;`, the input 1 at rate p
   and 0 elsewhere. Timed: the layer's own function `<net>_fwd<N>(ws, B, 0,
   T, 0)` (the product over all T x B rows, y zeroed first; not the copy of
   the input nor the LI). The implied cost of a value, in steps of the dense
   block: (t_events / (p K)) / (t_dense / K); events pay below p = 1 / cost.

2. The training weight gradient of a layer whose input is spikes kept as
   bits (x86 targets only), `<net>_train_bwd<N>`: `<net>_gemm_nw_d<O>`, a
   dense loop adding each row's gy under the mask of its spikes (8 columns
   a vector, O + 3.2 units of work per 8 columns of a row whatever the
   rate), or `<net>_gemm_nw_s`, which adds gy's row at each spike (dw
   zeroed first), and pays 0.9 spikes' worth per 8 columns of a row for
   the loops over the words. `<net>_nw_dense` takes the dense loop where
   events + 0.9 rows (K / 8) > rows (K / 8) (O + 3.2) NARROW_DENSE_COST,
   the events estimated from every 8th row. Network: `input x : [K] encode sequence; h = x |>
   LIF(tau = 2.0); y = h |> dense(O) as fc |> LI(tau = 2.0); output y
   readout steps;`, the input 2.0 at rate p and 0 elsewhere, which the LIF
   from v = 0 (reset to 0) turns into spikes at rate p exactly; h is kept
   as bits (checked in `snnc compile --train --emit-ir`). Timed: the layer's
   backward `<net>_train_bwd<N>(ws, B, 0, T, 0)` after one training forward
   and backward (the bias gradient, the choice and the weight gradient; no
   input gradient), dL/doutput a fixed pattern. The implied cost of 8
   columns of a row and an output of the dense loop, in spikes of the
   events: (t_dense / (rows (K / 8) (O + 3.2))) / (t_events / (spikes +
   0.9 rows (K / 8))); the dense loop pays above p = (cost (O + 3.2) -
   0.9) / 8.

Each network is compiled once (`snnc compile --batch B --target TARGET`,
with --train for 2) and its C built three times with bench/narrow_harness.c,
which includes the generated .c to call the layer's static function, with
the flags of bench/infer_throughput.py (SNNC_CFLAGS and the target's):
`dense` (-D<NET>_NARROW_EVENT_COST=1e30, or -D<NET>_NARROW_DENSE_COST=0),
`events` (=0, or =1e30) and `default` (no -D). One thread
(OMP_NUM_THREADS=1). Every build runs once per round in a fresh process
over all rates (warm-up, then at least --repeats calls and --min-time
seconds per rate; the median call), the builds of a network one after
the other, and the rounds repeat; reported are the medians over rounds.

Printed per rate: the rate measured (values that are not zero, or spikes,
over the input's values), the median ms of each build, events / dense, the
implied cost, the default's time over the faster of the two; per network
the crossover (linear between the rates measured around events / dense =
1) and the cost at which the default would switch there (1 / p for 1,
(8 p + 0.9) / (O + 3.2) for 2), to compare with the generated code's default,
printed with it. The harness hashes the result's bits at every rate (1: the
forward's output; 2: every parameter's gradient after the timed calls),
and the program prints whether the three builds agree. A line per network
splits the events' time into a fixed part (packing w or dw, zeroing,
copying dw back, counting) and a part per value or spike, by least squares
over the rates, and gives the dense time per unit of the model.

Usage: python3 bench/narrow_products.py [--k 512] [--batch 128] [--infer-outputs 10]
       [--outputs 2,5,10,16] [--infer-rates ...] [--train-rates ...] [--rounds 3]
       [--parts infer,train] [--target TARGET]
"""
import argparse
import json
import re
import statistics
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from infer_throughput import CC, SNNC_CFLAGS, TARGET, TARGET_FLAGS, loadavg, report_peak, thread_env  # noqa: E402
from benchutil import REPO, find_snnc  # noqa: E402

T = 8
# the terms of <net>_nw_dense's rule (compiler/backend/c/ckernels.c): a row's 8
# columns cost O + DENSE_BASE outputs' worth in the dense loop, and
# WORD_EVENTS spikes' worth plus their spikes in the events
DENSE_BASE, WORD_EVENTS = 3.2, 0.9
BUILDS = ("dense", "events", "default")
# -D<NET>_<MACRO>=value of each build, per part
MACROS = {"infer": ("NARROW_EVENT_COST", {"dense": "1e30", "events": "0", "default": None}),
          "train": ("NARROW_DENSE_COST", {"dense": "0", "events": "1e30", "default": None})}


def compile_net(snnc, part, k, o, batch, target, folder):
    """Writes and compiles the network of `part` with O = o outputs. Returns
    (prefix, the layer's function, the input's offset in the workspace or
    None, the generated code's default of the part's macro)."""
    folder.mkdir(parents=True, exist_ok=True)
    if part == "infer":
        body = "  y = x |> dense(%d, bias = false) as fc |> LI(tau = 2.0);\n" % o
        name, extra = "NarrowFwd", []
    else:
        body = "  h = x |> LIF(tau = 2.0);\n  y = h |> dense(%d) as fc |> LI(tau = 2.0);\n" % o
        name, extra = "NarrowBwd", ["--train"]
    src = folder / "net.snn"
    src.write_text("network %s {\n  timesteps %d;\n  input x : [%d] encode sequence;\n%s"
                   "  output y readout steps;\n}\n" % (name, T, k, body))
    base = [snnc, "compile", str(src), "--batch", str(batch), "--target", target] + extra
    p = subprocess.run(base + ["-o", str(folder)], capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError("snnc compile failed: " + p.stderr.strip()[-800:])
    prefix = name.lower()
    code = (folder / (prefix + ".c")).read_text()
    macro = MACROS[part][0]
    m = re.search(r"#define %s_%s (\S+)" % (prefix.upper(), macro), code)
    if not m:
        raise RuntimeError(f"no {prefix.upper()}_{macro} in the generated code")
    default = m.group(1)
    if part == "infer":
        m = re.search(r"/\* fc = dense [^\n]*\*/\nstatic void (%s_fwd\d+)\(" % prefix, code)
        at = re.search(r"void %s_forward\(.*?memcpy\(ws \+ (\d+), input," % prefix, code, re.S)
        if not m or not at or ("%s_gemm_n(" % prefix) not in code[m.end():]:
            raise RuntimeError("the generated code has no narrow forward where expected")
        return prefix, m.group(1), int(at.group(1)), default
    m = re.search(r"/\* fc = dense [^\n]*\*/\nstatic void (%s_train_bwd\d+)\(" % prefix, code)
    if not m:
        raise RuntimeError("no backward of the layer fc in the generated code")
    body = code[m.end():code.find("\n}\n", m.end())]
    if "%s_nw_dense(" % prefix not in body or "%s_gemm_nw_d%d(" % (prefix, o) not in body:
        raise RuntimeError(f"the backward of fc has no choice {prefix}_nw_dense / _gemm_nw_d{o}")
    # h kept as bits in the training memory plan
    p = subprocess.run(base + ["--emit-ir"], capture_output=True, text=True)
    ir = p.stdout + p.stderr
    hid = re.search(r"^\s*%(\d+) h = neuron", ir, re.M)
    plan = ir[ir.find("memory training"):]
    if not hid or not re.search(r"^\s*%%%s val=\S+ bits" % hid.group(1), plan, re.M):
        raise RuntimeError("the spikes of h are not kept as bits in the training memory plan")
    return prefix, m.group(1), None, default


def build(part, prefix, layer, at, target, folder, mode):
    macro, values = MACROS[part]
    defs = ["-DSNN_NET=" + prefix, "-DSNN_NET_UPPER=" + prefix.upper(), '-DSNN_SOURCE="%s.c"' % prefix,
            "-DHARNESS_LAYER=" + layer]
    defs += ["-DHARNESS_TRAIN"] if part == "train" else ["-DHARNESS_INPUT_AT=%d" % at]
    if values[mode] is not None:
        defs.append("-D%s_%s=%s" % (prefix.upper(), macro, values[mode]))
    exe = folder / ("harness-" + mode)
    cmd = [CC] + SNNC_CFLAGS + TARGET_FLAGS[target] + defs + [
        "-I", str(folder), "-I", str(REPO / "bench"), "-o", str(exe), str(REPO / "bench" / "narrow_harness.c"), "-lm"]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError("cc failed: " + p.stderr.strip()[-800:])
    return exe


def run(exe, batch, rates, a, env):
    cmd = [str(exe), str(batch), str(a.repeats), str(a.min_time), str(a.warmup)] + [repr(r) for r in rates]
    p = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError("harness failed: " + p.stderr.strip()[-800:])
    return [json.loads(ln) for ln in p.stdout.strip().splitlines()]


def crossover(rates, ratios):
    """The rate where events / dense crosses 1 upwards, linear between the
    rates measured around it, or None."""
    for (r0, q0), (r1, q1) in zip(zip(rates, ratios), zip(rates[1:], ratios[1:])):
        if q0 < 1.0 <= q1:
            return r0 + (1.0 - q0) * (r1 - r0) / (q1 - q0)
    return None


def report(part, o, k, batch, rates, res, fma1):
    """Prints the table of one network; returns (crossover, the cost there)."""
    rows = T * batch
    print(f"\n{'p':>6} {'rate':>6} {'dense ms':>9} {'events ms':>10} {'ev/dense':>8} {'cost':>6} "
          f"{'default ms':>10} {'vs best':>7}  dense GFLOP/s (2 rows K O FLOPs)")
    ratios, meas = [], []
    for r in rates:
        d, e, f = (statistics.median(x["median"] for x in res[(m, r)]) * 1e3 for m in BUILDS)
        q = res[("events", r)][0]["events"] / res[("events", r)][0]["values"]
        if part == "infer":
            cost = (e / (q * k)) / (d / k) if q > 0 else float("nan")
        else:
            cost = (d / (rows * (k / 8) * (o + DENSE_BASE))) / (e / (q * rows * k + WORD_EVENTS * rows * (k / 8)))
        rate = 2.0 * rows * k * o / (d * 1e-3) / 1e9
        print(f"{r:6.3f} {q:6.3f} {d:9.4f} {e:10.4f} {e / d:8.2f} {cost:6.3f} {f:10.4f} {f / min(d, e):7.2f}  "
              f"{rate:.1f}" + (f" ({rate / fma1:.0%} of the 1-thread FMA peak)" if fma1 else ""))
        ratios.append(e / d)
        meas.append(q)
    # the events' time as a fixed part and a part per value (spike), least
    # squares over the rates; the dense time per unit of the model
    ev = [statistics.median(x["median"] for x in res[("events", r)]) for r in rates]
    n = [q * rows * k for q in meas]
    mn, me = statistics.fmean(n), statistics.fmean(ev)
    sxx = sum((v - mn) ** 2 for v in n)
    slope = sum((v - mn) * (t - me) for v, t in zip(n, ev)) / sxx if sxx > 0 else float("nan")
    dt = statistics.median(statistics.median(x["median"] for x in res[("dense", r)]) for r in rates)
    what = "value" if part == "infer" else "spike"
    unit = ("a step of a row (rows K)" if part == "infer" else
            "8 columns of a row and an output (rows K/8 (O + 3.2))")
    units = rows * k if part == "infer" else rows * (k / 8) * (o + DENSE_BASE)
    print(f"events: {(me - slope * mn) * 1e3:.4f} ms + {slope * 1e9:.3f} ns a {what} (least squares over the "
          f"rates); dense: {dt * 1e3:.4f} ms, {dt / units * 1e9:.4f} ns {unit}")
    x = crossover(meas, ratios)
    if x is None:
        return None, None
    return x, (1.0 / x if part == "infer" else (8.0 * x + WORD_EVENTS) / (o + DENSE_BASE))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--snnc", help="the snnc binary (default: $SNNC, else build*/compiler/snnc, else PATH)")
    ap.add_argument("--target", default=TARGET, choices=sorted(TARGET_FLAGS))
    ap.add_argument("--parts", default="infer,train", help="infer (NARROW_EVENT_COST), train (NARROW_DENSE_COST)")
    ap.add_argument("--k", type=int, default=512, help="inputs of the layer (K, a multiple of 32)")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--infer-outputs", type=int, default=10, help="outputs of the inference layer (at most 16)")
    ap.add_argument("--outputs", default="2,5,10,16", help="outputs of the training layers (at most 16)")
    ap.add_argument("--infer-rates", default="0.02,0.05,0.1,0.15,0.2,0.25,0.3,0.4,0.5")
    ap.add_argument("--train-rates", default="0.02,0.05,0.1,0.2,0.3,0.4,0.5")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--min-time", type=float, default=0.1, help="seconds of timed calls per rate and build")
    ap.add_argument("--warmup", type=float, default=0.02)
    ap.add_argument("--peak-seconds", type=float, default=0.2)
    a = ap.parse_args()
    snnc = find_snnc(a.snnc)
    parts = [s for s in a.parts.split(",") if s]
    if "train" in parts and a.target == "c":
        print("narrow_products: the dense weight gradient is the x86 targets' only; --target c measures the "
              "inference part alone")
        parts = [s for s in parts if s != "train"]
    nets = ([("infer", a.infer_outputs)] if "infer" in parts else []) + \
           ([("train", int(o)) for o in a.outputs.split(",")] if "train" in parts else [])
    rates = {"infer": [float(r) for r in a.infer_rates.split(",")],
             "train": [float(r) for r in a.train_rates.split(",")]}
    env = thread_env(1, "passive", str(REPO / ".peers"))
    print(f"narrow_products: layers of O <= 16 outputs, x [{T} x {a.batch}, {a.k}] at rate p, 1 thread, "
          f"--target {a.target}")
    info = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    model = next((ln.split(":", 1)[1].strip() for ln in info.splitlines() if ln.startswith("model name")), "?")
    print(f"cpu        {model}")
    print(f"flags      {' '.join(SNNC_CFLAGS + TARGET_FLAGS[a.target])} (bench/narrow_harness.c with the generated .c)")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        _, fma1, _ = report_peak(tmp, a.peak_seconds, {})
        info, jobs = {}, []
        for part, o in nets:
            folder = tmp / f"{part}{o}"
            info[(part, o)] = compile_net(snnc, part, a.k, o, a.batch, a.target, folder)
            prefix, layer, at, _ = info[(part, o)]
            jobs += [((part, o, m), (part, prefix, layer, at, a.target, folder, m)) for m in BUILDS]
        with ThreadPoolExecutor(max_workers=2) as pool:
            futs = {key: pool.submit(build, *args) for key, args in jobs}
            exes = {key: f.result() for key, f in futs.items()}
        res = {(part, o, m, r): [] for part, o in nets for m in BUILDS for r in rates[part]}
        for rnd in range(a.rounds):
            print(f"round {rnd + 1}/{a.rounds}, load avg {loadavg()}", flush=True)
            for part, o in nets:
                for m in BUILDS:
                    for p, x in zip(rates[part], run(exes[(part, o, m)], a.batch, rates[part], a, env)):
                        res[(part, o, m, p)].append(x)
    summary = []
    for part, o in nets:
        macro, _ = MACROS[part]
        default = info[(part, o)][3]
        r = rates[part]
        sub = {(m, p): res[(part, o, m, p)] for m in BUILDS for p in r}
        if part == "infer":
            print(f"\n1. inference forward <net>_gemm_n on floats, O = {o}, K = {a.k}, rows {T} x {a.batch}: "
                  f"dense blocks (-D..._{macro}=1e30) against row events (=0); cost = the implied cost of a value "
                  f"in steps of the dense block (t_events / (p K)) / (t_dense / K)")
        else:
            print(f"\n2. training weight gradient of spikes kept as bits, <net>_train_bwd<N>, O = {o}, K = {a.k}, "
                  f"rows {T} x {a.batch}: <net>_gemm_nw_d{o} (-D..._{macro}=0) against <net>_gemm_nw_s (=1e30); "
                  f"cost = (t_dense / (rows K/8 (O + 3.2))) / (t_events / (spikes + 0.9 rows K/8))")
        x, c = report(part, o, a.k, a.batch, r, sub, fma1)
        if part == "infer":
            where = f"the default {macro} = {default} takes row events below p = {1.0 / float(default):.3f}"
            side = "row events are faster"
        else:
            where = (f"the default {macro} = {default} takes the dense loop above p = "
                     f"{(float(default) * (o + DENSE_BASE) - WORD_EVENTS) / 8:.3f}")
            side = "the events are faster"
        if x is None:
            print(f"no crossover inside the rates measured; {where}")
        else:
            print(f"{side} below p = {x:.3f}, the cost there {c:.3f}; {where}")
        summary.append((part, o, x, c, default))
        bad = [p for p in r if len({y["hash"] for m in BUILDS for y in sub[(m, p)]}) != 1]
        print("results: the three builds give the same bits at every rate" if not bad else
              "results DIFFER between the builds at p = " + ", ".join(f"{p:g}" for p in bad))
    print("\nsummary: the crossover rate and the cost that would switch there")
    for part, o, x, c, default in summary:
        name = "NARROW_EVENT_COST (inference)" if part == "infer" else "NARROW_DENSE_COST (training)"
        print(f"  {name:31} O = {o:2}: " + (f"p = {x:.3f}, cost {c:.3f}" if x is not None else "no crossover")
              + f" (default {default})")
    costs = [c for part, _, _, c, _ in summary if part == "train" and c is not None]
    if costs:
        print(f"  NARROW_DENSE_COST: median of the costs over O {statistics.median(costs):.3f} "
              f"(min {min(costs):.3f}, max {max(costs):.3f})")


if __name__ == "__main__":
    main()
