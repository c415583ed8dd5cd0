#!/usr/bin/env python3
"""test_options.py: the command line's options against docs/cli.md, and
the warning for an option that the command does nothing with.

1. The documentation is the reference: every option of the tables of
   `compile`, `run`, `train`, `export`, `grad` and `info` in docs/cli.md
   (and those that the text says apply to `run --eval`) is accepted by
   that command without a warning; an option of the table "Common to
   every command" likewise for every command, except where its row says
   which commands ignore it (--batch: run, grad and export; --emit-ir: all
   but compile and run; --dot: all but compile and info; --chunk: all but
   compile, run, info; --record: train, export and run --eval).
   Those exceptions, and every option that is in no table of a command,
   draw "snnc: warning: OPTION does nothing for COMMAND (ignored)".
   Each is checked on a model file that does not exist, so that the
   command stops, after reading its options, at the model.
2. What the warning claims, by behaviour: the files, outputs and printed
   text of a command are the same bytes with and without an option that
   it warns about (compile --threads, --epochs, --input, --weights without
   --embed-weights; info --static, --math, --emit-ir; run --batch, --dot;
   grad --batch; export --target), and differ with options it does not warn
   about (compile --batch, --chunk, --weights with --embed-weights; info
   --train). A repeated option warns once.
3. Every option of --help is in docs/cli.md and the other way round.
4. Bad values: exit 2 with the option, its range and the value named; a
   prefix option with an empty value (--dump-ir=after:) keeps it empty
   and does not take the next argument.
"""
import os
import re
import subprocess
import sys
import tempfile

import numpy as np

from snnc_ref import Checker, snnc_path, write_safetensors

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
COMMANDS = ["compile", "run", "train", "grad", "export", "info"]

NET = """
network Opt {
  timesteps 3;
  input x : [4] encode direct;
  h = x |> dense(5) |> LIF() as h;
  out = h |> dense(2) |> LI() as out;
  output out readout mean;
}
"""

# The doc's placeholders, as values that parse.
VALUES = {"N": "2", "K": "2", "SECONDS": "0.001", "X": "0.01", "SEED": "1", "T": "x86_64-linux-gnu",
          "LIST": "+sse2", "OP=MODEL(args)": "Relu=LIF()", "LAYER[.VAR]": "h", "LAYER[.VAR]=FILE.npy": "h=h.npy",
          "CC": "cc"}
# What an option needs beside it to be accepted at all.
COMPANIONS = {"--triple": ["--target", "llvm"], "--cpu": ["--target", "llvm", "--triple", "x86_64-linux-gnu"],
              "--features": ["--target", "llvm", "--triple", "x86_64-linux-gnu"],
              "--embed-weights": ["--weights", "w.safetensors"]}
# What each command needs to get past its checks (all of it documented for it).
REQUIRED = {"compile": [], "info": [], "train": [], "export": ["-o", "out.onnx"],
            "run": ["--input", "x.npy", "--output", "y.npy"],
            "grad": ["--input", "x.npy", "--grad-output", "g.npy", "--output", "g.safetensors"],
            "run --eval": ["--eval"]}


def doc_tables(text):
    """{section: [(option, placeholder or None), ...]} of docs/cli.md's
    tables under "### <section>"."""
    out, section = {}, None
    for line in text.splitlines():
        m = re.match(r"### (.*)", line)
        if m:
            section = m.group(1).strip().strip("`")
            if section not in ("Anywhere, and stopping at once", "Common to every command", "compile", "run",
                               "train", "export", "grad", "info"):
                section = None
            continue
        if section and line.startswith("| `-"):
            first = line.split(" | ")[0][2:]
            for tok in re.findall(r"`([^`]+)`", first):
                tok = tok.replace("\\|", "|")
                name, _, ph = tok.partition(" ")
                out.setdefault(section, []).append((name, ph or None))
    return out


def args_of(name, ph, cmd):
    """The arguments that give option `name` a value that parses."""
    if name.endswith("=after:PASS"):
        return ["--dump-ir=after:sema"]
    if "=" in name:
        return [name.split("=")[0] + "=" + "fuse"]
    if ph is None:
        return [name]
    if "|" in ph:
        return [name, ph.split("|")[0]]
    if ph == "NAME":
        return [name, {"--target": "c", "--cpu": "generic"}.get(name, "Opt")]
    if ph == "OUT":
        return [name, "out.onnx"]
    if ph == "LAYER[.VAR]" and cmd != "compile" and cmd != "info":
        ph = "LAYER[.VAR]=FILE.npy"
    return [name, VALUES.get(ph, ph.lower().replace("[", "").replace("]", ""))]


def main():
    snnc = snnc_path()
    c = Checker()
    with open(os.path.join(ROOT, "docs", "cli.md")) as f:
        doc = f.read()
    tables = doc_tables(doc)
    for s in ("Common to every command", "compile", "run", "train", "export", "grad", "info"):
        c.check(len(tables.get(s, [])) >= 2, "docs/cli.md: no option table under '### %s'" % s)

    with tempfile.TemporaryDirectory() as d:
        def sn(*args):
            return subprocess.run([snnc] + list(args), capture_output=True, text=True, cwd=d)

        def warned(p, opt, cmd):
            return ("snnc: warning: %s does nothing for %s" % (opt, cmd)) in p.stderr

        # 1. each option against the documentation, on a missing model
        def accepted(cmd, name, ph, want_warning):
            base = cmd.split()[0]
            a = args_of(name, ph, base)
            if base == "compile" and name == "--weights":  # compile reads it to embed it
                a = ["--embed-weights"] + a
            p = sn(*([base, "missing.snn"] + REQUIRED[cmd] + COMPANIONS.get(name, []) + a))
            ok = p.returncode == 1 and "error:" in p.stderr and warned(p, name, cmd) == want_warning
            c.check(ok, "%s %s: exit %d, wanted %s warning: %r" % (cmd, " ".join(a), p.returncode,
                                                                  "a" if want_warning else "no", p.stderr[-300:]))
            return ok

        ignored_by = {"--batch": {"run", "grad", "export"},
                      "--record": {"train", "export", "run --eval"},
                      "--emit-ir": {"info", "train", "grad", "export", "run --eval"},
                      "--dot": {"run", "train", "grad", "export", "run --eval"},
                      "--chunk": {"train", "grad", "export", "run --eval"}}
        documented = {cmd: set() for cmd in COMMANDS + ["run --eval"]}
        n = 0
        for name, ph in tables.get("Common to every command", []):
            for cmd in COMMANDS + ["run --eval"]:
                quiet = cmd not in ignored_by.get(name, set())
                if quiet:
                    documented[cmd].add(name)
                n += accepted(cmd, name, ph, not quiet)
        for cmd in ("compile", "run", "train", "export", "grad", "info"):
            for name, ph in tables.get(cmd, []):
                if name == "--eval":
                    continue
                documented[cmd].add(name)
                n += accepted(cmd, name, ph, False)
        # "`--test-limit`, `--data`, ... apply to `run --eval` in the same way"; and of run's own,
        # all but "no `--input` or `--output`" and --plot, which it ignores (the paragraph on
        # options that do not apply), and --record, which the common table gives run and grad
        m = re.search(r"((?:`--[a-z-]+`[, and\n]*)+)apply to `run --eval`", doc)
        evals = ["--weights", "--init"] + (re.findall(r"`(--[a-z-]+)`", m.group(1)) if m else [])
        evals += [n for n, _ in tables.get("run", []) if n not in ("--input", "--output", "--plot", "--record", "--eval")]
        evals = sorted(set(evals))
        c.check(m is not None and "--data" in evals, "docs/cli.md: the options of run --eval")
        for name in evals:
            ph = dict(tables.get("train", []) + tables.get("run", [])).get(name)
            documented["run --eval"].add(name)
            n += accepted("run --eval", name, ph, False)
        # every option of some table that a command's tables do not name warns there
        every = {}
        for rows in tables.values():
            for name, ph in rows:
                every.setdefault(name, ph)
        for skip in ("-h", "--help", "--version", "--list-passes", "--list-targets", "--eval", "--format",
                     "--triple", "--cpu", "--features"):
            every.pop(skip, None)  # print and stop, or refused outright elsewhere (below)
        for cmd in COMMANDS + ["run --eval"]:
            for name, ph in sorted(every.items()):
                if name not in documented[cmd] and name not in REQUIRED[cmd]:
                    n += accepted(cmd, name, ph, True)
        print("1. %d options and commands: warned exactly where docs/cli.md says the command ignores them" % n)
        for cmd in ("run", "info"):
            p = sn(cmd, "missing.snn", "--format", "onnx", *REQUIRED[cmd])
            c.check(p.returncode == 2 and "--format is an option of export" in p.stderr,
                    "%s --format: refused: %r" % (cmd, p.stderr))
            p = sn(cmd, "missing.snn", "--triple", "x86_64-linux-gnu", *REQUIRED[cmd])
            c.check(p.returncode == 2 and "are for compile --target llvm" in p.stderr,
                    "%s --triple: refused: %r" % (cmd, p.stderr))

        # 2. by behaviour
        model = os.path.join(d, "opt.snn")
        with open(model, "w") as f:
            f.write(NET)
        rng = np.random.default_rng(4)
        w = os.path.join(d, "w.safetensors")
        write_safetensors(w, {"h_dense.weight": rng.standard_normal((5, 4)), "h_dense.bias": rng.standard_normal(5),
                              "out_dense.weight": rng.standard_normal((2, 5)), "out_dense.bias": rng.standard_normal(2)})
        x = os.path.join(d, "x.npy")
        np.save(x, rng.standard_normal((2, 4)).astype(np.float32))
        gy = os.path.join(d, "gy.npy")
        np.save(gy, rng.standard_normal((3, 2, 2)).astype(np.float32))
        count = [0]

        def outputs(cmd, extra):
            """(what the command wrote: stdout and the files, stderr)."""
            count[0] += 1
            o = os.path.join(d, "o%d" % count[0])
            os.makedirs(o)
            if cmd == "compile":
                args = ["compile", model, "-o", o]
            elif cmd == "info":
                args = ["info", model]
            elif cmd == "run":
                args = ["run", model, "--weights", w, "--input", x, "--output", os.path.join(o, "y.npy"),
                        "--threads", "1"]
            elif cmd == "grad":
                args = ["grad", model, "--weights", w, "--input", x, "--grad-output", gy, "--output",
                        os.path.join(o, "g.safetensors"), "--threads", "1"]
            else:
                args = ["export", model, "--weights", w, "-o", os.path.join(o, "m.onnx")]
            p = sn(*(args + extra))
            files = {}
            for name in sorted(os.listdir(o)):
                with open(os.path.join(o, name), "rb") as f:
                    files[name] = f.read()
            c.check(p.returncode == 0, "%s %s: exit %d: %r" % (cmd, " ".join(extra), p.returncode, p.stderr))
            return (p.stdout.replace(o, "OUT"), files), p.stderr

        cases = [("compile", ["--threads", "3"], "--threads", False),
                 ("compile", ["--epochs", "3"], "--epochs", False),
                 ("compile", ["--input", "x.npy"], "--input", False),
                 ("compile", ["--weights", w], "--weights", False),
                 ("compile", ["--batch", "4"], None, True),
                 ("compile", ["--chunk", "1"], None, True),
                 ("compile", ["--weights", w, "--embed-weights"], None, True),
                 ("info", ["--static"], "--static", False),
                 ("info", ["--math", "fast"], "--math", False),
                 ("info", ["--emit-ir"], "--emit-ir", False),
                 ("info", ["--train"], None, True),
                 ("run", ["--batch", "7"], "--batch", False),
                 ("run", ["--dot", os.path.join(d, "g.dot")], "--dot", False),
                 ("grad", ["--batch", "5"], "--batch", False),
                 ("export", ["--target", "c"], "--target", False)]
        plain = {}
        for cmd, extra, opt, differs in cases:
            if cmd not in plain:
                plain[cmd], err = outputs(cmd, [])
                c.check("warning" not in err, "%s alone: no warning: %r" % (cmd, err))
            got, err = outputs(cmd, extra)
            c.check((got != plain[cmd]) == differs, "%s %s: the output %s" %
                    (cmd, " ".join(extra), "is the same as without it" if differs else "differs from without it"))
            c.check((opt is not None and warned_text(err, opt, cmd)) or (opt is None and "warning" not in err),
                    "%s %s: %r" % (cmd, " ".join(extra), err))
            print("2. %s %s: %s, %s" % (cmd, " ".join(extra).replace(d, "."),
                                        "changes the output" if differs else "the same bytes",
                                        err.strip().replace(d, ".") or "no warning"))
        c.check(not os.path.exists(os.path.join(d, "g.dot")), "run --dot wrote the graph")
        p = sn("compile", model, "-o", os.path.join(d, "rep"), "--threads", "2", "--threads", "3")
        c.check(p.stderr.count("--threads does nothing") == 1, "a repeated option warns once: %r" % p.stderr)

        # 3. --help and docs/cli.md name the same options
        p = sn("--help")
        helped = set(re.findall(r"(?<![\w-])(--?[a-z][a-z-]*)", p.stdout)) - {"-O2", "-o"}
        helped.add("-o")
        docs = set(name.split("=")[0] + ("=" if "=" in name else "") for rows in tables.values() for name, _ in rows)
        docs = {n.rstrip("=") if n.endswith("=") else n for n in docs} - {"-h"}
        c.check(p.returncode == 0 and helped == docs, "--help and docs/cli.md: only in --help %s, only in the docs %s" %
                (sorted(helped - docs), sorted(docs - helped)))
        h = sn("-h")
        c.check(h.returncode == 0 and h.stdout == p.stdout, "-h is --help")
        print("3. --help and docs/cli.md name the same %d options" % len(docs))

        # 4. bad values
        for args, says in ((["--threads", "0"], "--threads needs an integer from 1 to 1024, got '0'"),
                           (["--chunk", "x"], "--chunk needs an integer from 1 to 1000000, got 'x'"),
                           (["--epochs", "1000001"], "--epochs needs an integer from 1 to 1000000, got '1000001'"),
                           (["--timesteps", "-3"], "--timesteps needs an integer from 1 to 1000000, got '-3'"),
                           (["--batch", "0"], "--batch needs an integer from 1 to 1048576, got '0'"),
                           (["--seed", "-1"], "--seed needs a non-negative integer, got '-1'"),
                           (["--lr", "0"], "--lr needs a learning rate above 0"),
                           (["--math", "slow"], "--math needs 'exact' or 'fast', got 'slow'"),
                           (["--timesteps"], "option --timesteps needs a value"),
                           (["--bogus"], "unknown option '--bogus'")):
            p = sn("compile", model, *args)
            c.check(p.returncode == 2 and says in p.stderr and "(snnc --help for usage)" in p.stderr,
                    "compile %s: exit 2 saying %r: %d %r" % (" ".join(args), says, p.returncode, p.stderr))
        p = sn("compile", model, "--dump-ir=after:", "-o", os.path.join(d, "dump"))
        c.check(p.returncode == 1 and "unknown pass ''" in p.stderr, "--dump-ir=after: with nothing after: %r" %
                p.stderr)
        print("4. bad values refused with exit 2, naming the option, its range and the value")
    return c.status()


def warned_text(err, opt, cmd):
    return ("snnc: warning: %s does nothing for %s" % (opt, cmd)) in err and "(ignored)" in err


if __name__ == "__main__":
    sys.exit(main())
