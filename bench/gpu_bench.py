#!/usr/bin/env python3
"""snnc's CUDA target on a GPU against SpikingJelly (CuPy) and snnTorch.

A benchmark program (run by hand, not a test; see bench/README.md), in two
halves, because the GPU machine may have no snnc, no network and little
time:

  gpu_bench.py prepare DIR   (where snnc runs) writes the networks' .cu and
                             .h into DIR, and copies SpikingJelly and
                             snnTorch (pure Python) from .peers/ into
                             DIR/peers;
  gpu_bench.py run DIR       (on the GPU machine: nvcc, cuBLAS, PyTorch 2
                             and CuPy) builds each network with
                             bench/gpu_harness.cu and times everything.

What `run` measures, each timing the median of at least 10 calls after
warm-up, synchronized (CUDA events around each call):

1. The ceilings: the fp32 matrix product rate (PyTorch's cuBLAS, 8192^3,
   TF32 off) and the device-to-device copy bandwidth (bytes read + written).
2. The Open Neuromorphic benchmark's setup: Linear(n, n, bias = false) +
   LIF (tau 2, threshold 1, hard reset to 0, sigmoid(4) surrogate), batch
   16, T = 500, n = 4096 and 16384, forward and backward of the sum of the
   spikes, the input (the pattern of bench/harness.h times 1.5) not
   requiring a gradient. snnc: `snnc compile --train --batch 16 --target
   cuda`, bench/gpu_harness.cu's `call`; SpikingJelly 0.0.0.0.14:
   layer.Linear + neuron.LIFNode, multi-step, backend 'cupy'; snnTorch
   0.9.4: the Linear hoisted over all T * B rows (as bench/linear_lif.py),
   snn.Leaky(beta 0.5) in a loop over T. The GEMM floor is the same run's
   time of the two products such a step cannot avoid (y = x W^T over the
   T * B rows, and dW = gy^T x), through PyTorch's cuBLAS in fp32. Peak
   device memory: PyTorch's max_memory_allocated for the peers (inputs
   included); for snnc what the harness allocates (workspace, input,
   dL/doutput) and, separately, the growth of the device's used memory
   (cuBLAS's workspace included). Before the timings, at n = 4096, the
   weight gradient of snnc and of SpikingJelly on snnc's weights and input
   are compared (the largest difference over the largest |dW|; spike
   counts).
3. The MLP and conv examples' training step (examples/fashion_mlp.snn,
   batch 128; examples/fashion_conv.snn, batch 64): snnc's `step` (forward,
   cross-entropy, backward, Adam, the data already on the device) against
   the peers' models of bench/train_throughput.py (hoisted variant, as snnc
   hoists the first layer) on random data already on the device, as
   samples per second.

Goals (issue 11): n = 4096 in at most half SpikingJelly-CuPy's time;
n = 16384 within 1.2x of the GEMM floor; peak memory at most
SpikingJelly's. The whole run must finish within 8 minutes.

Usage:
  gpu_bench.py prepare DIR [--snnc SNNC]
  gpu_bench.py run DIR [--out OUTDIR] [--sizes 4096,16384] [--skip-peers]
"""
import argparse
import concurrent.futures
import gc
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
T, BATCH = 500, 16
SIZES = (4096, 16384)
PRECISIONS = ("fp32", "tf32", "bf16")  # --precision of the Linear + LIF builds; the examples: fp32, bf16
EXAMPLES = {"mlp": ("fashion_mlp.snn", 128), "conv": ("fashion_conv.snn", 64)}
NVCC_FLAGS = ["-O3", "-arch=sm_90", "-fmad=false", "-Xcompiler", "-Wall,-Wextra", "-Werror", "all-warnings"]

NET_SNN = """\
network LinLIF {{
  timesteps {T};
  input x : [{n}] encode sequence;
  y = x |> dense({n}, bias = false) |> LIF(tau = 2.0);
  output y readout steps;
}}
"""


def log(*a):
    print(*a, flush=True)


# ---- prepare (where snnc runs) --------------------------------------------

def prepare(a):
    sys.path.insert(0, str(HERE))
    from benchutil import REPO, find_snnc
    snnc = find_snnc(a.snnc)
    d = Path(a.dir)
    d.mkdir(parents=True, exist_ok=True)
    nets = {}
    for n in SIZES:
        src = d / ("linlif%d.snn" % n)
        src.write_text(NET_SNN.format(T=T, n=n))
        for prec in PRECISIONS:
            nets[net_key("linlif%d" % n, prec)] = (src, BATCH, prec)
    for key, (f, b) in EXAMPLES.items():
        for prec in ("fp32", "bf16"):
            nets[net_key(key, prec)] = (REPO / "examples" / f, b, prec)
    for key, (src, b, prec) in nets.items():
        out = d / key
        if out.exists():
            shutil.rmtree(out)
        subprocess.run([snnc, "compile", str(src), "--train", "--batch", str(b), "--target", "cuda", "--precision", prec,
                        "-o", str(out)], check=True)
        log("%s: %s" % (key, " ".join(sorted(p.name for p in out.iterdir()))))
    (d / "nets.json").write_text(json.dumps({k: dict(batch=b, precision=prec) for k, (_, b, prec) in nets.items()}))
    peers = d / "peers"
    if peers.exists():
        shutil.rmtree(peers)
    for pkg in ("spikingjelly", "snntorch"):
        src = REPO / ".peers" / pkg
        if src.is_dir():
            shutil.copytree(src, peers / pkg, ignore=shutil.ignore_patterns("__pycache__", "examples", "datasets"))
        else:
            log("warning: %s is not in .peers/ (scripts/install-test-peers.sh): the GPU run will lack it" % pkg)
    size = sum(p.stat().st_size for p in d.rglob("*") if p.is_file())
    log("prepared %s: %d networks, %.1f MB" % (d, len(nets), size / 1e6))


def net_key(base, prec):
    """The folder of a build: linlif4096, linlif4096_bf16, mlp, mlp_bf16, ..."""
    return base if prec == "fp32" else "%s_%s" % (base, prec)


# ---- run (on the GPU machine) ---------------------------------------------

def header_prefix(folder):
    h = [p for p in Path(folder).iterdir() if p.suffix == ".h"][0]
    return h.stem


def build(d, key):
    folder = d / key
    p = header_prefix(folder)
    exe = folder / "harness"
    cmd = ["nvcc"] + NVCC_FLAGS + ["-DSNN_NET=%s" % p, "-DSNN_NET_UPPER=%s" % p.upper(),
                                   "-DSNN_HEADER=\"%s.h\"" % p, "-I", str(folder), "-I", str(HERE),
                                   str(HERE / "gpu_harness.cu"), str(folder / (p + ".cu")), "-lcublas", "-o", str(exe)]
    t0 = time.time()
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError("nvcc %s:\n%s" % (key, (r.stdout + r.stderr)[-3000:]))
    return key, time.time() - t0


def harness(d, key, mode, batch, repeats, warmup, extra=()):
    r = subprocess.run([str(d / key / "harness"), mode, str(batch), str(repeats), str(warmup)] + list(extra),
                       capture_output=True, text=True, timeout=300)
    if r.returncode != 0:
        raise RuntimeError("harness %s %s (exit %d): %s" % (key, mode, r.returncode, (r.stdout + r.stderr)[-2000:]))
    return json.loads(r.stdout.strip().splitlines()[-1])


def cuda_time(fn, repeats=10, warmup=3):
    """Median seconds of fn() between two CUDA events, after warmup calls."""
    import torch
    e0, e1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    times = []
    for i in range(warmup + repeats):
        e0.record()
        fn()
        e1.record()
        e1.synchronize()
        if i >= warmup:
            times.append(e0.elapsed_time(e1) * 1e-3)
    return statistics.median(times), min(times), max(times)


def ceilings():
    import torch
    torch.backends.cuda.matmul.allow_tf32 = False
    n = 8192
    a = torch.randn(n, n, device="cuda")
    b = torch.randn(n, n, device="cuda")
    med, _, _ = cuda_time(lambda: a @ b)
    x = torch.empty(1 << 29, dtype=torch.uint8, device="cuda").random_()  # 512 MiB
    y = torch.empty_like(x)
    cmed, _, _ = cuda_time(lambda: y.copy_(x))
    return dict(fp32_gemm_tflops=2 * n ** 3 / med / 1e12, copy_tb_s=2 * x.numel() / cmed / 1e12)


def gemm_floor(n):
    """The two products of the step at size n, through PyTorch's cuBLAS."""
    import torch
    torch.backends.cuda.matmul.allow_tf32 = False
    x = torch.rand(T * BATCH, n, device="cuda")
    w = torch.rand(n, n, device="cuda")
    gy = torch.rand(T * BATCH, n, device="cuda")
    fwd = cuda_time(lambda: x @ w.t())[0]
    dw = cuda_time(lambda: gy.t() @ x)[0]
    return dict(forward=fwd, weight_grad=dw, floor=fwd + dw, gflop=2 * 2 * T * BATCH * n * n / 1e9)


def peer_main(a):
    """In a child process: one framework's measurements, one JSON line each."""
    import numpy as np
    for alias, t in (("int", int), ("float", float), ("bool", bool)):  # SpikingJelly 0.0.0.0.14 uses np.int
        if alias not in vars(np):
            setattr(np, alias, t)
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.manual_seed(1)
    fw = a.framework

    def pattern(count):
        """bench/harness.h's input pattern (bench/infer_throughput.py's pattern)."""
        u = np.uint64
        z = u(12345) + np.arange(1, count + 1, dtype=u) * u(0x9E3779B97F4A7C15)
        z = (z ^ (z >> u(30))) * u(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> u(27))) * u(0x94D049BB133111EB)
        z ^= z >> u(31)
        return (z >> u(40)).astype(np.float32) * np.float32(1.0 / 16777216.0)

    def linlif(n):
        if fw == "spikingjelly":
            from spikingjelly.activation_based import neuron, layer, surrogate, functional
            net = nn.Sequential(layer.Linear(n, n, bias=False),
                                neuron.LIFNode(tau=2.0, decay_input=True, v_threshold=1.0, v_reset=0.0,
                                               surrogate_function=surrogate.Sigmoid(alpha=4.0), detach_reset=False,
                                               step_mode="m", backend="cupy")).cuda()
            functional.set_step_mode(net, "m")

            def fwd(x):
                return net(x)

            def after():
                functional.reset_net(net)
        else:
            import snntorch as snn
            from snntorch import surrogate as sgm
            fc = nn.Linear(n, n, bias=False).cuda()
            lif = snn.Leaky(beta=0.5, threshold=1.0, spike_grad=sgm.sigmoid(slope=4), reset_mechanism="zero")
            net = nn.ModuleList([fc, lif]).cuda()

            def fwd(x):
                cur = (fc(x.reshape(T * BATCH, n)) * 0.5).reshape(T, BATCH, n)
                mem = lif.init_leaky()
                out = []
                for t in range(T):
                    spk, mem = lif(cur[t], mem)
                    out.append(spk)
                return torch.stack(out)

            def after():
                pass
        return net, fwd, after

    def one_call(net, fwd, after, x):
        for p in net.parameters():
            p.grad = None
        y = fwd(x)
        y.sum().backward()
        after()
        return y

    if a.check:  # snnc's weights and input, SpikingJelly's dW
        n = a.check_n
        net, fwd, after = linlif(n)
        w = np.fromfile(os.path.join(a.check, "p0.bin"), dtype=np.float32).reshape(n, n)
        g = np.fromfile(os.path.join(a.check, "g0.bin"), dtype=np.float32).reshape(n, n)
        x = np.fromfile(os.path.join(a.check, "input.bin"), dtype=np.float32).reshape(T, BATCH, n)
        with torch.no_grad():
            list(net.parameters())[0].copy_(torch.from_numpy(w))
        y = one_call(net, fwd, after, torch.from_numpy(x).cuda())
        torch.cuda.synchronize()
        gp = list(net.parameters())[0].grad.cpu().numpy()
        print(json.dumps(dict(kind="check", framework=fw, n=n, spikes=float(y.sum().item()),
                              max_abs_diff=float(np.abs(gp - g).max()), max_abs_grad=float(np.abs(g).max()))),
              flush=True)
        del net, y
        torch.cuda.empty_cache()

    for n in a.sizes:
        try:
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
            net, fwd, after = linlif(n)
            x = torch.from_numpy(pattern(T * BATCH * n) * np.float32(1.5)).reshape(T, BATCH, n).cuda()
            med, lo, hi = cuda_time(lambda: one_call(net, fwd, after, x), repeats=10, warmup=2)
            print(json.dumps(dict(kind="linlif", framework=fw, n=n, median=med, min=lo, max=hi,
                                  peak_bytes=torch.cuda.max_memory_allocated())), flush=True)
            net = fwd = after = x = None  # noqa: F841 (freed before the next size)
            gc.collect()
        except Exception as ex:  # one size failing leaves the others
            print(json.dumps(dict(kind="linlif", framework=fw, n=n, error=repr(ex)[:500])), flush=True)

    sys.path.insert(0, str(HERE))
    torch.set_default_device("cuda")
    import train_throughput as tt
    for key in a.nets:
        try:
            gc.collect()
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
            B = EXAMPLES[key][1]
            model, logits, after = tt.build_peer(fw, key, True, backend="cupy")
            model.train()
            opt = torch.optim.Adam(model.parameters(), lr=1e-3)
            xs = [(torch.rand(B, 1, 28, 28) - 0.2860) / 0.3530 for _ in range(4)]
            ys = [torch.randint(0, 10, (B,)) for _ in range(4)]
            it = [0]

            def step():
                i = it[0] % 4
                it[0] += 1
                loss = F.cross_entropy(logits(xs[i]), ys[i])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                after()

            med, lo, hi = cuda_time(step, repeats=30, warmup=5)
            print(json.dumps(dict(kind="train", framework=fw, net=key, batch=B, median=med, min=lo, max=hi,
                                  samples_per_s=B / med, peak_bytes=torch.cuda.max_memory_allocated())), flush=True)
        except Exception as ex:
            print(json.dumps(dict(kind="train", framework=fw, net=key, error=repr(ex)[:500])), flush=True)


def run_peer(d, framework, sizes, nets, check=None, timeout=240):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(d / "peers"), str(HERE)] + ([env["PYTHONPATH"]]
                                                                          if env.get("PYTHONPATH") else []))
    env["PYTHONUNBUFFERED"] = "1"
    cmd = [sys.executable, str(Path(__file__).resolve()), "peer", str(d), "--framework", framework,
           "--sizes", ",".join(map(str, sizes)), "--nets", ",".join(nets)]
    if check:
        cmd += ["--check", check, "--check-n", "4096"]
    rows = []
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
        out, err, rc = r.stdout, r.stderr, r.returncode
    except subprocess.TimeoutExpired as ex:
        out = ex.stdout.decode() if isinstance(ex.stdout, bytes) else (ex.stdout or "")
        err, rc = "timed out after %d s" % timeout, -1
    for line in out.splitlines():
        if line.startswith("{"):
            rows.append(json.loads(line))
    if rc != 0:
        log("%s: exit %d: %s" % (framework, rc, err[-1500:]))
    return rows


def run(a):
    import torch
    d = Path(a.dir).resolve()
    out = Path(a.out) if a.out else None
    if out:
        out.mkdir(parents=True, exist_ok=True)
    res = dict(sizes=a.sizes)
    t_start = time.time()

    def save():
        if out:
            (out / "gpu_bench.json").write_text(json.dumps(res, indent=1))

    smi = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total,clocks.max.sm",
                          "--format=csv,noheader"], capture_output=True, text=True)
    res["gpu"] = smi.stdout.strip()
    res["torch"] = torch.__version__
    nv = subprocess.run(["nvcc", "--version"], capture_output=True, text=True).stdout.strip().splitlines()
    res["nvcc"] = nv[-1] if nv else "?"
    log("GPU: %s; torch %s; nvcc %s" % (res["gpu"], res["torch"], res["nvcc"]))

    nets = json.loads((d / "nets.json").read_text())
    keys = [k for k in nets if not k.startswith("linlif") or int(k[6:].split("_")[0]) in a.sizes]
    with concurrent.futures.ThreadPoolExecutor(len(keys)) as ex:
        futs = [ex.submit(build, d, k) for k in keys]
        built = []
        for f in futs:
            try:
                k, s = f.result()
                built.append(k)
                log("built %s in %.1f s" % (k, s))
            except Exception as e:
                log("BUILD FAILED: %s" % e)
    res["ceilings"] = ceilings()
    log("ceilings: fp32 GEMM %.1f TFLOP/s, copy %.2f TB/s" % (res["ceilings"]["fp32_gemm_tflops"],
                                                           res["ceilings"]["copy_tb_s"]))
    save()

    # snnc
    res["snnc"] = {}
    check_dir = Path("/tmp/gpu_bench_check")
    check_dir.mkdir(exist_ok=True)
    for n in a.sizes:
        res["floor%d" % n] = gemm_floor(n)
        torch.cuda.empty_cache()  # the floor's operands
        for prec in PRECISIONS:
            k = net_key("linlif%d" % n, prec)
            if k not in built:
                continue
            try:
                extra = ["--dump", str(check_dir)] if n == 4096 and prec == "fp32" else []
                res["snnc"][k] = harness(d, k, "call", BATCH, 10, 3, extra)
            except Exception as e:
                res["snnc"][k] = dict(error=str(e)[:1000])
            log("%s: snnc %s; floor %s" % (k, res["snnc"][k], res["floor%d" % n]))
            save()
    for k in [k for k in built if not k.startswith("linlif")]:
        try:
            res["snnc"][k] = harness(d, k, "step", nets[k]["batch"], 50, 10)
        except Exception as e:
            res["snnc"][k] = dict(error=str(e)[:1000])
        log("%s: snnc %s" % (k, res["snnc"][k]))
    save()

    # the peers, a child process each
    res["peers"] = []
    if not a.skip_peers:
        for fw in ("spikingjelly", "snntorch"):
            check = (str(check_dir) if fw == "spikingjelly" and 4096 in a.sizes and (check_dir / "g0.bin").exists()
                     else None)
            rows = run_peer(d, fw, a.sizes, [k for k in EXAMPLES if k in nets], check=check)
            for r in rows:
                log("%s: %s" % (fw, r))
            res["peers"] += rows
            save()
    res["seconds"] = time.time() - t_start
    save()
    report(res)


def report(res):
    peers = {(r["framework"], r.get("n") or r.get("net")): r for r in res["peers"] if r["kind"] != "check"}
    log("\n== GPU: %s; torch %s; %s" % (res["gpu"], res["torch"], res["nvcc"]))
    c = res["ceilings"]
    log("ceilings: fp32 GEMM (cuBLAS via torch, 8192^3, no TF32) %.1f TFLOP/s; copy %.2f TB/s"
        % (c["fp32_gemm_tflops"], c["copy_tb_s"]))
    for r in res["peers"]:
        if r["kind"] == "check":
            log("check n=%d: SpikingJelly's dW on snnc's weights and input: max |diff| %.3g of max |dW| %.3g "
                "(%.2g relative); its spikes %d" % (r["n"], r["max_abs_diff"], r["max_abs_grad"],
                                                    r["max_abs_diff"] / max(r["max_abs_grad"], 1e-30), r["spikes"]))
    log("\nLinear(n, n) + LIF, batch %d, T = %d, forward + backward (ms, median; peak MB)" % (BATCH, T))
    log("%-7s %10s %10s %10s %10s %9s %9s %9s %9s %9s" % ("n", "floor", "snnc", "SJ-CuPy", "snnTorch", "snnc/floor",
                                                          "SJ/snnc", "mem snnc", "mem SJ", "mem snnT"))
    for n, prec in [(n, p) for n in res["sizes"] for p in PRECISIONS]:
        s = res["snnc"].get(net_key("linlif%d" % n, prec), {})
        if not s:
            continue
        f = res.get("floor%d" % n, {})
        sj, st = peers.get(("spikingjelly", n), {}), peers.get(("snntorch", n), {})

        def ms(r):
            return "%.2f" % (1e3 * r["median"]) if "median" in r else "-"

        def mb(r, key="peak_bytes"):
            return "%.0f" % (r[key] / 2 ** 20) if key in r else "-"
        log("%-7s %10s %10s %10s %10s %9s %9s %9s %9s %9s" % (
            "%d%s" % (n, "" if prec == "fp32" else " " + prec), "%.2f" % (1e3 * f["floor"]) if "floor" in f else "-", ms(s), ms(sj), ms(st),
            "%.3f" % (s["median"] / f["floor"]) if "median" in s and "floor" in f else "-",
            "%.2f" % (sj["median"] / s["median"]) if "median" in s and "median" in sj else "-",
            mb(s, "alloc_bytes"), mb(sj), mb(st)))
        if "median" in s:
            ref = res["snnc"].get("linlif%d" % n, {})
            log("        snnc %s: forward %.2f ms, backward %.2f ms; %.1f TFLOP/s on the two products; device memory "
                "growth %.0f MB; spikes %d of %d; sum of dW %.6g (fp32: %.6g)"
                % (prec, 1e3 * s["forward_median"], 1e3 * (s["median"] - s["forward_median"]),
                   f.get("gflop", 0) / s["median"] / 1e3, s["device_bytes"] / 2 ** 20, s["spikes"], s["neurons"],
                   s["grad_sum"], ref.get("grad_sum", 0)))
        elif "error" in s:
            log("        snnc %s: %s" % (prec, s["error"][:300]))
    log("\nTraining steps on the device (samples/s, median step; peak MB)")
    for k in [k for k in res["snnc"] if not k.startswith("linlif")]:
        s = res["snnc"].get(k, {})
        row = ["%-9s" % k, "snnc %s" % ("%.0f" % (s["batch"] / s["median"]) if "median" in s else s.get("error", "-"))]
        for fw in ("spikingjelly", "snntorch"):
            r = peers.get((fw, k.split("_")[0]), {})
            if "samples_per_s" in r:
                row.append("%s %.0f (snnc/%s %.2fx, %.0f MB)" % (fw, r["samples_per_s"], fw, r["median"] / s["median"]
                                                                 if "median" in s else 0, r["peak_bytes"] / 2 ** 20))
            elif r:
                row.append("%s: %s" % (fw, r.get("error", "?")[:200]))
        if "alloc_bytes" in s:
            row.append("snnc %.0f MB" % (s["alloc_bytes"] / 2 ** 20))
        log("  ".join(row))
    log("\nwhole run: %.0f s" % res["seconds"])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("prepare")
    p.add_argument("dir")
    p.add_argument("--snnc")
    r = sub.add_parser("run")
    r.add_argument("dir")
    r.add_argument("--out")
    r.add_argument("--sizes", default=",".join(map(str, SIZES)))
    r.add_argument("--skip-peers", action="store_true")
    q = sub.add_parser("peer")  # internal: one framework in a child process
    q.add_argument("dir")
    q.add_argument("--framework", required=True)
    q.add_argument("--sizes", default="")
    q.add_argument("--nets", default="")
    q.add_argument("--check")
    q.add_argument("--check-n", type=int, default=4096)
    a = ap.parse_args()
    if a.cmd == "prepare":
        prepare(a)
    elif a.cmd == "run":
        a.sizes = [int(s) for s in a.sizes.split(",") if s]
        run(a)
    else:
        a.sizes = [int(s) for s in a.sizes.split(",") if s]
        a.nets = [s for s in a.nets.split(",") if s]
        peer_main(a)


if __name__ == "__main__":
    main()
