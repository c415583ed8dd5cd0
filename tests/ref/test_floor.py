#!/usr/bin/env python3
"""test_floor.py: the neuron language's floor(a) on every target this
machine runs, against NumPy and PyTorch.

1. Forward: a neuron that emits several spikes a step (the count floor(h /
   v_th) of a non-negative h, subtracted from the membrane, as Sinabs's
   IAF does) and one that quantizes its input to thirds (floor of negative
   values: floor(-0.5) is -1, not 0), side by side, compared with NumPy in
   float32 in the same order of operations: identical on the c, avx512,
   avx2 and llvm targets (the thresholds are multiples of 1/4, so the
   products s * v_th are exact and a fused multiply-add rounds them the
   same). Inputs are drawn so that some potentials land exactly on a
   multiple of the threshold, where floor's step is.
2. Backward: floor's derivative is 0 (PyTorch's too). A neuron whose
   membrane keeps the fractional part h - floor(h) passes gradients
   through h only; `snnc grad` must give PyTorch autograd's gradients of the
   dense layer and of the input. The dense product sums in another order
   than PyTorch's (and with fused multiply-adds on the x86 targets), and
   h - floor(h) passes its round-off on without shrinking it with h, so
   the tolerance is 1e-4 relative, 1e-5 absolute.
3. A layer whose emitted value passes no gradient at all (a spike count
   by floor alone): its training code builds with -Wall -Wextra -Werror
   (its dL/doutput is then unread).
"""
import os
import shutil
import subprocess
import tempfile

import numpy as np

from snnc_ref import Checker, RunError, grad, require, run, skip, snnc_path

torch = require("torch")
torch.set_num_threads(1)

T, B, N = 9, 4, 12

MODELS = """
neuron MultiIF(v_th = 1.0) {
  state v = 0.0;
  h = v + x;
  s = floor(max(h, 0.0) / v_th);
  v = h - s * v_th;
  emit s;
}

neuron Thirds() {
  emit floor(x * 3.0) / 3.0;
}

neuron Frac(decay = 0.5) {
  state v = 0.0;
  h = decay * v + x;
  v = h - floor(h);
  emit v * h;
}
"""

FORWARD = MODELS + """
network Floors {
  timesteps %d;
  input x : [%d] encode sequence;
  a = x |> MultiIF(v_th = 0.75);
  b = x |> MultiIF(v_th = 1.0);
  q = x |> Thirds();
  out = a |> add(b) |> add(q);
  output out readout steps;
}
""" % (T, N)

BACKWARD = MODELS + """
network FracNet {
  timesteps %d;
  input x : [%d] encode sequence;
  h = x |> dense(7) as d |> Frac(decay = 0.5);
  output h readout steps;
}
""" % (T, N)


def multi_if(x, v_th):
    v = np.zeros(x.shape[1:], np.float32)
    th = np.float32(v_th)
    out = []
    for t in range(x.shape[0]):
        h = v + x[t]
        s = np.floor(np.maximum(h, np.float32(0)) / th)
        v = h - s * th
        out.append(s)
    return np.stack(out)


def forward_input(rng):
    # quarters land potentials on multiples of 0.75 and 1.0 exactly; the
    # rest are arbitrary floats, negative ones included
    quarters = rng.integers(-4, 9, (T, B, N)).astype(np.float32) / np.float32(4)
    noise = rng.uniform(-1.5, 2.5, (T, B, N)).astype(np.float32)
    return np.where(rng.random((T, B, N)) < 0.5, quarters, noise).astype(np.float32)


def targets():
    p = subprocess.run([snnc_path(), "--list-targets"], capture_output=True, text=True)
    have = []
    for line in p.stdout.splitlines():
        words = line.split()
        if words and words[0] in ("c", "avx512", "avx2", "llvm") and "cannot run" not in line \
                and "unavailable" not in line:
            have.append(words[0])
    return have


def part_forward(chk, tgts):
    rng = np.random.default_rng(3)
    x = forward_input(rng)
    a = multi_if(x, 0.75)
    b = multi_if(x, 1.0)
    q = np.floor(x * np.float32(3)) / np.float32(3)
    want = (a + b) + q
    chk.check(a.max() >= 2 and b.max() >= 2, "some neurons emit two spikes or more in a step (max %g, %g)"
              % (a.max(), b.max()))
    chk.check((q < 0).any() and (x < 0).any() and ((x * 3) % 1 != 0).any(), "negative inputs are quantized too")
    for tgt in tgts:
        try:
            y, rec = run(FORWARD, x, records=("a", "b", "q"), extra=["--target", tgt])
        except RunError as e:
            msg = str(e)
            if "does not support" in msg or "cannot run" in msg or "instructions" in msg:
                print("skipped: the %s target on this machine: %s" % (tgt, msg.splitlines()[0]))
                continue
            chk.check(False, "%s: snnc run failed: %s" % (tgt, msg))
            continue
        chk.same(rec["a"], a, "%s: MultiIF(v_th = 0.75): spike counts" % tgt)
        chk.same(rec["b"], b, "%s: MultiIF(v_th = 1.0): spike counts" % tgt)
        chk.same(rec["q"], q, "%s: Thirds: floor(x * 3) / 3" % tgt)
        chk.same(y, want, "%s: the output" % tgt)


def part_backward(chk):
    rng = np.random.default_rng(5)
    x = rng.normal(0.3, 1.2, (T, B, N)).astype(np.float32)
    w = (rng.standard_normal((7, N)) * 0.5).astype(np.float32)
    bias = rng.uniform(-0.5, 0.5, 7).astype(np.float32)
    g = rng.standard_normal((T, B, 7)).astype(np.float32)
    xt = torch.tensor(x, requires_grad=True)
    wt = torch.tensor(w, requires_grad=True)
    bt = torch.tensor(bias, requires_grad=True)
    v = torch.zeros(B, 7)
    ys, hs = [], []
    for t in range(T):
        cur = xt[t] @ wt.T + bt
        h = 0.5 * v + cur
        v = h - torch.floor(h)
        ys.append(v * h)
        hs.append(h.detach())
    y = torch.stack(ys)
    (y * torch.tensor(g)).sum().backward()
    # floor's step must not fall within round-off of a potential, or the
    # two computations could take different sides of it
    hs = torch.stack(hs).numpy()
    gap = np.abs(hs - np.round(hs)).min()
    chk.check(gap > 1e-4, "every potential lies at least 1e-4 from an integer (closest: %.2g)" % gap)
    try:
        grads, dx, out = grad(BACKWARD, x, g, weights={"d.weight": w, "d.bias": bias})
    except RunError as e:
        chk.check(False, "snnc grad failed: %s" % e)
        return
    tol = {"rtol": 1e-4, "atol": 1e-5}
    chk.close(got=out, want=y.detach().numpy(), what="training forward: the output of every step", **tol)
    chk.close(got=grads["d.weight"], want=wt.grad.numpy(), what="dL/dd.weight", **tol)
    chk.close(got=grads["d.bias"], want=bt.grad.numpy(), what="dL/dd.bias", **tol)
    chk.close(got=dx, want=xt.grad.numpy(), what="dL/dinput", **tol)
    chk.check(np.abs(xt.grad.numpy()).max() > 0.1, "the gradient is not zero (floor passes nothing, h does)")


NO_GRADIENT = MODELS + """
network NoGradient {
  timesteps 3;
  input x : [8] encode direct;
  a = x |> dense(6) |> MultiIF(v_th = 0.75);
  out = a |> dense(3) |> LI();
  output out readout mean;
}
"""


def part_build(chk):
    cc = shutil.which(os.environ.get("CC") or "cc")
    if not cc:
        print("skipped: the build of the training code: no C compiler")
        return
    with tempfile.TemporaryDirectory() as d:
        src = os.path.join(d, "m.snn")
        with open(src, "w") as f:
            f.write(NO_GRADIENT)
        p = subprocess.run([snnc_path(), "compile", src, "--train", "-o", d], capture_output=True, text=True)
        if p.returncode != 0:
            chk.check(False, "snnc compile --train: %s" % p.stderr.strip())
            return
        p = subprocess.run([cc, "-std=c99", "-Wall", "-Wextra", "-Wpedantic", "-Wshadow", "-Werror", "-c",
                            os.path.join(d, "nogradient.c"), "-o", os.path.join(d, "m.o")],
                           capture_output=True, text=True)
        chk.check(p.returncode == 0, "the training code of a layer that passes no gradient builds warning-free%s"
                  % ("" if p.returncode == 0 else ": " + p.stderr.strip()[-600:]))


def main():
    chk = Checker()
    tgts = targets()
    if not tgts:
        skip("snnc --list-targets names no target this machine runs")
    print("targets: %s" % ", ".join(tgts))
    part_forward(chk, tgts)
    part_backward(chk)
    part_build(chk)
    chk.finish()


if __name__ == "__main__":
    main()
