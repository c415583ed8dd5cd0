#!/usr/bin/env python3
"""Files exported by snnTorch 0.9.4 (export_to_nir, with nirtorch 1.0 and
nir 1.0.4) run in snnc with --nir-convention snntorch and reproduce
snnTorch: spikes identical, membranes within 1e-5 relative, over T steps.

For each network, two references:
- the snnTorch network that was exported, stepped over T. Its neurons use
  reset_mechanism="zero" and reset_delay=False: the file does not record
  these, and snnTorch's importer assumes them, so only then is export and
  import a fixed point in snnTorch itself;
- snnTorch's own reading of the file: import_from_nir(nir.read(FILE)),
  stepped over T (snnTorch's importer refuses the RSynaptic export, so the
  recurrent network is compared with snn.Synaptic modules and the file's
  recurrent weights, stepped by hand instead).
A network with snnTorch's default neurons (subtract reset, delayed) is
compared with snnTorch's reading of its file only, which is what the
convention promises. Also a file written by the nir package whose input
scale r dt / tau is not 1: snnTorch divides the threshold by it; and an
IF, which snnTorch's importer makes a Leaky of beta 0.9. And a network
with torch.nn.Flatten(start_dim=2) between neuron layers (a NIR Flatten of
some dimensions), against the exported network.
"""
import os
import tempfile

import numpy as np

import nir_util as U

torch = U.require("torch")
nir = U.require("nir")
U.require("nirtorch")
snn = U.require("snntorch")
from snntorch.export_nir import export_to_nir  # noqa: E402
from snntorch.import_nir import import_from_nir  # noqa: E402
import snntorch.utils  # noqa: E402

torch.set_num_threads(1)
torch.manual_seed(5)
T, B = 20, 4
C = U.Checker()
EXTRA = ["--nir-convention", "snntorch"]
ZERO = dict(reset_mechanism="zero", reset_delay=False)


def leaky(**kw):
    return snn.Leaky(init_hidden=True, **kw)


def fix_for_writing(g, input_hw=None, flat_in=None):
    """nirtorch 1.0 leaves Conv2d.input_shape and Flatten.input_type unset,
    which nir 1.0.4 cannot write: fill them in (flat_in: the input of every
    Flatten, or {node name: its input})."""
    for k, n in g.nodes.items():
        if isinstance(n, nir.Conv2d) and n.input_shape is None:
            n.input_shape = np.array(input_hw)
        if isinstance(n, nir.Flatten) and n.input_type["input"] is None:
            n.input_type = {"input": np.array(flat_in[k] if isinstance(flat_in, dict) else flat_in)}
    return g


def step_sequential(net, x, neurons):
    """The original Sequential of init_hidden neurons over T: (the last
    layer's spikes, {index: mem over T})."""
    snntorch.utils.reset(net)
    ys, mems = [], {i: [] for i in neurons}
    with torch.no_grad():
        for t in range(T):
            out = net(torch.from_numpy(x[t]))
            ys.append((out[0] if isinstance(out, tuple) else out).numpy().copy())
            for i in neurons:
                mems[i].append(net[i].mem.numpy().copy())
    return np.stack(ys), {i: np.stack(m) for i, m in mems.items()}


def step_imported(path, x):
    """snnTorch's reading of the file (import_from_nir), over T: the spikes
    of its output and {module name: mem over T}."""
    g = import_from_nir(nir.read(path))
    state = None
    ys, mems = [], {}
    with torch.no_grad():
        for t in range(T):
            out = g(torch.from_numpy(x[t]), state)
            out, state = out if isinstance(out, tuple) else (out, None)
            ys.append(out.numpy().copy())
            for name, m in g.named_modules():
                if isinstance(m, (snn.Leaky, snn.Synaptic)):
                    mems.setdefault(name, []).append(m.mem.numpy().copy())
    return np.stack(ys), {k: np.stack(v) for k, v in mems.items()}


def compare(name, path, x, want_y, want_mem, records):
    """snnc on path against a reference: records maps snnc's layer.v to the
    reference's membrane key."""
    try:
        y, got = U.run_nir(path, x, records=list(records), extra=EXTRA)
    except U.RunError as e:
        C.fail("%s: %s" % (name, e))
        return
    C.spikes(name + ": output spikes", y, want_y)
    for r, k in records.items():
        C.close("%s: %s" % (name, r), got[r], want_mem[k])


def ff_nets(d):
    nets = {
        "leaky_scalar": (torch.nn.Sequential(torch.nn.Linear(5, 8), leaky(beta=0.85, threshold=0.5, **ZERO),
                                             torch.nn.Linear(8, 4), leaky(beta=0.9, output=True, **ZERO)),
                         {"n1.v": 1, "n3.v": 3}),
        "leaky_per_neuron": (torch.nn.Sequential(
            torch.nn.Linear(5, 8),
            leaky(beta=torch.rand(8) * 0.5 + 0.45, threshold=torch.ones(8) * 0.7, **ZERO),
            torch.nn.Linear(8, 4), leaky(beta=0.9, threshold=0.4, output=True, **ZERO)), {"n1.v": 1, "n3.v": 3}),
        "synaptic": (torch.nn.Sequential(torch.nn.Linear(5, 8), snn.Synaptic(alpha=0.8, beta=0.7, init_hidden=True,
                                                                              **ZERO),
                                         torch.nn.Linear(8, 4),
                                         snn.Synaptic(alpha=0.6, beta=0.9, threshold=0.8, init_hidden=True,
                                                      output=True, **ZERO)),
                     {"n1.v": 1, "n3.v": 3}),
    }
    x = np.random.default_rng(1).uniform(0, 1.2, size=(T, B, 5)).astype(np.float32)
    for name, (net, recs) in nets.items():
        louder(net)
        path = os.path.join(d, name + ".nir")
        with torch.no_grad():
            nir.write(path, export_to_nir(net, torch.zeros(1, 5)))
        want_y, want_mem = step_sequential(net, x, set(recs.values()))
        compare(name + " (the exported network)", path, x, want_y, want_mem, {r: i for r, i in recs.items()})
        imp_y, imp_mem = step_imported(path, x)
        keys = sorted(imp_mem)
        compare(name + " (snnTorch's import of the file)", path, x, imp_y, imp_mem,
                {r: keys[k] for k, r in enumerate(sorted(recs))})


def conv_net(d):
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, padding=1), leaky(beta=0.8, threshold=0.4, **ZERO),
                              torch.nn.AvgPool2d((2, 2)), torch.nn.Flatten(), torch.nn.Linear(64, 5),
                              leaky(beta=0.9, output=True, **ZERO))
    louder(net)
    path = os.path.join(d, "conv.nir")
    with torch.no_grad():
        g = export_to_nir(net, torch.zeros(1, 1, 8, 8))
    nir.write(path, fix_for_writing(g, (8, 8), (4, 4, 4)))
    x = np.random.default_rng(2).uniform(0, 1, size=(T, B, 1, 8, 8)).astype(np.float32)
    want_y, want_mem = step_sequential(net, x, {1, 5})
    compare("conv (the exported network)", path, x, want_y, want_mem, {"n1.v": 1, "n5.v": 5})
    # snnTorch imports the Flatten as flatten(0, -1), over the batch too:
    # its reading of the file runs one sample at a time
    runs = [step_imported(path, x[:, b:b + 1]) for b in range(B)]
    keys = sorted(runs[0][1])
    imp_y = np.concatenate([r[0].reshape(T, 1, -1) for r in runs], axis=1)
    imp_mem = {k: np.concatenate([r[1][k].reshape((T, 1) + r[1][k].shape[-3 if k == keys[0] else -1:][:3])
                                  for r in runs], axis=1) for k in keys}
    compare("conv (snnTorch's import of the file, a sample at a time)", path, x, imp_y, imp_mem,
            {"n1.v": keys[0], "n5.v": keys[1]})


def partial_flatten_net(d):
    """torch.nn.Flatten(start_dim=2) between a conv's neurons and more
    neurons: snnTorch writes a Flatten of dimensions 1 to -1 (without the
    batch), which snnc runs as a reshape of [4, 6, 6] to [4, 36]."""
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, padding=1), leaky(beta=0.8, threshold=0.4, **ZERO),
                              torch.nn.Flatten(start_dim=2), leaky(beta=0.7, threshold=0.3, **ZERO),
                              torch.nn.Flatten(), torch.nn.Linear(144, 5),
                              leaky(beta=0.9, output=True, **ZERO))
    louder(net)
    path = os.path.join(d, "partial_flatten.nir")
    with torch.no_grad():
        g = export_to_nir(net, torch.zeros(1, 1, 6, 6))
    nir.write(path, fix_for_writing(g, (6, 6), {"2": (4, 6, 6), "4": (4, 36)}))
    fl = nir.read(path).nodes["2"]
    ok = isinstance(fl, nir.Flatten) and (int(fl.start_dim), int(fl.end_dim)) == (1, -1)
    (C.ok if ok else C.fail)("partial flatten: snnTorch wrote %s start_dim %s end_dim %s" % (
        type(fl).__name__, getattr(fl, "start_dim", None), getattr(fl, "end_dim", None)))
    x = np.random.default_rng(3).uniform(0, 1, size=(T, B, 1, 6, 6)).astype(np.float32)
    want_y, want_mem = step_sequential(net, x, {1, 3, 6})
    compare("partial flatten (the exported network)", path, x, want_y, want_mem,
            {"n1.v": 1, "n3.v": 3, "n6.v": 6})


def default_leaky(d):
    """snnTorch's default Leaky (subtract reset, delayed): the file does not
    say so, and snnTorch's reading of it is what snnc reproduces."""
    net = torch.nn.Sequential(torch.nn.Linear(5, 6), leaky(beta=0.9, threshold=0.3),
                              torch.nn.Linear(6, 3), leaky(beta=0.8, output=True))
    path = os.path.join(d, "default_leaky.nir")
    with torch.no_grad():
        nir.write(path, export_to_nir(net, torch.zeros(1, 5)))
    x = np.random.default_rng(3).uniform(0, 1, size=(T, B, 5)).astype(np.float32)
    imp_y, imp_mem = step_imported(path, x)
    keys = sorted(imp_mem)
    compare("default Leaky (snnTorch's import of the file)", path, x, imp_y, imp_mem,
            {"n1.v": keys[0], "n3.v": keys[1]})


def rsynaptic(d):
    """RSynaptic (all to all) exported with its recurrent edge; snnTorch cannot
    import it back, so snn.Synaptic and the file's recurrent Linear are
    stepped by hand: the recurrent current is the previous step's spikes."""
    rs = snn.RSynaptic(alpha=0.7, beta=0.85, threshold=0.6, all_to_all=True, linear_features=6, init_hidden=True,
                       output=True)
    net = torch.nn.Sequential(torch.nn.Linear(5, 6), rs)
    path = os.path.join(d, "rsynaptic.nir")
    with torch.no_grad():
        nir.write(path, export_to_nir(net, torch.zeros(1, 5)))
    g = nir.read(path)
    # nirtorch 1.0 writes the recurrence at the top level ("1.lif",
    # "1.w_rec" and edges both ways); snnTorch's importer wraps it in a
    # nested graph
    lif_name = [k for k, n in g.nodes.items() if isinstance(n, nir.CubaLIF)][0]
    lif = g.nodes[lif_name]
    wrec = [n for k, n in g.nodes.items() if isinstance(n, (nir.Linear, nir.Affine)) and (k, lif_name) in g.edges
            and (lif_name, k) in g.edges][0]
    dt = 1e-4
    neuron = snn.Synaptic(alpha=float(np.unique(1 - dt / lif.tau_syn)[0]), beta=float(np.unique(1 - dt / lif.tau_mem)[0]),
                          threshold=float(np.unique(lif.v_threshold / (lif.w_in * dt / lif.tau_syn))[0]),
                          reset_mechanism="zero", reset_delay=False)
    rec = torch.nn.Linear(6, 6, bias=isinstance(wrec, nir.Affine))
    rec.weight.data = torch.tensor(wrec.weight, dtype=torch.float32)
    if isinstance(wrec, nir.Affine):
        rec.bias.data = torch.tensor(wrec.bias, dtype=torch.float32)
    x = np.random.default_rng(4).uniform(0, 1, size=(T, B, 5)).astype(np.float32)
    syn, mem = neuron.init_synaptic()
    spk = torch.zeros(B, 6)
    ys, mems = [], []
    with torch.no_grad():
        for t in range(T):
            cur = net[0](torch.from_numpy(x[t])) + rec(spk)
            spk, syn, mem = neuron(cur, syn, mem)
            ys.append(spk.numpy().copy())
            mems.append(mem.numpy().copy())
    layer = "n" + lif_name.replace(".", "_") if lif_name[0].isdigit() else lif_name.replace(".", "_")
    compare("RSynaptic (snn.Synaptic stepped by hand)", path, x, np.stack(ys), {"m": np.stack(mems)},
            {layer + ".v": "m"})


def nir_package_lif(d):
    """A file written by the nir package with r dt / tau != 1: snnTorch's
    importer divides the threshold by that scale instead of scaling the input."""
    w, b = np.random.default_rng(6).uniform(-0.5, 1, size=(4, 3)).astype(np.float32), np.zeros(4, np.float32)
    g = nir.NIRGraph.from_list(nir.Affine(w, b), nir.LIF(tau=np.full(4, 5e-4), r=np.full(4, 2.0), v_leak=np.zeros(4),
                                                         v_threshold=np.full(4, 0.3)))
    path = os.path.join(d, "scaled.nir")
    nir.write(path, g)
    x = np.random.default_rng(7).uniform(0, 1, size=(T, B, 3)).astype(np.float32)
    imp_y, imp_mem = step_imported(path, x)
    compare("LIF with r dt / tau = 0.4 (snnTorch's import of the file)", path, x, imp_y, imp_mem,
            {"lif.v": sorted(imp_mem)[0]})


def louder(net, k=3.0):
    """Scales the weights of the synaptic layers so that every layer spikes."""
    with torch.no_grad():
        for m in net:
            if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d)):
                m.weight.mul_(k)
    return net


def nir_package_if(d):
    """IF, which snnTorch imports as a Leaky of beta 0.9 with the subtract
    reset (its importer's choice, reproduced by the convention)."""
    w, b = np.random.default_rng(8).uniform(-0.2, 1, size=(5, 3)).astype(np.float32), np.zeros(5, np.float32)
    g = nir.NIRGraph.from_list(nir.Affine(w, b), nir.IF(r=np.ones(5), v_threshold=np.full(5, 0.7)))
    path = os.path.join(d, "if.nir")
    nir.write(path, g)
    x = np.random.default_rng(9).uniform(0, 1.5, size=(T, B, 3)).astype(np.float32)
    imp_y, imp_mem = step_imported(path, x)
    compare("IF (snnTorch's import of the file)", path, x, imp_y, imp_mem, {"if_.v": sorted(imp_mem)[0]})


def main():
    U.snnc_path()
    with tempfile.TemporaryDirectory(prefix="snnc-nir-snntorch-") as d:
        ff_nets(d)
        conv_net(d)
        partial_flatten_net(d)
        default_leaky(d)
        rsynaptic(d)
        nir_package_lif(d)
        nir_package_if(d)
    C.done()


if __name__ == "__main__":
    main()
