#!/usr/bin/env python3
"""Linear(n, n) + LIF training step on the CPU: snnc against snnTorch and SpikingJelly.

A benchmark program (run by hand, not a test; see bench/README.md): the
benchmark (a) of issue 10. One call is the forward and the backward of

    y = LIF(x W^T),  x: [T, B, n] data (a sequence),  W: [n, n],  loss = sum(y)

with T = 100, B = 16, LIF(tau = 2) (hard reset to 0, threshold 1, sigmoid(4)
surrogate), at n = 1024 and 4096, and 1 and 2 threads. The gradient of W is
computed; the input's is not (the input is data). It prints the machine's
measured fp32 FMA peak (bench/peak.c), and per configuration the ms per call
(median over rounds of each round's median call, with min and max), the
GFLOP/s, that rate as a fraction of the peak x threads, the ratio
time_peer / time_snnc for each peer, and whether snnc meets the issue's goal.

FLOPs of a call: the two matrix products the step cannot do without, the
forward x W^T over the T*B = 1600 rows and the weight gradient dW = gy^T x,
2 FLOPs per multiply-add: 2 * 2 * T * B * n^2 (6.7 GFLOP at n = 1024, 107.4 at
4096). The neuron scans forward and backward are not counted. Goals: at
least 65 % of the FMA peak x threads at n = 4096, 55 % at n = 1024.

- snnc: a generated .snn (network LinLIF: `input x : [n] encode sequence;
  y = x |> dense(n, bias = false) |> LIF(tau = 2.0); output y readout
  steps`), compiled with `snnc compile --train --batch 16 --target TARGET`
  for each of --targets, and built with bench/train_harness.c by the C
  compiler with the flags `snnc run` and `snnc train` use (SNNC_CFLAGS of
  infer_throughput.py, and the target's -mavx512f -mprefer-vector-width=512
  or -mavx2 -mfma). The harness initializes the weights with
  <net>_init_weights(ws, 1), fills the input with a fixed pseudo-random
  pattern in [0, 1.5) (--scale), sets dL/dy to
  all ones, and times <net>_train_forward(ws, 16, x, NULL, 1, 0) followed by
  <net>_train_backward(ws, 16, input, ones, NULL). OMP_NUM_THREADS is the thread
  count.
- snnTorch 0.9.4: nn.Linear(n, n, bias=False) on the whole [T*B, n] input
  at once (hoisted out of the time loop; snnTorch's tutorials call it inside
  the loop, T products of B rows), times 1 - beta, then snn.Leaky(beta=0.5,
  threshold=1, spike_grad=sigmoid(slope=4), reset_mechanism="zero") in a
  Python loop over T; the spikes stacked and summed; .backward().
- SpikingJelly 0.0.0.0.14: layer.Linear(n, n, bias=False) and
  neuron.LIFNode(tau=2.0, decay_input=True, v_reset=0.0, v_threshold=1.0,
  surrogate Sigmoid(alpha=4), detach_reset=False), both in multi-step mode
  ('m'), torch backend; sum; .backward(); functional.reset_net.
- Peers run in a child Python process per configuration, with the thread
  settings of train_throughput.py and infer_throughput.py (OMP, OpenBLAS
  and MKL thread variables and torch.set_num_threads set to the thread
  count, one interop thread, OMP_WAIT_POLICY=PASSIVE), on the same input
  pattern, with their own (PyTorch) initial weights.

Timing: every configuration runs once per round in a fresh process, and the
rounds repeat (--rounds). In a process: warm-up calls for --warmup seconds
(at least one), then at least --repeats timed calls and more until
--min-time seconds; at n >= 2048 (about a second a call) one warm-up call
and --large-repeats timed calls. The median call is the round's result.

Before the rounds, a loose check: at n = 1024 and batch --check-batch, snnc
(each target) and SpikingJelly given snnc's initialized weights and the same
input compute the weight gradient; the largest difference relative to the
largest |dW| is printed (expected: about 1e-3 or less) and the spike counts
of snnc, SpikingJelly and snnTorch are compared. A mismatch is reported,
not fatal.
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
from infer_throughput import (CC, PEAK_CFLAGS, SNNC_CFLAGS, TARGET_FLAGS, loadavg,  # noqa: E402
                              native_target, pattern, report_peak, thread_env, timed_calls, torch_setup)
from benchutil import REPO, find_snnc  # noqa: E402
from train_throughput import machine_report  # noqa: E402

T = 100
BATCH = 16
TAU = 2.0
BETA = 0.5            # snnTorch's beta for tau = 2: 1 - 1/tau
GOALS = {4096: 0.65, 1024: 0.55}  # fraction of the FMA peak x threads (issue 10)
LARGE = 2048          # from this n on, a call takes about a second: few repeats
CHECK_N = 1024
CHECK_TOL = 1e-3

NET_SNN = """\
network LinLIF {{
  timesteps {T};
  input x : [{n}] encode sequence;
  y = x |> dense({n}, bias = false) |> LIF(tau = {tau});
  output y readout steps;
}}
"""


def call_flops(n, batch=BATCH):
    """The forward product x W^T and the weight gradient gy^T x over T*batch
    rows, 2 FLOPs per multiply-add."""
    return 2 * 2 * T * batch * n * n


def goal_for(n):
    """The issue's goal at n: 65 % at 4096, 55 % at 1024 (and below); in
    between, the goal of the nearer size below."""
    return GOALS[4096] if n >= 4096 else GOALS[1024]


def sized(n, a):
    """(repeats, min_time, warmup) for size n."""
    return (a.large_repeats, 0.0, 0.0) if n >= LARGE else (a.repeats, a.min_time, a.warmup)


def the_input(n, batch, scale):
    """The harness's input [T, batch, n]: its pattern in [0, 1) times scale in float32."""
    import numpy as np
    return (pattern(T * batch * n) * np.float32(scale)).reshape(T, batch, n)


# ---- peer processes ------------------------------------------------------

def build_peer(framework, n):
    """Returns (the Linear module, the neuron module, step(x) -> the summed
    spikes, after())."""
    import torch
    import torch.nn as nn
    if framework == "spikingjelly":
        from spikingjelly.activation_based import functional, layer, neuron, surrogate
        fc = layer.Linear(n, n, bias=False, step_mode="m")
        lif = neuron.LIFNode(tau=TAU, decay_input=True, v_threshold=1.0, v_reset=0.0,
                             surrogate_function=surrogate.Sigmoid(alpha=4.0), detach_reset=False,
                             step_mode="m", backend="torch")
        net = nn.Sequential(fc, lif)

        def step(x):
            return net(x).sum()

        def after():
            functional.reset_net(net)
    elif framework == "snntorch":
        import snntorch as snn
        from snntorch import surrogate as sgm
        fc = nn.Linear(n, n, bias=False)
        lif = snn.Leaky(beta=BETA, threshold=1.0, spike_grad=sgm.sigmoid(slope=4), reset_mechanism="zero")

        def step(x):
            t_, b_, _ = x.shape
            # hoisted: one product over all T*B rows, then snnTorch's loop over T;
            # the input times 1 - beta makes mem snnc's potential before reset
            cur = fc(x.reshape(t_ * b_, n)).reshape(t_, b_, n) * (1 - BETA)
            mem = lif.init_leaky()
            spks = []
            for t in range(t_):
                spk, mem = lif(cur[t], mem)
                spks.append(spk)
            return torch.stack(spks).sum()

        def after():
            pass
    else:
        raise SystemExit(f"unknown framework {framework}")
    return fc, lif, step, after


def worker(a):
    """One peer configuration (framework, n, threads) in this child process;
    prints one JSON line."""
    torch = torch_setup(a.threads)
    fc, _, step, after = build_peer(a.framework, a.n)
    x = torch.from_numpy(the_input(a.n, BATCH, a.scale))  # requires_grad False: data
    last = {}

    def call():
        fc.weight.grad = None
        s = step(x)
        s.backward()
        after()
        last["spikes"] = float(s.detach())

    repeats, min_time, warmup = sized(a.n, a)
    r = timed_calls(call, warmup, repeats, min_time)
    assert fc.weight.grad is not None
    print(json.dumps(dict(r, spikes=last["spikes"], neurons=T * BATCH * a.n, threads=torch.get_num_threads())))


def check_worker(a):
    """The gradient check, in a child process: snnc's weights, input, output
    and weight gradient (train_harness.c --dump) against SpikingJelly's
    gradient and both peers' spikes. Prints one JSON line."""
    import numpy as np
    torch = torch_setup(1)
    d = Path(a.check_dir)
    name, count, pfile, gfile = (d / "params.txt").read_text().split("\n")[0].split()
    n = a.n
    w = np.fromfile(d / pfile, dtype=np.float32).reshape(n, n)
    gw = np.fromfile(d / gfile, dtype=np.float32).reshape(n, n)
    x = np.fromfile(d / "input.bin", dtype=np.float32)
    b = x.size // (T * n)
    x = x.reshape(T, b, n)
    y = np.fromfile(d / "output.bin", dtype=np.float32).reshape(T, b, n)
    res = dict(batch=b, param=name, pattern_same=bool(np.array_equal(x, the_input(n, b, a.scale))),
               snnc_spikes=float(y.sum()))
    xt = torch.from_numpy(x)
    for fw in ("spikingjelly", "snntorch"):
        fc, lif, step, after = build_peer(fw, n)
        with torch.no_grad():
            fc.weight.copy_(torch.from_numpy(w))
        seen = {}
        if fw == "spikingjelly":
            # the spikes of every step ([T, b, n]), to count where they differ
            lif.register_forward_hook(lambda _m, _i, o: seen.__setitem__("spk", o.detach().numpy()))
        s = step(xt)
        s.backward()
        after()
        res[f"{fw}_spikes"] = float(s.detach())
        if fw == "spikingjelly":
            g = fc.weight.grad.numpy()
            diff = np.abs(g.astype(np.float64) - gw)
            res["grad_max_abs"] = float(np.abs(g).max())
            res["grad_max_diff"] = float(diff.max())
            res["grad_rel"] = float(diff.max() / max(np.abs(g).max(), 1e-30))
            big = np.abs(g) > 1e-2 * np.abs(g).max()
            res["grad_rel_elem"] = float((diff[big] / np.abs(g[big])).max()) if big.any() else 0.0
            res["spike_mismatch"] = int((seen["spk"] != y).sum())
    print(json.dumps(res))


# ---- snnc ----------------------------------------------------------------

def best_x86_target():
    """avx512 or avx2 where this CPU runs one (snnc run's choice), else None."""
    t = native_target()
    return None if t == "c" else t


def build_snnc(snnc, n, batch, target, folder):
    """Writes the .snn, compiles it for training at `batch` for `target` and
    builds the harness with it. Returns the harness path or raises RuntimeError."""
    folder.mkdir(parents=True, exist_ok=True)
    src = folder / "linlif.snn"
    src.write_text(NET_SNN.format(T=T, n=n, tau=TAU))
    gen = folder / "gen"
    cmd = [snnc, "compile", str(src), "--train", "--batch", str(batch), "--target", target, "-o", str(gen)]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError(f"snnc compile failed: {p.stderr.strip()[-1500:]}")
    header = next(gen.glob("*.h"))
    prefix = header.stem
    defs = [f"-DSNN_NET={prefix}", f"-DSNN_NET_UPPER={prefix.upper()}", f'-DSNN_HEADER="{prefix}.h"']
    exe = folder / "harness"
    cmd = ([CC] + SNNC_CFLAGS + TARGET_FLAGS.get(target, []) + defs +
           ["-I", str(gen), "-o", str(exe), str(REPO / "bench" / "train_harness.c"), str(gen / f"{prefix}.c"), "-lm"])
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError(f"cc failed: {p.stderr.strip()[-1500:]}")
    return exe


def run_harness(exe, batch, repeats, min_time, warmup, scale, env, dump=None):
    cmd = [str(exe), str(batch), str(repeats), str(min_time), str(warmup), "--scale", repr(scale)]
    cmd += ["--dump", str(dump)] if dump else []
    p = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if p.returncode != 0:
        return dict(error=f"harness failed ({p.returncode}): {p.stderr.strip()[-1500:]}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def check_gradient(snnc, target, a, tmp, env):
    """snnc's weight gradient and spikes at n = CHECK_N, batch --check-batch,
    against SpikingJelly's (and snnTorch's spikes). Returns (line, result)."""
    tag = f"check      n = {CHECK_N}, batch {a.check_batch}, target {target}"
    try:
        exe = build_snnc(snnc, CHECK_N, a.check_batch, target, tmp / f"check-{target}")
    except RuntimeError as e:
        return f"{tag}: not done: {e}", dict(error=str(e))
    dump = tmp / f"check-{target}" / "dump"
    dump.mkdir(exist_ok=True)
    r = run_harness(exe, a.check_batch, 1, 0.0, 0.0, a.scale, env, dump)
    if "error" in r:
        return f"{tag}: not done: {r['error']}", r
    cmd = [a.python, str(Path(__file__).resolve()), "--check-worker", "--n", str(CHECK_N), "--check-dir", str(dump),
           "--scale", repr(a.scale), "--peers-dir", a.peers_dir]
    p = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if p.returncode != 0:
        msg = f"peers failed ({p.returncode}): {p.stderr.strip()[-1500:]}"
        return f"{tag}: not done: {msg}", dict(error=msg)
    res = json.loads(p.stdout.strip().splitlines()[-1])
    ok_g = res["grad_rel"] <= CHECK_TOL
    ok_s = res["snnc_spikes"] == res["spikingjelly_spikes"] and res["spike_mismatch"] == 0
    neurons = T * res["batch"] * CHECK_N
    line = (f"{tag}: dW of snnc and SpikingJelly (snnc's init weights, seed 1) "
            f"{'agree' if ok_g else 'DO NOT AGREE'} within {CHECK_TOL:g}: max |difference| / max |dW| = "
            f"{res['grad_rel']:.1e} (max |dW| {res['grad_max_abs']:.4g}; elementwise, where |dW| > 1% of the max: "
            f"{res['grad_rel_elem']:.1e})\n"
            f"           spikes: snnc {res['snnc_spikes']:.0f}, SpikingJelly {res['spikingjelly_spikes']:.0f} "
            f"({res['spike_mismatch']} of {neurons} neuron steps differ), snnTorch {res['snntorch_spikes']:.0f} "
            f"(fires on mem > 1, snnc on >= 1); spike rate {100 * res['snnc_spikes'] / neurons:.2f}%"
            + ("" if ok_s else "; SPIKES DIFFER from SpikingJelly's")
            + ("" if res["pattern_same"] else "; the harness's input pattern differs from this program's"))
    res.update(agree_grad=ok_g, agree_spikes=ok_s)
    return line, res


# ---- main ----------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--snnc", help="the snnc binary (default: $SNNC, else build-bench/compiler/snnc, else the "
                                   "first build*/compiler/snnc, else PATH)")
    ap.add_argument("--python", default=sys.executable, help="Python with torch for the peers")
    ap.add_argument("--peers-dir", default=str(REPO / ".peers"),
                    help="folder with snntorch and spikingjelly (scripts/install-test-peers.sh)")
    ap.add_argument("--sizes", default="1024,4096", help="n of Linear(n, n)")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--frameworks", default="snnc,snntorch,spikingjelly")
    ap.add_argument("--targets", help="snnc targets (default: c and the best x86 target this CPU runs)")
    ap.add_argument("--rounds", type=int, default=3, help="rounds; each runs every configuration once")
    ap.add_argument("--repeats", type=int, default=5, help="timed calls at least (n < 2048)")
    ap.add_argument("--min-time", type=float, default=0.5, help="seconds of timed calls at least (n < 2048)")
    ap.add_argument("--warmup", type=float, default=0.2, help="seconds of warm-up calls, at least one (n < 2048)")
    ap.add_argument("--large-repeats", type=int, default=3,
                    help="timed calls at n >= 2048, after one warm-up call")
    ap.add_argument("--scale", type=float, default=1.5, help="the input pattern is in [0, SCALE)")
    ap.add_argument("--check-batch", type=int, default=4, help="batch of the gradient check")
    ap.add_argument("--no-check", action="store_true", help="skip the gradient check")
    ap.add_argument("--peak-seconds", type=float, default=0.2, help="seconds per run of bench/peak.c's loops")
    ap.add_argument("--omp-wait-policy", default="passive",
                    help="OMP_WAIT_POLICY for the peers and the harness ('default': leave it unset)")
    ap.add_argument("--json", help="also write all measurements to this file")
    # child modes
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--check-worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--check-dir", help=argparse.SUPPRESS)
    ap.add_argument("--framework", help=argparse.SUPPRESS)
    ap.add_argument("--n", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--nthreads", type=int, dest="threads_one", help=argparse.SUPPRESS)
    a = ap.parse_args()

    if a.worker or a.check_worker:
        sys.path.insert(0, a.peers_dir)
        a.threads = a.threads_one
        worker(a) if a.worker else check_worker(a)
        return

    started = time.time()
    sizes = [int(s) for s in a.sizes.split(",") if s]
    threads = [int(t) for t in a.threads.split(",") if t]
    fws = [f for f in a.frameworks.split(",") if f]
    peers = [f for f in fws if f != "snnc"]
    for f in fws:
        if f not in ("snnc", "snntorch", "spikingjelly"):
            raise SystemExit(f"unknown framework {f}; expected snnc, snntorch, spikingjelly")
    best = best_x86_target()
    targets = [t for t in (a.targets.split(",") if a.targets else ["c"] + ([best] if best else [])) if t]

    def env_for(nthreads):
        return thread_env(nthreads, a.omp_wait_policy, a.peers_dir)

    print("== machine ==")
    machine = [ln for ln in machine_report(a.python, env_for(1)) if not ln.startswith("peak est.")]
    for ln in machine:
        print(ln)
    print(f"load avg   {loadavg()} (before)")
    ccv = subprocess.run([CC, "--version"], capture_output=True, text=True).stdout.split("\n")[0]
    print(f"cc         {CC}: {ccv}")
    tflags = ", ".join(f"{t}: {' '.join(f) or 'none'}" for t, f in TARGET_FLAGS.items())
    print(f"snnc flags {' '.join(SNNC_CFLAGS)} + the target's ({tflags}), the generated code with "
          f"bench/train_harness.c")
    print(f"peers      threads {a.threads}; OMP/OPENBLAS/MKL_NUM_THREADS = torch.set_num_threads = that count "
          f"(snnc: OMP_NUM_THREADS); OMP_WAIT_POLICY "
          f"{'unset' if a.omp_wait_policy == 'default' else a.omp_wait_policy.upper()}")
    sys.stdout.flush()

    snnc = None
    if "snnc" in fws:
        cand = REPO / "build-bench" / "compiler" / "snnc"
        snnc = a.snnc or os.environ.get("SNNC") or (str(cand) if os.access(cand, os.X_OK) else find_snnc(None))
        ver = subprocess.run([snnc, "--version"], capture_output=True, text=True).stdout.strip()
        lst = subprocess.run([snnc, "--list-targets"], capture_output=True, text=True).stdout
        known = re.findall(r"^\s+(\w+)\s", lst, re.M)
        git = subprocess.run(["git", "-C", str(REPO), "log", "-1", "--format=%h %cs"], capture_output=True,
                             text=True).stdout.strip()
        dirty = [ln for ln in subprocess.run(["git", "-C", str(REPO), "status", "--porcelain",
                                              "--untracked-files=no"],
                                             capture_output=True, text=True).stdout.split("\n") if ln.strip()]
        print(f"snnc       {snnc}: {ver}; source tree at {git or '?'}"
              + (f" with {len(dirty)} changed files" if dirty else "")
              + f"; binary built {time.strftime('%Y-%m-%d %H:%M', time.localtime(os.path.getmtime(snnc)))}")
        print(f"targets    {', '.join(targets)} (snnc --list-targets: {', '.join(known) or '?'}; "
              f"best x86 target of this CPU: {best or 'none'})")
        for t in targets:
            if known and t not in known:
                raise SystemExit(f"snnc has no target {t}")

    report = dict(machine=machine, flags=dict(cc=CC, snnc=SNNC_CFLAGS, targets=TARGET_FLAGS, peak=PEAK_CFLAGS),
                  targets=targets, sizes={})
    with tempfile.TemporaryDirectory(prefix="snnc-linlif-") as tmpname:
        tmp = Path(tmpname)
        peak, fma1, ncores = report_peak(tmp, a.peak_seconds, report)
        sys.stdout.flush()

        if snnc and not a.no_check:
            print()
            print(f"== gradient check: Linear({CHECK_N}, {CHECK_N}) + LIF, T = {T}, sum of the spikes ==")
            report["check"] = {}
            for t in targets:
                line, report["check"][t] = check_gradient(snnc, t, a, tmp, env_for(1))
                print(line)
                sys.stdout.flush()

        summary = []
        for n in sizes:
            fl = call_flops(n)
            goal = goal_for(n)
            repeats, min_time, warmup = sized(n, a)
            print()
            print(f"== Linear({n}, {n}, bias = false) + LIF(tau = 2), T = {T}, batch {BATCH}: forward and backward "
                  f"of the sum of the spikes ==")
            print(f"FLOPs per call: forward x W^T and weight gradient gy^T x over T*B = {T * BATCH} rows, 2 per "
                  f"multiply-add: {fl / 1e9:.2f} GFLOP (neuron scans not counted); goal for snnc: "
                  f"{100 * goal:.0f}% of the FMA peak x threads")
            print(f"threads {a.threads}; {a.rounds} round(s), each running every configuration once in a fresh "
                  f"process; per process "
                  + (f"one warm-up call, then {repeats} timed calls" if n >= LARGE else
                     f"{warmup:g} s warm-up, then at least {repeats} timed calls and {min_time:g} s")
                  + "; median call per round, median over rounds")
            if "snntorch" in peers:
                print("snnTorch: the Linear runs once on all T*B rows (hoisted out of its time loop), the "
                      "Leaky neuron in a Python loop over T")
            sys.stdout.flush()
            exes = {}
            if snnc:
                for t in targets:
                    try:
                        exes[t] = build_snnc(snnc, n, BATCH, t, tmp / f"n{n}-{t}")
                    except RuntimeError as e:
                        print(f"  snnc {t}: {e}")
            configs = [("snnc", t, nt) for nt in threads for t in targets if t in exes]
            configs += [(fw, "", nt) for nt in threads for fw in peers]
            got, failed = {}, set()
            for rnd in range(a.rounds):
                print(f"  round {rnd + 1}/{a.rounds} (load avg {loadavg()}):", end="")
                sys.stdout.flush()
                for c in configs:
                    fw, tg, nt = c
                    if c in failed:
                        continue
                    if fw == "snnc":
                        r = run_harness(exes[tg], BATCH, repeats, min_time, warmup, a.scale, env_for(nt))
                    else:
                        cmd = [a.python, str(Path(__file__).resolve()), "--worker", "--framework", fw,
                               "--n", str(n), "--nthreads", str(nt), "--repeats", str(a.repeats),
                               "--min-time", str(a.min_time), "--warmup", str(a.warmup),
                               "--large-repeats", str(a.large_repeats), "--scale", repr(a.scale),
                               "--peers-dir", a.peers_dir]
                        p = subprocess.run(cmd, env=env_for(nt), capture_output=True, text=True)
                        r = (json.loads(p.stdout.strip().splitlines()[-1]) if p.returncode == 0 else
                             dict(error=f"failed ({p.returncode}): {p.stderr.strip()[-1500:]}"))
                    if "error" in r:
                        print(f"\n  {fw} {tg} {nt}T: {r['error']}")
                        failed.add(c)
                        continue
                    got.setdefault(c, []).append(r)
                    print(f" {fw}{'/' + tg if tg else ''}/{nt}T {1e3 * r['median']:.0f} ms", end="")
                    sys.stdout.flush()
                print()

            def med(c):
                return statistics.median(r["median"] for r in got[c])

            print()
            pcols = "".join(f"{p_[:12] + '/':>14}" for p_ in peers)
            print(f"{'framework':<13}{'target':<8}{'threads':>7}{'ms/call':>10}{'min':>9}{'max':>9}{'GFLOP/s':>9}"
                  f"{'% of':>7}{'goal':>14}{'spike':>7}{'cpu/':>6}{pcols}")
            print(f"{'':<13}{'':<8}{'':>7}{'median':>10}{'':>9}{'':>9}{'':>9}{'peak':>7}{'':>14}{'rate':>7}"
                  f"{'wall':>6}" + "".join(f"{'snnc':>14}" for _ in peers))
            rows = []
            for c in sorted(got, key=lambda c: (threads.index(c[2]), c[0] != "snnc", fws.index(c[0]),
                                               targets.index(c[1]) if c[1] in targets else 0)):
                fw, tg, nt = c
                rs = got[c]
                m = med(c)
                gf = fl / m / 1e9
                pk = fma1 * min(nt, ncores) if fma1 else None
                frac = gf / pk if pk else None
                ratios = {}
                if fw == "snnc":
                    for p_ in peers:
                        if (p_, "", nt) in got:
                            ratios[p_] = med((p_, "", nt)) / m
                    g = ("?" if frac is None else
                         f"met ({100 * goal:.0f}%)" if frac >= goal else f"MISSED ({100 * goal:.0f}%)")
                    summary.append((n, nt, tg, m, frac, goal, ratios))
                else:
                    g = ""
                sr = statistics.median(r["spikes"] / r["neurons"] for r in rs)
                cpu = statistics.median(r["cpu_share"] for r in rs)
                print(f"{fw:<13}{tg or '-':<8}{nt:>7}{1e3 * m:>10.1f}{1e3 * min(r['min'] for r in rs):>9.1f}"
                      f"{1e3 * max(r['max'] for r in rs):>9.1f}{gf:>9.1f}"
                      f"{(f'{100 * frac:.1f}%' if frac is not None else '?'):>7}{g:>14}{100 * sr:>6.2f}%"
                      f"{cpu:>6.2f}"
                      + "".join(f"{(f'{ratios[p_]:.2f}x' if p_ in ratios else ''):>14}" for p_ in peers))
                rows.append(dict(framework=fw, target=tg or None, threads=nt, n=n, ms_median=1e3 * m,
                                 ms_min=1e3 * min(r["min"] for r in rs), ms_max=1e3 * max(r["max"] for r in rs),
                                 gflops=gf, peak_fraction=frac, goal=goal if fw == "snnc" else None,
                                 spike_rate=sr, cpu_share=cpu, time_peer_over_snnc=ratios or None, rounds=rs))
            print(f"  ms/call: the median over rounds of each round's median call, min and max over all calls; "
                  f"GFLOP/s: {fl / 1e9:.2f}")
            print("  GFLOP over the median; % of peak: over the 1-thread FMA rate x threads; goal: the issue's "
                  "fraction for")
            print("  snnc; spike rate: spikes over neuron steps of the last call; cpu/wall: CPU time over wall "
                  "time of the")
            print("  timed calls (below the thread count: other work had the cores); PEER/snnc: the peer's "
                  "median time over")
            print("  snnc's at the same threads (above 1: snnc is faster).")
            sys.stdout.flush()
            report["sizes"][n] = rows

        if summary:
            print()
            print("== snnc against the goals and the peers (time_peer / time_snnc) ==")
            for n, nt, tg, m, frac, goal, ratios in summary:
                fr = f"{100 * frac:5.1f}%" if frac is not None else "    ?"
                ok = "?" if frac is None else "met" if frac >= goal else "missed"
                print(f"  n {n:>5}, {nt} thread{'s' if nt > 1 else ' '}, {tg:<7}: {1e3 * m:8.1f} ms, {fr} of peak, "
                      f"goal {100 * goal:.0f}% {ok:<6}"
                      + "".join(f"; {p_} {r_:.2f}x" for p_, r_ in ratios.items()))
    print()
    print(f"load avg   {loadavg()} (after); {time.time() - started:.0f} s in all")
    if a.json:
        Path(a.json).write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
