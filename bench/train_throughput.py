#!/usr/bin/env python3
"""Training throughput on the CPU: snnc against snnTorch and SpikingJelly.

A benchmark program (run by hand, not a test; see bench/README.md). It
trains the same two networks with the same timesteps T, batch size and
number of optimizer steps in the three frameworks, on the same Fashion-MNIST
samples, and prints training samples per second, the ratio snnc / peer, and
the FLOP rate each framework reaches:

  mlp   examples/fashion_mlp.snn: 784-512-10, LIF hidden layer, LI readout
        (mean membrane), T = 8, batch 128, cross-entropy, Adam lr 1e-3
  conv  examples/fashion_conv.snn: conv32-BN-LIF-maxpool x 2, dropout 0.2,
        dense 256 LIF, LI readout (mean membrane), T = 4, batch 64, Adam 1e-3

What one training step is, in every framework: gather a batch from the
normalized training set held in memory, the forward over all T steps, the
loss, the backward (BPTT), and the Adam update. Data files are read before
any timing starts; no evaluation is timed.

- snnc: `snnc train` on a generated .snn with a train block, with
  --train-limit STEPS*BATCH, so that one epoch is exactly STEPS steps, and
  --epochs 2. snnc times each epoch itself (the epoch's training loop only:
  batches, forward, loss, backward, optimizer; the evaluation on the
  --test-limit samples that follows each epoch is outside that time) and
  writes it to metrics.csv (seconds, samples_per_s), which this program
  reads. Epoch 1 is the warm-up, epoch 2 is timed; the generated code is
  compiled before epoch 1. snnc runs at each thread count of --threads
  (its --threads option), and its row at a thread count is compared with
  the peers' rows at the same count. --snnc-targets llvm,c,avx512 runs
  snnc once per target (a row "snnc/TARGET" each; the first is the one the
  peers are compared with), each at every thread count.
- peers: a child Python process per (framework, threads, variant), with
  OMP/OpenBLAS/MKL thread variables and torch.set_num_threads set to the
  thread count; --warmup steps (5) of warm-up, then one timed repeat of
  STEPS steps (time.perf_counter around its loop).

Every configuration runs once per round, in a fresh process, and the rounds
are repeated (--rounds): a burst of other load on the machine then hits one
round of every framework rather than all of one framework's measurements.
The medians over rounds are reported, with min and max; other work on the
machine still disturbs the timings, and the load average is printed at the
start of every round.

Two ways of writing each peer model are timed:
- "per-step": every layer runs at every step, as in the frameworks' own
  examples (SpikingJelly's conv_fashion_mnist repeats the image T times;
  snnTorch's tutorials call fc1(x) inside the time loop);
- "hoisted": the first synaptic layer (and its batchnorm), whose input is
  the same image at every step, runs once and its output is reused for all
  T steps. snnc does this itself (the `hoist` pass), so this variant does
  the same arithmetic as snnc.
"""
import argparse
import gzip
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchutil import REPO, choices, find_snnc

# Debian's dataset-fashion-mnist installs the four gzipped IDX files here.
DEBIAN_FASHION_MNIST = "/usr/share/datasets/fashion-mnist"
MEAN, STD = 0.2860, 0.3530  # the normalization of the examples' train blocks
LR = 1e-3

# ---- the two networks ----------------------------------------------------

MLP_SNN = """\
network FashionMLP {{
  timesteps {T};
  input  img : [1, 28, 28] encode direct;
  h1  = img |> flatten |> dense(512) |> LIF(tau = 2.0);
  out = h1  |> dense(10)  |> LI(tau = 2.0);
  output out readout mean;
}}
"""

CONV_SNN = """\
network FashionConv {{
  timesteps {T};
  input img : [1, 28, 28] encode direct;
  c1  = img |> conv2d(32, 3, padding = 1, bias = false) |> batchnorm() |> LIF() |> maxpool(2);
  c2  = c1  |> conv2d(32, 3, padding = 1, bias = false) |> batchnorm() |> LIF() |> maxpool(2);
  fc  = c2  |> flatten |> dropout(0.2) |> dense(256) |> LIF();
  out = fc  |> dense(10) |> LI();
  output out readout mean;
}}
"""

TRAIN_BLOCK = """
train {name} {{
  data fashion_mnist(mean = {mean}, std = {std});
  loss cross_entropy;
  optimizer adam(lr = {lr});
  epochs {epochs}; batch {batch}; seed 1;
}}
"""

# Synaptic layers: (name, multiply-adds per sample and step, input-invariant
# with direct encoding). Only the first layer's input is the image.
NETS = {
    "mlp": dict(name="FashionMLP", T=8, batch=128, steps=50, snn=MLP_SNN,
                desc="784-512-10 LIF, LI readout (mean membrane)",
                layers=[("h1_dense", 784 * 512, True), ("out_dense", 512 * 10, False)]),
    "conv": dict(name="FashionConv", T=4, batch=64, steps=20, snn=CONV_SNN,
                 desc="conv32-BN-LIF-pool x2, dropout, 1568-256 LIF, LI readout (mean membrane)",
                 layers=[("c1_conv2d", 28 * 28 * 32 * 1 * 9, True),
                         ("c2_conv2d", 14 * 14 * 32 * 32 * 9, False),
                         ("fc_dense", 1568 * 256, False),
                         ("out_dense", 256 * 10, False)]),
}


def step_flops(net, hoisted):
    """FLOPs (2 per multiply-add) of the dense and conv layers in one
    training step: forward, weight gradient, and input gradient (not for the
    first layer, whose input is the data). With `hoisted`, the invariant
    first layer's forward and weight gradient count once instead of T times.
    Neurons, batchnorm, pooling, loss and optimizer are not counted."""
    T, B = net["T"], net["batch"]
    total = 0
    for i, (_, macs, invariant) in enumerate(net["layers"]):
        t_eff = 1 if (hoisted and invariant) else T
        total += 2 * macs * B * t_eff * 2          # forward + weight gradient
        if i > 0:
            total += 2 * macs * B * T              # input gradient
    return total


# ---- data ----------------------------------------------------------------

def read_idx(path):
    import numpy as np
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as f:
        raw = f.read()
    magic = int.from_bytes(raw[0:4], "big")
    if magic >> 8 != 0x08:
        raise SystemExit(f"{path}: not an IDX file of unsigned bytes")
    ndim = magic & 0xFF
    shape = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def find_idx(folder, stem):
    for name in (stem + ".gz", stem):
        p = Path(folder) / name
        if p.exists():
            return p
    raise SystemExit(f"{folder}: no {stem}[.gz] (install Debian's dataset-fashion-mnist or give --data DIR)")


def load_train(folder, n):
    """The first n training samples, normalized as snnc's IDX loader does:
    (byte / 255 - mean) / std, as a float32 tensor [n, 1, 28, 28]."""
    import numpy as np
    import torch
    x = read_idx(find_idx(folder, "train-images-idx3-ubyte"))[:n]
    y = read_idx(find_idx(folder, "train-labels-idx1-ubyte"))[:n]
    x = ((x.astype(np.float32) / np.float32(255.0)) - np.float32(MEAN)) / np.float32(STD)
    return torch.from_numpy(x.reshape(n, 1, 28, 28).copy()), torch.from_numpy(y.astype(np.int64))


# ---- peer models ---------------------------------------------------------

def build_peer(framework, netkey, hoist, backend="torch"):
    """Returns (model, forward(x) -> logits, after_step()). The LIF of every
    framework is set as close to snnc's LIF(tau = 2) as it allows. backend:
    SpikingJelly's neuron backend ("cupy" on a GPU, bench/gpu_bench.py).
    Tensors are made on torch's default device."""
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
    T = NETS[netkey]["T"]

    if framework == "spikingjelly":
        # SpikingJelly's LIFNode is the reference of snnc's LIF: tau 2,
        # decay_input, v_th 1, hard reset to 0, sigmoid(4) surrogate,
        # reset not detached. Multi-step mode, torch backend.
        from spikingjelly.activation_based import neuron, layer, surrogate, functional

        def lif():
            return neuron.LIFNode(tau=2.0, decay_input=True, v_threshold=1.0, v_reset=0.0,
                                  surrogate_function=surrogate.Sigmoid(alpha=4.0),
                                  detach_reset=False, step_mode="m", backend=backend)

        class LIReadout(nn.Module):
            """SpikingJelly has no non-spiking leaky integrator; this is
            snnc's LI: v = v + (x - v) / tau, emitting v at every step."""

            def __init__(self, tau):
                super().__init__()
                self.tau = tau

            def forward(self, x_seq):
                v = torch.zeros_like(x_seq[0])
                out = []
                for t in range(x_seq.shape[0]):
                    v = v + (x_seq[t] - v) / self.tau
                    out.append(v)
                return torch.stack(out)

        if netkey == "mlp":
            pre = nn.Sequential(layer.Flatten(), layer.Linear(784, 512))
            body = nn.Sequential(lif(), layer.Linear(512, 10), LIReadout(2.0))
        else:
            pre = nn.Sequential(layer.Conv2d(1, 32, 3, padding=1, bias=False), layer.BatchNorm2d(32))
            body = nn.Sequential(lif(), layer.MaxPool2d(2, 2),
                                 layer.Conv2d(32, 32, 3, padding=1, bias=False), layer.BatchNorm2d(32),
                                 lif(), layer.MaxPool2d(2, 2),
                                 layer.Flatten(), layer.Dropout(0.2),  # one mask per sequence in 'm' mode
                                 layer.Linear(1568, 256), lif(),
                                 layer.Linear(256, 10), LIReadout(2.0))
        functional.set_step_mode(pre, "s" if hoist else "m")
        functional.set_step_mode(body, "m")
        model = nn.Sequential(pre, body)

        def forward(x):
            if hoist:
                y = pre(x)
                seq = y.unsqueeze(0).expand(T, *y.shape)
            else:
                seq = pre(x.unsqueeze(0).repeat(T, 1, 1, 1, 1))
            return body(seq)

        def after_step():
            functional.reset_net(model)

    elif framework == "snntorch":
        # snn.Leaky(beta = 0.5, reset "zero") with its input scaled by
        # 1 - beta gives snnc's LIF(tau = 2) potential before reset exactly
        # (SNNTORCH_NOTES.md); remaining differences: snnTorch fires on
        # mem > 1 (snnc: >=) and detaches the reset. Surrogate: sigmoid with
        # slope 4, the same derivative as snnc's sigmoid(4). Time-major
        # loop, as snnTorch's tutorials write it.
        import snntorch as snn
        from snntorch import surrogate as sgm
        sg = sgm.sigmoid(slope=4)
        beta = 0.5

        def leaky(reset="zero"):
            return snn.Leaky(beta=beta, threshold=1.0, spike_grad=sg, reset_mechanism=reset)

        if netkey == "mlp":
            class Net(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.fc1, self.lif1 = nn.Linear(784, 512), leaky()
                    self.fc2, self.li = nn.Linear(512, 10), leaky("none")  # LI readout

                def forward(self, x):
                    x = x.flatten(1)
                    mem1, mem2 = self.lif1.init_leaky(), self.li.init_leaky()
                    c1 = self.fc1(x) * (1 - beta) if hoist else None
                    out = []
                    for _ in range(T):
                        cur1 = c1 if hoist else self.fc1(x) * (1 - beta)
                        spk1, mem1 = self.lif1(cur1, mem1)
                        _, mem2 = self.li(self.fc2(spk1) * (1 - beta), mem2)
                        out.append(mem2)
                    return torch.stack(out)
        else:
            class Net(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.conv1 = nn.Conv2d(1, 32, 3, padding=1, bias=False)
                    self.bn1, self.lif1 = nn.BatchNorm2d(32), leaky()
                    self.conv2 = nn.Conv2d(32, 32, 3, padding=1, bias=False)
                    self.bn2, self.lif2 = nn.BatchNorm2d(32), leaky()
                    self.fc, self.lif3 = nn.Linear(1568, 256), leaky()
                    self.out, self.li = nn.Linear(256, 10), leaky("none")  # LI readout

                def forward(self, x):
                    m1, m2, m3, m4 = (n.init_leaky() for n in (self.lif1, self.lif2, self.lif3, self.li))
                    # dropout: one mask per sequence, as snnc and SpikingJelly draw it
                    mask = F.dropout(torch.ones(x.shape[0], 1568, device=x.device), 0.2, self.training)
                    a1 = self.bn1(self.conv1(x)) * (1 - beta) if hoist else None
                    out = []
                    for _ in range(T):
                        a = a1 if hoist else self.bn1(self.conv1(x)) * (1 - beta)
                        s1, m1 = self.lif1(a, m1)
                        # batchnorm here normalizes over the batch of this
                        # step (snnc and SpikingJelly: over all T steps)
                        s2, m2 = self.lif2(self.bn2(self.conv2(F.max_pool2d(s1, 2))) * (1 - beta), m2)
                        h = F.max_pool2d(s2, 2).flatten(1) * mask
                        s3, m3 = self.lif3(self.fc(h) * (1 - beta), m3)
                        _, m4 = self.li(self.out(s3) * (1 - beta), m4)
                        out.append(m4)
                    return torch.stack(out)
        model = Net()
        forward = model

        def after_step():
            pass
    else:
        raise SystemExit(f"unknown framework {framework}")

    def logits(x):
        return forward(x).mean(0)  # the LI readout's mean membrane

    return model, logits, after_step


def worker(a):
    """One peer measurement in this (child) process; prints one JSON line."""
    import torch
    import torch.nn.functional as F
    torch.set_num_threads(a.threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass
    torch.manual_seed(1)
    net = NETS[a.net]
    B, S = net["batch"], a.steps
    X, Y = load_train(a.data, S * B)
    model, logits, after_step = build_peer(a.framework, a.net, a.variant == "hoisted")
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    losses = []
    g = torch.Generator().manual_seed(1)

    def batches():
        """Endless epochs over the S*B samples, each in a new random order."""
        while True:
            perm = torch.randperm(S * B, generator=g)
            for i in range(S):
                yield perm[i * B:(i + 1) * B]

    it = batches()

    def run_repeat(steps):
        c0, t0 = time.process_time(), time.perf_counter()
        for _ in range(steps):
            idx = next(it)
            x, y = X[idx], Y[idx]
            loss = F.cross_entropy(logits(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            after_step()
            losses.append(loss.item())
        wall = time.perf_counter() - t0
        cpu_share.append((time.process_time() - c0) / wall)
        return wall

    cpu_share = []
    run_repeat(a.warmup)  # warm-up
    secs = [run_repeat(S) for _ in range(a.repeats)]
    print(json.dumps(dict(rates=[S * B / s for s in secs], seconds=secs, cpu_share=cpu_share[1:],
                          losses=losses,
                          threads=torch.get_num_threads())))


# ---- snnc ----------------------------------------------------------------

def run_snnc(snnc, netkey, a, env, threads, target=None):
    """snnc's default pipeline, with --target `target` when given. (There is
    no per-step variant: the training code stores values computed from the
    direct-encoded input once, whether or not the hoist pass ran.)"""
    net = NETS[netkey]
    B, S = net["batch"], a.steps[netkey]
    with tempfile.TemporaryDirectory(prefix="snnc-bench-") as tmp:
        src = Path(tmp) / f"{netkey}.snn"
        src.write_text(net["snn"].format(T=net["T"]) +
                       TRAIN_BLOCK.format(name=net["name"], mean=MEAN, std=STD, lr=LR,
                                          epochs=2, batch=B))
        out = Path(tmp) / "out"
        steplog = Path(tmp) / "steps.csv"
        cmd = [snnc, "train", str(src), "--data", a.data, "--train-limit", str(S * B),
               "--test-limit", str(B), "-o", str(out), "--step-log", str(steplog), "--threads", str(threads)]
        if target:
            cmd += ["--target", target]
        p = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if p.returncode != 0:
            return dict(error=f"snnc train failed ({p.returncode}): {p.stderr.strip()[-2000:]}"
                        .replace(str(REPO) + os.sep, ""))
        rows = [ln.split(",") for ln in (out / "metrics.csv").read_text().splitlines()[1:] if ln]
        # columns: epoch,lr,train_loss,train_acc,test_loss,test_acc,spike_rate,seconds,samples_per_s
        secs = [float(r[7]) for r in rows]
        rates = [float(r[8]) for r in rows]
        losses = [float(ln.split(",")[2]) for ln in steplog.read_text().splitlines()[1:] if ln]
        return dict(rates=rates[1:], seconds=secs[1:], warmup_seconds=secs[0], losses=losses)


# ---- machine -------------------------------------------------------------

def machine_report(python, peers_env):
    lines = []
    info = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    model = re.search(r"^model name\s*:\s*(.*)$", info, re.M)
    mhz = re.search(r"^cpu MHz\s*:\s*(.*)$", info, re.M)
    flags = set((re.search(r"^flags\s*:\s*(.*)$", info, re.M) or re.match("()", "")).group(1).split())
    ncpu = os.cpu_count()
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = ncpu
    lines.append(f"date       {time.strftime('%Y-%m-%d %H:%M %Z')}")
    lines.append(f"host       {platform.system()} {platform.release()} {platform.machine()}, Python {platform.python_version()}")
    lines.append(f"cpu        {model.group(1) if model else platform.processor() or '?'}"
                 + (f", {float(mhz.group(1)):.0f} MHz reported" if mhz else ""))
    lines.append(f"cores      {ncpu} logical, {usable} usable by this process")
    avx512 = sorted(f for f in flags if f.startswith("avx512"))
    lines.append(f"simd       AVX2 {'yes' if 'avx2' in flags else 'no'}, FMA {'yes' if 'fma' in flags else 'no'}, "
                 f"AVX-512 {'yes (' + ' '.join(avx512) + ')' if avx512 else 'no'}")
    if mhz:
        width = 16 if avx512 else 8
        lines.append(f"peak est.  {float(mhz.group(1)) * 1e-3 * width * 2 * 2:.0f} GFLOP/s fp32 per core, assuming two "
                     f"{width * 32}-bit FMA pipes at the reported clock (an assumption, not measured)")
    probe = r"""
import re, torch
cfg = torch.__config__.show()
pick = lambda k: (re.search(k + r"=([^,\n]*)", cfg) or re.match("()", "")).group(1)
cap = re.search(r"CPU capability usage: (\S+)", cfg)
a = torch.randn(256, 256); (a @ a).sum()
libs = sorted({l.split()[-1].rsplit("/", 2)[-2] + "/" + l.split()[-1].rsplit("/", 1)[-1]
               for l in open("/proc/self/maps") if re.search(r"blas|mkl|dnnl", l.split()[-1], re.I)})
print(f"torch      {torch.__version__}: BLAS_INFO={pick('BLAS_INFO')}, LAPACK_INFO={pick('LAPACK_INFO')}, "
      f"USE_MKLDNN={pick('USE_MKLDNN')} (conv through oneDNN: {torch.backends.mkldnn.is_available()}), "
      f"USE_OPENMP={pick('USE_OPENMP')}, CPU capability {cap.group(1) if cap else '?'}, "
      f"default threads {torch.get_num_threads()}")
print("blas libs  " + (", ".join(libs) or "none mapped"))
import importlib
for m in ("snntorch", "spikingjelly"):
    try:
        mod = importlib.import_module(m)
        v = getattr(mod, "__version__", None)
        if v is None:
            from importlib.metadata import version
            v = version(m)
        print(f"{m:<10} {v}")
    except Exception as e:
        print(f"{m:<10} not importable: {e}")
"""
    p = subprocess.run([python, "-c", probe], env=peers_env, capture_output=True, text=True)
    lines += (p.stdout.strip() or f"torch      not usable: {p.stderr.strip()[-300:]}").splitlines()
    return lines


# ---- main ----------------------------------------------------------------

def fmt_rate(r):
    return f"{r:8.0f}" if r >= 100 else f"{r:8.1f}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=DEBIAN_FASHION_MNIST, help="folder of the Fashion-MNIST IDX files (.gz or not)")
    ap.add_argument("--snnc", help="the snnc binary (default: $SNNC, else build*/compiler/snnc, else PATH)")
    ap.add_argument("--python", default=sys.executable, help="Python with torch for the peers")
    ap.add_argument("--peers-dir", default=str(REPO / ".peers"),
                    help="folder with snntorch and spikingjelly (scripts/install-test-peers.sh)")
    ap.add_argument("--nets", default="mlp,conv")
    ap.add_argument("--frameworks", default="snnc,snntorch,spikingjelly")
    ap.add_argument("--snnc-targets", default="",
                    help="snnc's targets, each a row 'snnc/TARGET' (default: the one snnc train picks); "
                         "snnc/peer compares the first")
    ap.add_argument("--variants", default="per-step,hoisted", help="peer model variants")
    ap.add_argument("--threads", default="1,2", help="thread counts for the peers")
    ap.add_argument("--steps-mlp", type=int, default=NETS["mlp"]["steps"], help="optimizer steps per repeat")
    ap.add_argument("--steps-conv", type=int, default=NETS["conv"]["steps"], help="optimizer steps per repeat")
    ap.add_argument("--rounds", type=int, default=3,
                    help="rounds; each runs every configuration once (warm-up, then one timed repeat)")
    ap.add_argument("--omp-wait-policy", default="passive",
                    help="OMP_WAIT_POLICY for the peers and snnc ('default': leave it unset; see bench/README.md)")
    ap.add_argument("--json", help="also write all measurements to this file")
    # child mode
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--framework", help=argparse.SUPPRESS)
    ap.add_argument("--net", help=argparse.SUPPRESS)
    ap.add_argument("--variant", help=argparse.SUPPRESS)
    ap.add_argument("--steps", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--repeats", type=int, default=1, help=argparse.SUPPRESS)
    ap.add_argument("--warmup", type=int, default=5, help="warm-up steps of the peers before timing")
    ap.add_argument("--nthreads", type=int, dest="threads_one", help=argparse.SUPPRESS)
    a = ap.parse_args()

    if a.worker:
        sys.path.insert(0, a.peers_dir)
        a.threads = a.threads_one
        worker(a)
        return

    a.steps = {"mlp": a.steps_mlp, "conv": a.steps_conv}
    nets = choices("--nets", a.nets, tuple(NETS))
    fws = choices("--frameworks", a.frameworks, ("snnc", "snntorch", "spikingjelly"))
    variants = choices("--variants", a.variants, ("per-step", "hoisted"))
    threads = [int(t) for t in a.threads.split(",") if t]

    def env_for(nthreads):
        e = dict(os.environ)
        for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            e[k] = str(nthreads)
        if a.omp_wait_policy != "default":
            e["OMP_WAIT_POLICY"] = a.omp_wait_policy.upper()
        e["PYTHONPATH"] = a.peers_dir + (os.pathsep + e["PYTHONPATH"] if e.get("PYTHONPATH") else "")
        return e

    print("== machine ==")
    for ln in machine_report(a.python, env_for(1)):
        print(ln)
    print(f"load avg   {' '.join(Path('/proc/loadavg').read_text().split()[:3])} (before)")
    print("snnc       generated C built by snnc train (-O3 -march=native -fopenmp), run with --threads N")
    print(f"peers      threads {a.threads}; OMP/OPENBLAS/MKL_NUM_THREADS = torch.set_num_threads = that count; "
          f"OMP_WAIT_POLICY {'unset' if a.omp_wait_policy == 'default' else a.omp_wait_policy.upper()}")
    sys.stdout.flush()

    snnc = find_snnc(a.snnc) if "snnc" in fws else None
    if snnc:
        ver = subprocess.run([snnc, "--version"], capture_output=True, text=True).stdout.strip()
        git = subprocess.run(["git", "-C", str(REPO), "log", "-1", "--format=%h %cs"], capture_output=True,
                             text=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True).stdout.split("\n")
        dirty = [ln for ln in dirty if ln.strip()]
        print(f"snnc       {ver}; source tree at {git or '?'}"
              + (f" with {len(dirty)} changed files" if dirty else "")
              + f"; binary built {time.strftime('%Y-%m-%d %H:%M', time.localtime(os.path.getmtime(snnc)))}")
    results = {}
    for n in nets:
        net = NETS[n]
        S, B, T = a.steps[n], net["batch"], net["T"]
        nominal, hoisted = step_flops(net, False), step_flops(net, True)
        print()
        print(f"== {n}: {net['name']}, {net['desc']}; T = {T}, batch {B}, Adam lr {LR} ==")
        print(f"{S} optimizer steps ({S * B} samples) per repeat; {a.rounds} round(s), each running every "
              f"configuration once in a fresh process; medians over rounds")
        print(f"warm-up: snnc one epoch of {S} steps, the peers {a.warmup} steps; then {S} timed steps")
        print(f"FLOPs per training step (dense/conv multiply-adds x 2, forward + weight grad + input grad): "
              f"{nominal / 1e9:.3f} GFLOP with every layer at every step; "
              f"{hoisted / 1e9:.3f} GFLOP with the invariant first layer once")
        sys.stdout.flush()
        # configurations: (framework, threads, variant); snnc's default pipeline first
        configs = []
        if snnc:
            targets = [t for t in a.snnc_targets.split(",") if t] or [None]
            configs += [("snnc/" + t if t else "snnc", nt, "hoisted") for t in targets for nt in threads]
        configs += [(fw, nt, v) for fw in fws if fw != "snnc" for nt in threads for v in variants]
        got = {c: None for c in configs}
        for rnd in range(a.rounds):
            load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
            print(f"  round {rnd + 1}/{a.rounds} (load avg {load}):", end="")
            sys.stdout.flush()
            for c in configs:
                fw, nt, v = c
                if got[c] == "failed":
                    continue
                if fw.startswith("snnc"):
                    r = run_snnc(snnc, n, a, env_for(nt), nt, fw[5:] or None)
                else:
                    cmd = [a.python, str(Path(__file__).resolve()), "--worker", "--framework", fw, "--net", n,
                           "--variant", v, "--steps", str(S), "--repeats", "1", "--warmup", str(a.warmup),
                           "--nthreads", str(nt),
                           "--data", a.data, "--peers-dir", a.peers_dir]
                    p = subprocess.run(cmd, env=env_for(nt), capture_output=True, text=True)
                    r = (json.loads(p.stdout.strip().splitlines()[-1]) if p.returncode == 0 else
                         dict(error=f"failed ({p.returncode}): {p.stderr.strip()[-1500:]}"))
                if "error" in r:
                    print(f"\n  {fw} {nt}T {v}: {r['error']}")
                    got[c] = "failed"
                    continue
                if got[c] is None:
                    got[c] = dict(r, rates=[], seconds=[])
                got[c]["rates"] += r["rates"]
                got[c]["seconds"] += r["seconds"]
                got[c].setdefault("cpu_all", []).extend(r.get("cpu_share", []))
                print(f" {fw}/{nt}/{v} {r['rates'][0]:.0f}", end="")
                sys.stdout.flush()
            print()
        # the loss check: step 1, and the mean of the 10 steps up to the peers' last step
        n_chk = a.warmup + S

        def loss_at(r):
            ls = r.get("losses", [])
            w = ls[max(0, n_chk - 10):n_chk]
            return f"{ls[0]:.3f}, {sum(w) / len(w):.3f}" if ls and len(ls) >= n_chk else "?"

        rows = [(fw, nt, v, got[(fw, nt, v)])
                for fw, nt, v in configs if isinstance(got[(fw, nt, v)], dict)]
        results[n] = rows
        first = next((fw for fw, _, _, _ in rows if fw.startswith("snnc")), None)
        snnc_at = {nt: statistics.median(r["rates"]) for fw, nt, _, r in rows if fw == first}
        print()
        print(f"{'framework':<13}{'threads':>7}  {'variant':<9}{'samples/s':>10}{'min':>8}{'max':>8}"
              f"{'GFLOP/s':>9}{'GFLOP/s':>9}{'snnc/peer':>10}{'cpu/wall':>9}  loss at step")
        print(f"{'':<13}{'':>7}  {'':<9}{'median':>10}{'':>8}{'':>8}{'nominal':>9}{'done':>9}"
              f"{'':>10}{'':>9}  1, {n_chk}")
        for fw, nt, v, r in rows:
            med = statistics.median(r["rates"])
            steps_s = med / B
            done = hoisted if v == "hoisted" else nominal
            ratio = "" if fw == first or nt not in snnc_at else f"{snnc_at[nt] / med:9.2f}x"
            thr = str(nt)
            cpu = f"{statistics.median(r['cpu_all']):9.2f}" if r.get("cpu_all") else ""
            print(f"{fw:<13}{thr:>7}  {v:<9}{fmt_rate(med):>10}{fmt_rate(min(r['rates'])):>8}"
                  f"{fmt_rate(max(r['rates'])):>8}"
                  f"{nominal * steps_s / 1e9:9.2f}{done * steps_s / 1e9:9.2f}{ratio:>10}{cpu:>9}  "
                  f"{loss_at(r)}")
        if 1 in snnc_at and len(snnc_at) > 1:
            print("snnc's speed-up over 1 thread: " +
                  ", ".join(f"{nt} threads {snnc_at[nt] / snnc_at[1]:.2f}x" for nt in sorted(snnc_at) if nt != 1))
        print("* snnc's training code computes the invariant first layer once (hoisted). snnc/peer: snnc's")
        print("  samples/s at the row's thread count over the row's. GFLOP/s nominal: every layer at every step over the measured")
        print("  time; done: the work of the row's variant (snnc also skips zero spike inputs in some products,")
        print("  so its 'done' is an upper bound). cpu/wall: the peer process's CPU time over wall time in the")
        print("  timed loop (median): below 1 thread's worth, other work took the cores. Loss at step: the loss")
        print(f"  of step 1 and the mean over steps {n_chk - 9}-{n_chk} in the first round, a check that every framework")
        print("  trains alike (the weights start from different random draws).")
        sys.stdout.flush()
    print()
    print(f"load avg   {' '.join(Path('/proc/loadavg').read_text().split()[:3])} (after)")
    if a.json:
        Path(a.json).write_text(json.dumps({n: [dict(r, framework=fw, threads=nt, variant=v)
                                                for fw, nt, v, r in rows] for n, rows in results.items()}, indent=1))


if __name__ == "__main__":
    main()
