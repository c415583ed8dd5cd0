#!/usr/bin/env python3
"""Inference throughput on the CPU: snnc's generated code against snnTorch and SpikingJelly.

A benchmark program (run by hand, not a test; see bench/README.md). It times
the inference forward (all T steps and the readout, from the initial state)
of the two example networks at batch 1 and 128, in snnc's generated C and in
snnTorch 0.9.4 and SpikingJelly 0.0.0.0.14 doing the same inference, and
prints samples per second, the ratio snnc / peer, the FLOP rate, and that
rate as a fraction of the machine's fp32 FMA peak, measured by bench/peak.c:

  mlp   examples/fashion_mlp.snn: 784-512 LIF, 512-10 LI (mean membrane), T = 8
  conv  examples/fashion_conv.snn: conv32-BN-LIF-maxpool x 2, (dropout),
        1568-256 LIF, 256-10 LI (mean membrane), T = 4

- snnc: `snnc compile EXAMPLE --batch B --target T` (T: --target, by default
  the target snnc run uses on this CPU), built with bench/infer_harness.c
  by the system C compiler with CFLAGS below (those of `snnc run`). The
  harness initializes the weights with <net>_init_weights(ws, 1) (or loads
  --weights), fills the batch with a fixed pseudo-random pattern in [0, 1),
  warms up, then times each call of <net>_forward; OMP_NUM_THREADS is the
  thread count.
- peers: a child Python process per (framework, threads, variant) that
  builds the model of bench/train_throughput.py (the same layers and neuron
  settings), in eval mode under torch.inference_mode(), with OMP, OpenBLAS
  and MKL thread variables and torch.set_num_threads set to the thread
  count, and times each call of the model on the same input pattern
  (SpikingJelly's reset_net included: a forward starts from the initial
  state, as snnc's does). Two variants, as in train_throughput.py:
  "per-step" runs every layer at every step; "hoisted" runs the first
  synaptic layer (and its batchnorm) once, as snnc does.

Every configuration runs once per round in a fresh process; the rounds
repeat (--rounds) so that a burst of other load hits one round of every
configuration. Within a process: warm-up for --warmup seconds (at least one
call), then at least --repeats timed calls and more until --min-time seconds
of calls; the median call is that round's result. Reported: the median over
rounds, with min and max. Before the timing, one batch of snnc's output
(and of each layer's value at the last step) is compared with the peers'
given snnc's weights, so that the benchmark is known to compare the same
computation.
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
# The networks' layer lists, the peer models, finding snnc and the machine
# report are those of the training benchmark, so that both compare the same
# models.
from benchutil import REPO, choices, find_snnc  # noqa: E402
from train_throughput import NETS, build_peer, machine_report  # noqa: E402

# The C compiler and flags: the harness with the generated code (the flags
# `snnc run` uses), and the peak micro-benchmark.
CC = os.environ.get("CC", "cc")
SNNC_CFLAGS = ["-std=c99", "-O3", "-march=native", "-ffp-contract=off", "-fno-trapping-math", "-fopenmp"]
PEAK_CFLAGS = ["-O2", "-march=native", "-ffp-contract=off", "-fopenmp"]

EXAMPLES = {"mlp": "examples/fashion_mlp.snn", "conv": "examples/fashion_conv.snn"}
INIT_SEED = 1          # <net>_init_weights seed (infer_harness.c)
PATTERN_SEED = 12345   # the input pattern (infer_harness.c)
CHECK_BATCH = 16
CHECK_TOL = 1e-4


def pattern(n):
    """The harness's input pattern: value i is the splitmix64 output i of
    PATTERN_SEED, top 24 bits / 2^24 (exact in float32), in [0, 1)."""
    import numpy as np
    u = np.uint64
    z = u(PATTERN_SEED) + np.arange(1, n + 1, dtype=u) * u(0x9E3779B97F4A7C15)
    z = (z ^ (z >> u(30))) * u(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> u(27))) * u(0x94D049BB133111EB)
    z ^= z >> u(31)
    return (z >> u(40)).astype(np.float32) * np.float32(1.0 / 16777216.0)


def forward_flops(net, hoisted):
    """FLOPs (2 per multiply-add) of the dense and conv layers in one
    forward of one sample: every layer at every step, except, with
    `hoisted`, the input-invariant first layer once. Conv layers count every
    output position times the whole kernel (padding included); neurons,
    batchnorm, pooling and readout are not counted."""
    return sum(2 * macs * (1 if hoisted and invariant else net["T"]) for _, macs, invariant in net["layers"])


def timed_calls(call, warmup, repeats, min_time):
    """Warm up for `warmup` seconds (at least one call), then time each call,
    at least `repeats` and until `min_time` seconds of calls. Returns
    (median, min, max, calls, cpu/wall) of the seconds per call."""
    t0 = time.perf_counter()
    call()
    while time.perf_counter() - t0 < warmup:
        call()
    times = []
    c0, w0 = time.process_time(), time.perf_counter()
    while len(times) < repeats or sum(times) < min_time:
        t = time.perf_counter()
        call()
        times.append(time.perf_counter() - t)
    cpu = (time.process_time() - c0) / (time.perf_counter() - w0)
    return dict(median=statistics.median(times), min=min(times), max=max(times), calls=len(times),
                cpu_share=cpu)


# ---- peer processes ------------------------------------------------------

def torch_setup(threads):
    import torch
    torch.set_num_threads(threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass
    torch.manual_seed(1)
    return torch


def worker(a):
    """One peer configuration, every batch size, in this (child) process;
    prints one JSON line."""
    torch = torch_setup(a.threads)
    model, logits, after_step = build_peer(a.framework, a.net, a.variant == "hoisted")
    model.eval()
    out = []
    with torch.inference_mode():
        for b in a.batch_list:
            x = torch.from_numpy(pattern(b * 784).reshape(b, 1, 28, 28))

            def call():
                logits(x)
                after_step()

            out.append(dict(timed_calls(call, a.warmup, a.repeats, a.min_time), batch=b))
    print(json.dumps(dict(results=out, threads=torch.get_num_threads())))


def synaptic_modules(model):
    import torch.nn as nn
    return [m for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv2d, nn.BatchNorm2d))]


def check_worker(a):
    """The agreement check, in a child process: loads the weights, input,
    output and records that infer_harness.c dumped into each peer model (both
    variants) and prints the largest differences and the spike rates."""
    import numpy as np
    torch = torch_setup(1)
    d = Path(a.check_dir)
    params = []  # [(layer, attribute, array)] in the order of <net>_params
    for ln in (d / "params.txt").read_text().splitlines():
        name, _, fname = ln.split()
        layer, attr = name.rsplit(".", 1)
        params.append((layer, attr, np.fromfile(d / fname, dtype=np.float32)))
    layers = list(dict.fromkeys(p[0] for p in params))
    x = np.fromfile(d / "input.bin", dtype=np.float32)
    b = x.size // 784
    y_snnc = np.fromfile(d / "output.bin", dtype=np.float32).reshape(b, -1)
    rec = {name: np.fromfile(d / f"probe{k}.bin", dtype=np.float32).reshape(b, -1)
           for k, name in enumerate(layers) if (d / f"probe{k}.bin").exists()}
    res = dict(batch=b, pattern_same=bool(np.array_equal(x, pattern(x.size))), layers=layers, models={})
    xt = torch.from_numpy(x.reshape(b, 1, 28, 28))
    for fw in ("snntorch", "spikingjelly"):
        for variant in ("per-step", "hoisted"):
            model, logits, after_step = build_peer(fw, a.net, variant == "hoisted")
            model.eval()
            mods = synaptic_modules(model)
            if len(mods) != len(layers):
                raise SystemExit(f"{fw}: {len(mods)} dense/conv/batchnorm modules, snnc has {len(layers)} layers")
            last = {}

            def keep(name):
                def hook(m, _i, o):  # a multi-step module's output is [T, B, ...]: keep the last step
                    last[name] = o[-1] if getattr(m, "step_mode", "s") == "m" else o
                return hook

            with torch.no_grad():
                for layer, attr, arr in params:
                    t = getattr(mods[layers.index(layer)], attr)
                    t.copy_(torch.from_numpy(arr).reshape(t.shape))
            for name, m in zip(layers, mods):
                m.register_forward_hook(keep(name))
            spikes = []
            if fw == "spikingjelly" and variant == "per-step":
                from spikingjelly.activation_based import neuron
                for m in model.modules():
                    if isinstance(m, neuron.BaseNode):
                        m.register_forward_hook(lambda _m, _i, o: spikes.append(float(o.float().mean())))
            with torch.inference_mode():
                y = logits(xt).numpy().reshape(b, -1)
                after_step()
            diffs = {"output": float(np.abs(y - y_snnc).max())}
            for name, r in rec.items():
                diffs[name] = float(np.abs(last[name].reshape(b, -1).numpy() - r).max())
            res["models"][f"{fw}/{variant}"] = diffs
            if spikes:
                res["spike_rates"] = spikes
    res["output_sum"] = float(y_snnc.sum())
    print(json.dumps(res))


# ---- snnc ----------------------------------------------------------------

def native_target():
    """The target snnc run uses on this CPU: avx512, avx2 (with FMA) or c."""
    info = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    m = re.search(r"^flags\s*:\s*(.*)$", info, re.M)
    flags = set(m.group(1).split()) if m else set()
    return "avx512" if "avx512f" in flags else "avx2" if {"avx2", "fma"} <= flags else "c"


TARGET = native_target()  # --target
TARGET_FLAGS = {"avx512": ["-mavx512f", "-mprefer-vector-width=512"], "avx2": ["-mavx2", "-mfma"], "c": []}


def thread_env(nthreads, wait_policy, peers_dir):
    """The environment of a worker or harness on `nthreads` threads: OpenMP's,
    OpenBLAS's and MKL's thread counts, OMP_WAIT_POLICY unless 'default',
    and the peers' folder on PYTHONPATH."""
    e = dict(os.environ)
    for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        e[k] = str(nthreads)
    if wait_policy != "default":
        e["OMP_WAIT_POLICY"] = wait_policy.upper()
    e["PYTHONPATH"] = peers_dir + (os.pathsep + e["PYTHONPATH"] if e.get("PYTHONPATH") else "")
    return e


def loadavg():
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def report_peak(tmp, seconds, report):
    """Measures the peak with bench/peak.c, prints it and records it in
    report["peak"]. Returns (the rates by (isa, op, threads), the best
    1-thread FMA rate or None, the cores this process may use)."""
    peak, lines = measure_peak(tmp, seconds)
    ncores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    fma1 = max((v for k, v in peak.items() if k[1] == "fma" and k[2] == 1), default=None)
    print(f"peak       measured by bench/peak.c ({' '.join(PEAK_CFLAGS)}): fp32 GFLOP/s by the threads' CPU "
          f"time (then by the wall clock); load avg {loadavg()}:")
    for ln in lines:
        print(ln)
    if fma1:
        print(f"           the FMA peak of n threads below: n x {fma1:.1f} (the best 1-thread FMA rate), "
              f"n at most {ncores} cores")
    report["peak"] = [dict(isa=k[0], op=k[1], threads=k[2], gflops=v) for k, v in peak.items()]
    return peak, fma1, ncores


def use_target(t):
    global TARGET
    TARGET = t


def build_snnc(snnc, netkey, batch, folder, records=()):
    """Compiles the example at `batch` for TARGET and builds the harness with
    it. Returns (harness path, prefix, header macros, the layers with
    parameters in the order of <net>_params), or raises RuntimeError."""
    folder.mkdir(parents=True, exist_ok=True)
    cmd = [snnc, "compile", str(REPO / EXAMPLES[netkey]), "--batch", str(batch), "--target", TARGET,
           "-o", str(folder)]
    for r in records:
        cmd += ["--record", r]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError(f"snnc compile failed: {p.stderr.strip()[-1500:]}")
    header = next(folder.glob("*.h"))
    prefix = header.stem
    text = header.read_text()
    macros = {m.group(1): int(m.group(2)) for m in
              re.finditer(rf"#define {prefix.upper()}_(\w+) (-?\d+)L?\b", text)}
    defs = [f"-DSNN_NET={prefix}", f"-DSNN_NET_UPPER={prefix.upper()}", f'-DSNN_HEADER="{prefix}.h"']
    if records:
        sizes = [int(m.group(1)) for m in re.finditer(r"^\s+\d+: \S+ \((\d+) floats per sample\)", text, re.M)]
        defs.append("-DHARNESS_PROBE_FLOATS={" + ",".join(map(str, sizes)) + "}")
    layers = list(dict.fromkeys(re.findall(r'^\s*\{"(\w+)\.\w+", \d', (folder / f"{prefix}.c").read_text(), re.M)))
    exe = folder / "harness"
    cmd = [CC] + SNNC_CFLAGS + TARGET_FLAGS[TARGET] + defs + ["-I", str(folder), "-o", str(exe),
                                       str(REPO / "bench" / "infer_harness.c"), str(folder / f"{prefix}.c"), "-lm"]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError(f"cc failed: {p.stderr.strip()[-1500:]}")
    return exe, prefix, macros, layers


def run_harness(exe, batch, a, env, weights=None, dump=None):
    cmd = [str(exe), str(batch), str(a.repeats), str(a.min_time), str(a.warmup)]
    cmd += (["--weights", weights] if weights else []) + (["--dump", str(dump)] if dump else [])
    p = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if p.returncode != 0:
        return dict(error=f"harness failed ({p.returncode}): {p.stderr.strip()[-1500:]}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def check_agreement(snnc, netkey, layers, a, tmp, env):
    """snnc's output and the value at the last step of every layer with
    parameters (`layers`: the dense/conv layers and the batchnorms, recorded
    with --record) on CHECK_BATCH samples, against both peers given snnc's
    weights. Returns (line to print, result dict)."""
    try:
        exe, _, _, _ = build_snnc(snnc, netkey, CHECK_BATCH, tmp / f"{netkey}-check", records=layers)
    except RuntimeError as e:
        return f"check      {netkey}: not done: {e}", dict(error=str(e))
    dump = tmp / f"{netkey}-dump"
    dump.mkdir(exist_ok=True)
    ca = argparse.Namespace(repeats=1, min_time=0.0, warmup=0.0)
    r = run_harness(exe, CHECK_BATCH, ca, env, a.weights.get(netkey), dump)
    if "error" in r:
        return f"check      {netkey}: not done: {r['error']}", r
    cmd = [a.python, str(Path(__file__).resolve()), "--check-worker", "--net", netkey, "--check-dir", str(dump),
           "--peers-dir", a.peers_dir]
    p = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if p.returncode != 0:
        msg = f"peers failed ({p.returncode}): {p.stderr.strip()[-1500:]}"
        return f"check      {netkey}: not done: {msg}", dict(error=msg)
    res = json.loads(p.stdout.strip().splitlines()[-1])
    worst = {k: max(d.values()) for k, d in res["models"].items()}
    ok = all(v <= CHECK_TOL for v in worst.values()) and res["pattern_same"]
    per_layer = {name: max(d[name] for d in res["models"].values()) for name in ["output"] + res["layers"]
                 if all(name in d for d in res["models"].values())}
    wsrc = f"weights {Path(a.weights[netkey]).name}" if netkey in a.weights else f"init seed {INIT_SEED}"
    line = (f"check      {netkey}: snnc ({wsrc}) and snnTorch/SpikingJelly (per-step and hoisted) "
            f"with snnc's weights, batch {res['batch']}: "
            f"{'agree' if ok else 'DO NOT AGREE'} within {CHECK_TOL:g} (largest |difference|: "
            + ", ".join(f"{k} {v:.1e}" for k, v in per_layer.items())
            + "; layers: value at the last step)"
            + ("" if res["pattern_same"] else "; the harness's input pattern differs from this program's")
            + f"; snnc output sum {res['output_sum']:.6g}")
    if res.get("spike_rates"):
        line += ("\n           spike rates of the LIF layers on this input: "
                 + ", ".join(f"{100 * s:.2g}%" for s in res["spike_rates"]))
        if min(res["spike_rates"]) < 1e-3:
            line += (" (nearly silent: code that skips zero spikes would gain more here than on trained "
                     "weights; see --weights)")
    res["agree"] = ok
    return line, res


# ---- peak ----------------------------------------------------------------

def measure_peak(tmp, seconds):
    """Builds and runs bench/peak.c. Returns ({(isa, op, threads): GFLOP/s
    by CPU time}, lines to print) or ({}, [error])."""
    exe = tmp / "peak"
    p = subprocess.run([CC] + PEAK_CFLAGS + ["-o", str(exe), str(REPO / "bench" / "peak.c")],
                       capture_output=True, text=True)
    if p.returncode != 0:
        return {}, [f"peak       not measured: {CC} failed: {p.stderr.strip()[-500:]}"]
    p = subprocess.run([str(exe), str(seconds)], capture_output=True, text=True,
                       env=dict(os.environ, OMP_WAIT_POLICY="PASSIVE"))
    got, wall = {}, {}
    for ln in p.stdout.splitlines():
        f = ln.split()
        if len(f) == 6 and f[0] == "peak":
            wall[(f[1], f[2], int(f[3]))] = float(f[4])
            got[(f[1], f[2], int(f[3]))] = float(f[5])
    if not got:
        return {}, [f"peak       not measured: {p.stdout.strip()} {p.stderr.strip()}"]
    lines = []
    for isa in dict.fromkeys(k[0] for k in got):
        parts, wparts = [], []
        for t in sorted({k[2] for k in got if k[0] == isa}):
            keys = [(isa, op, t) for op in ("fma", "mul+add") if (isa, op, t) in got]
            parts.append(f"{t} thread{'s' if t > 1 else ''}: " + ", ".join(f"{k[1]} {got[k]:.1f}" for k in keys))
            wparts.append(", ".join(f"{wall[k]:.1f}" for k in keys))
        lines.append(f"  {isa:<8} " + "; ".join(parts) + "   (wall clock: " + "; ".join(wparts) + ")")
    return got, lines


# ---- main ----------------------------------------------------------------

def fmt_rate(r):
    return f"{r:.0f}" if r >= 100 else f"{r:.1f}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--snnc", help="the snnc binary (default: $SNNC, else build*/compiler/snnc, else PATH)")
    ap.add_argument("--python", default=sys.executable, help="Python with torch for the peers")
    ap.add_argument("--peers-dir", default=str(REPO / ".peers"),
                    help="folder with snntorch and spikingjelly (scripts/install-test-peers.sh)")
    ap.add_argument("--nets", default="mlp,conv")
    ap.add_argument("--target", default=TARGET, choices=sorted(TARGET_FLAGS),
                    help="snnc's target (default: the one snnc run uses on this CPU, here %(default)s)")
    ap.add_argument("--frameworks", default="snnc,snntorch,spikingjelly")
    ap.add_argument("--variants", default="per-step,hoisted", help="peer model variants")
    ap.add_argument("--threads", default="1,2", help="thread counts (snnc: OMP_NUM_THREADS; peers: as in "
                                                     "train_throughput.py)")
    ap.add_argument("--batches", default="1,128")
    ap.add_argument("--rounds", type=int, default=3, help="rounds; each runs every configuration once")
    ap.add_argument("--repeats", type=int, default=3, help="timed calls at least, per configuration and round")
    ap.add_argument("--min-time", type=float, default=0.4, help="seconds of timed calls at least, per "
                                                                "configuration and round")
    ap.add_argument("--warmup", type=float, default=0.2, help="seconds of warm-up calls (at least one)")
    ap.add_argument("--peak-seconds", type=float, default=0.2, help="seconds per run of bench/peak.c's loops")
    ap.add_argument("--weights", default="", help="NET=FILE,...: snnc's weights for a network (safetensors, "
                                                  "e.g. from snnc train) instead of <net>_init_weights(ws, 1)")
    ap.add_argument("--no-check", action="store_true", help="skip the agreement check")
    ap.add_argument("--omp-wait-policy", default="passive",
                    help="OMP_WAIT_POLICY for the peers and the harness ('default': leave it unset)")
    ap.add_argument("--json", help="also write all measurements to this file")
    # child modes
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--check-worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--check-dir", help=argparse.SUPPRESS)
    ap.add_argument("--framework", help=argparse.SUPPRESS)
    ap.add_argument("--net", help=argparse.SUPPRESS)
    ap.add_argument("--variant", help=argparse.SUPPRESS)
    ap.add_argument("--nthreads", type=int, dest="threads_one", help=argparse.SUPPRESS)
    a = ap.parse_args()
    use_target(a.target)
    a.batch_list = [int(b) for b in a.batches.split(",") if b]
    a.weights = dict(w.split("=", 1) for w in a.weights.split(",") if w)

    if a.worker or a.check_worker:
        sys.path.insert(0, a.peers_dir)
        a.threads = a.threads_one
        worker(a) if a.worker else check_worker(a)
        return

    started = time.time()
    nets = choices("--nets", a.nets, tuple(NETS))
    fws = choices("--frameworks", a.frameworks, ("snnc", "snntorch", "spikingjelly"))
    variants = choices("--variants", a.variants, ("per-step", "hoisted"))
    threads = [int(t) for t in a.threads.split(",") if t]
    for b in a.batch_list:
        if b < 1:
            raise SystemExit(f"bad batch {b}")

    def env_for(nthreads):
        return thread_env(nthreads, a.omp_wait_policy, a.peers_dir)

    print("== machine ==")
    machine = [ln for ln in machine_report(a.python, env_for(1)) if not ln.startswith("peak est.")]
    for ln in machine:
        print(ln)
    print(f"load avg   {loadavg()} (before)")
    ccv = subprocess.run([CC, "--version"], capture_output=True, text=True).stdout.split("\n")[0]
    print(f"cc         {CC}: {ccv}")
    print(f"snnc flags {' '.join(SNNC_CFLAGS + TARGET_FLAGS[TARGET])} (the generated code of --target {TARGET} "
          "with bench/infer_harness.c)")
    print(f"peers      threads {a.threads}; OMP/OPENBLAS/MKL_NUM_THREADS = torch.set_num_threads = that count "
          f"(snnc: OMP_NUM_THREADS); OMP_WAIT_POLICY "
          f"{'unset' if a.omp_wait_policy == 'default' else a.omp_wait_policy.upper()}; torch.inference_mode, eval")
    sys.stdout.flush()

    snnc = find_snnc(a.snnc) if "snnc" in fws else None
    if snnc:
        ver = subprocess.run([snnc, "--version"], capture_output=True, text=True).stdout.strip()
        git = subprocess.run(["git", "-C", str(REPO), "log", "-1", "--format=%h %cs"], capture_output=True,
                             text=True).stdout.strip()
        dirty = [ln for ln in subprocess.run(["git", "-C", str(REPO), "status", "--porcelain",
                                              "--untracked-files=no"],
                                             capture_output=True, text=True).stdout.split("\n") if ln.strip()]
        print(f"snnc       {ver}; source tree at {git or '?'}"
              + (f" with {len(dirty)} changed files" if dirty else "")
              + f"; binary built {time.strftime('%Y-%m-%d %H:%M', time.localtime(os.path.getmtime(snnc)))}")

    report = dict(machine=machine, flags=dict(cc=CC, snnc=SNNC_CFLAGS, peak=PEAK_CFLAGS), nets={})
    with tempfile.TemporaryDirectory(prefix="snnc-infer-") as tmpname:
        tmp = Path(tmpname)
        peak, fma1, ncores = report_peak(tmp, a.peak_seconds, report)
        sys.stdout.flush()

        summary = []
        for n in nets:
            net = NETS[n]
            T = net["T"]
            fl = {v: forward_flops(net, v == "hoisted") for v in ("per-step", "hoisted")}
            print()
            print(f"== {n}: {EXAMPLES[n]}, {net['desc']}; T = {T}; inference ==")
            print(f"FLOPs per sample and forward (dense/conv multiply-adds x 2): {fl['per-step'] / 1e6:.3f} M with "
                  f"every layer at every step (per-step), {fl['hoisted'] / 1e6:.3f} M with the invariant first layer "
                  f"once (hoisted, as snnc)")
            print(f"batches {a.batches}; {a.rounds} round(s), each running every configuration once in a fresh "
                  f"process; per process {a.warmup:g} s warm-up, then at least {a.repeats} timed calls and "
                  f"{a.min_time:g} s; median call per round, median over rounds")
            sys.stdout.flush()
            exes = {}
            nrep = dict(check=None)
            if snnc:
                for b in a.batch_list:
                    try:
                        exes[b], _, macros, layers = build_snnc(snnc, n, b, tmp / f"{n}-b{b}")
                        if macros.get("TIMESTEPS") != T:
                            raise RuntimeError(f"the example has T = {macros.get('TIMESTEPS')}, expected {T}")
                    except RuntimeError as e:
                        print(f"  snnc batch {b}: {e}")
                if exes and not a.no_check:
                    line, nrep["check"] = check_agreement(snnc, n, layers, a, tmp, env_for(1))
                    print(line)
                    sys.stdout.flush()
            # configurations: snnc (threads, batch), one process each; a peer
            # (framework, threads, variant), one process for every batch
            configs = [("snnc", nt, "hoisted", b) for nt in threads for b in a.batch_list if b in exes]
            configs += [(fw, nt, v, None) for fw in fws if fw != "snnc" for nt in threads for v in variants]
            got = {}
            failed = set()
            for rnd in range(a.rounds):
                print(f"  round {rnd + 1}/{a.rounds} (load avg {loadavg()}):", end="")
                sys.stdout.flush()
                for c in configs:
                    fw, nt, v, b = c
                    if c in failed:
                        continue
                    if fw == "snnc":
                        r = run_harness(exes[b], b, a, env_for(nt), a.weights.get(n))
                        rs = [r] if "error" not in r else r
                    else:
                        cmd = [a.python, str(Path(__file__).resolve()), "--worker", "--framework", fw, "--net", n,
                               "--variant", v, "--nthreads", str(nt), "--batches", a.batches,
                               "--repeats", str(a.repeats), "--min-time", str(a.min_time),
                               "--warmup", str(a.warmup), "--peers-dir", a.peers_dir]
                        p = subprocess.run(cmd, env=env_for(nt), capture_output=True, text=True)
                        rs = (json.loads(p.stdout.strip().splitlines()[-1])["results"] if p.returncode == 0 else
                              dict(error=f"failed ({p.returncode}): {p.stderr.strip()[-1500:]}"))
                    if isinstance(rs, dict):
                        print(f"\n  {fw} {nt}T {v}: {rs['error']}")
                        failed.add(c)
                        continue
                    for r in rs:
                        got.setdefault((fw, nt, v, r["batch"]), []).append(r)
                        print(f" {fw}/{nt}/{v}/b{r['batch']} {fmt_rate(r['batch'] / r['median'])}", end="")
                    sys.stdout.flush()
                print()

            # the table
            def rate(key):
                return statistics.median(r["batch"] / r["median"] for r in got[key])

            rows = sorted(got, key=lambda k: (a.batch_list.index(k[3]), threads.index(k[1]),
                                              k[0] != "snnc", fws.index(k[0]) if k[0] in fws else 0,
                                              variants.index(k[2]) if k[2] in variants else 0))
            print()
            print(f"{'framework':<13}{'threads':>7}  {'variant':<9}{'batch':>6}{'samples/s':>11}{'min':>9}{'max':>9}"
                  f"{'ms per':>9}{'GFLOP/s':>9}{'% of FMA':>9}{'snnc/':>8}{'cpu/':>6}")
            print(f"{'':<13}{'':>7}  {'':<9}{'':>6}{'median':>11}{'':>9}{'':>9}{'forward':>9}{'done':>9}"
                  f"{'peak':>9}{'peer':>8}{'wall':>6}")
            table = []
            for key in rows:
                fw, nt, v, b = key
                rs = got[key]
                med = rate(key)
                rates = [r["batch"] / r["median"] for r in rs]
                ms = statistics.median(r["median"] for r in rs) * 1e3
                gf = fl[v] * med / 1e9
                pk = fma1 * min(nt, ncores) if fma1 else None
                sn = ("snnc", nt, "hoisted", b)
                peers = [k for k in got if k[0] != "snnc" and k[1] == nt and k[3] == b]
                if fw == "snnc":
                    bestp = max(peers, key=rate) if peers else None
                    ratio = rate(key) / rate(bestp) if bestp else None
                    if bestp:
                        summary.append((n, b, nt, med, bestp, rate(bestp), ratio))
                else:
                    ratio = rate(sn) / med if sn in got else None
                cpu = statistics.median(r["cpu_share"] for r in rs)
                print(f"{fw:<13}{nt:>7}  {v:<9}{b:>6}{fmt_rate(med):>11}{fmt_rate(min(rates)):>9}"
                      f"{fmt_rate(max(rates)):>9}{ms:>9.3f}{gf:>9.2f}"
                      f"{(f'{100 * gf / pk:.1f}%' if pk else '?'):>9}"
                      f"{(f'{ratio:.2f}x' if ratio else ''):>8}{cpu:>6.2f}")
                table.append(dict(framework=fw, threads=nt, variant=v, batch=b, samples_per_s=med,
                                  samples_per_s_rounds=rates, ms_per_forward=ms, gflops=gf,
                                  peak_fraction=gf / pk if pk else None, snnc_over_peer=ratio,
                                  flops_per_sample=fl[v], rounds=rs))
            print("  GFLOP/s done: the FLOPs of the row's variant (snnc: hoisted) over the median time; % of FMA peak:")
            print("  that over the measured 1-thread FMA rate x threads. snnc/peer: in a peer row, snnc's samples/s")
            print("  at the same threads and batch over the row's; in snnc's row, over the fastest peer's.")
            print("  cpu/wall: CPU time over wall time of the timed calls (median over rounds): below the thread")
            print("  count, other work had the cores (or the code used fewer threads).")
            sys.stdout.flush()
            nrep["rows"] = table
            report["nets"][n] = nrep

        if summary:
            print()
            print("== snnc / fastest peer at equal threads ==")
            for n, b, nt, med, bp, bpr, ratio in summary:
                print(f"  {n:<5} batch {b:>4}, {nt} thread{'s' if nt > 1 else ' '}: snnc {fmt_rate(med):>8}/s, "
                      f"{bp[0]} {bp[2]:<9}{fmt_rate(bpr):>8}/s: {ratio:6.2f}x")
    print()
    print(f"load avg   {loadavg()} (after); {time.time() - started:.0f} s in all")
    if a.json:
        Path(a.json).write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
