#!/usr/bin/env python3
"""test_build_cache.py: snnc run, train and grad build each piece of code
once (compiler/backend/c/cache.c, docs/cli.md "The build cache").

The C compiler is a wrapper script that logs its command lines, so the test
sees whether a run compiled; SNNC_CACHE_DIR is a folder of the test's own.
1. The first run of a network compiles (and asks once whether the
   compiler links OpenMP code); the second compiles nothing and writes the
   same output, byte for byte; --keep-build then still holds the object.
   The compiler changed (its modification time) builds and asks anew.
2. Another network, another batch size, --threads 1 or CPATH set each
   compile once more; the cache holds an entry for each.
3. An entry that does not load (cut to a few bytes) is built anew, with
   the same output, and replaced.
4. SNNC_CACHE_MAX=2 keeps the two most recently used entries.
5. SNNC_CACHE_DIR set empty turns the cache off: every run compiles.
6. snnc train and snnc grad use it too: a second run compiles nothing and
   writes the same weights and gradients.
7. A header the compiler reads changed (a compiler wrapper that includes a
   header of the test's, -include, as a library's header is included),
   with the compiler and the command as they were: built anew, and then
   taken from the cache again; an entry whose list of headers is missing
   is built anew.
8. A short run (snnc run or grad under 2e9 multiply-accumulates,
   compiler/driver/load.c) builds with -O2, a longer one and snnc train
   with -O3; the same runs built at the other level (a compiler wrapper
   that swaps -O2 and -O3, the cache off) write the same bytes.
"""
import os
import stat
import subprocess
import sys
import tempfile

import numpy as np

from snnc_ref import Checker, skip, snnc_path

NET = """
network Cache%d {
  timesteps 3;
  input x : [6] encode direct;
  h = x |> dense(%d) |> LIF();
  out = h |> dense(3) |> LI();
  output out readout mean;
}
"""


# 2 x 1024 x 1024 multiply-accumulates a step, 100 steps: 2.1e8 a sample
BIG = """
network Big {
  timesteps 100;
  input x : [1024] encode direct;
  h = x |> dense(1024) |> LIF();
  out = h |> dense(1024) |> LI();
  output out readout mean;
}
"""


def main():
    snnc = snnc_path()
    cc = next((c for c in ("gcc", "cc", "clang") if any(os.access(os.path.join(d, c), os.X_OK)
                                                        for d in os.environ.get("PATH", "").split(":"))), None)
    if not cc:
        skip("no C compiler")
    ck = Checker()
    with tempfile.TemporaryDirectory() as d:
        log = os.path.join(d, "cc.log")
        wrapper = os.path.join(d, "cc")
        with open(wrapper, "w") as f:
            f.write('#!/bin/sh\necho "$*" >> "%s"\nexec %s "$@"\n' % (log, cc))
        os.chmod(wrapper, os.stat(wrapper).st_mode | stat.S_IEXEC)
        cache = os.path.join(d, "cache")
        env = dict(os.environ, SNNC_CACHE_DIR=cache)
        env.pop("SNNC_CACHE_MAX", None)
        models = []
        for k, n in enumerate((8, 16, 32)):
            models.append(os.path.join(d, "m%d.snn" % k))
            with open(models[-1], "w") as f:
                f.write(NET % (k, n))
        x = os.path.join(d, "x.npy")
        np.save(x, np.linspace(0, 3, 2 * 6, dtype=np.float32).reshape(2, 6))
        x3 = os.path.join(d, "x3.npy")  # another batch: the code's largest batch is the input's
        np.save(x3, np.linspace(0, 3, 3 * 6, dtype=np.float32).reshape(3, 6))

        def lines():
            return open(log).read().splitlines() if os.path.exists(log) else []

        def run(model, out, extra=(), e=None, inp=x):
            """snnc run: (exit status, output, the compiler's command lines of the run)."""
            before = len(lines())
            p = subprocess.run([snnc, "run", model, "--init", "1", "--input", inp, "--output", out, "--cc", wrapper,
                                "--target", "c"] + list(extra), capture_output=True, text=True, env=e or env)
            if p.returncode != 0:
                print(p.stdout + p.stderr)
            return p.returncode, lines()[before:]

        def entries():
            return sorted(f for f in os.listdir(cache) if f.endswith(".so")) if os.path.isdir(cache) else []

        # 1. once, then from the cache
        y1, y2 = os.path.join(d, "y1.npy"), os.path.join(d, "y2.npy")
        rc, first = run(models[0], y1, ["--threads", "2"])
        builds = [c for c in first if "Cache0" in c or "cache0" in c]
        ck.check(rc == 0 and len(builds) == 1 and any("omp_probe" in c for c in first),
                 "the first run compiles once and asks about OpenMP: %r" % first)
        keep = os.path.join(d, "keep")
        rc, second = run(models[0], y2, ["--threads", "2", "--keep-build", keep])
        ck.check(rc == 0 and second == [], "the second run compiles nothing: %r" % second)
        ck.check(open(y1, "rb").read() == open(y2, "rb").read(), "the second run's output is the first's, bit for bit")
        ck.check(any(f.endswith(".so") for f in os.listdir(keep)) if os.path.isdir(keep) else False,
                 "--keep-build holds the object taken from the cache")
        ck.check(len(entries()) == 1, "one entry in the cache: %r" % entries())
        # the compiler changed (its modification time, as an upgrade changes it): built anew, asked anew
        t = os.stat(wrapper).st_mtime + 10
        os.utime(wrapper, (t, t))
        rc, got = run(models[0], y2, ["--threads", "2"])
        ck.check(rc == 0 and len([c for c in got if "omp_probe" not in c]) == 1 and
                 any("omp_probe" in c for c in got), "a changed compiler builds anew and is asked anew: %r" % got)
        # 2. what changes the code or the command compiles anew
        for what, model, extra, inp in (("another network", models[1], [], x), ("another batch", models[0], [], x3),
                                        ("--threads 1", models[0], ["--threads", "1"], x)):
            rc, got = run(model, os.path.join(d, "y3.npy"), extra, None, inp)
            ck.check(rc == 0 and len([c for c in got if "omp_probe" not in c]) == 1,
                     "%s compiles once: %r" % (what, got))
        rc, got = run(models[0], os.path.join(d, "y3.npy"), ["--threads", "2"], dict(env, CPATH=d))
        ck.check(rc == 0 and len([c for c in got if "omp_probe" not in c]) == 1,
                 "CPATH set (what the compiler reads) compiles once: %r" % got)
        ck.check(len(entries()) == 6, "an entry for each: %r" % entries())
        # 3. an entry that does not load is built anew
        for f in entries():
            with open(os.path.join(cache, f), "r+b") as g:
                g.truncate(16)
        y4 = os.path.join(d, "y4.npy")
        rc, got = run(models[0], y4, ["--threads", "2"])
        ck.check(rc == 0 and len(got) == 1, "an entry that does not load is built anew: %r" % got)
        ck.check(rc == 0 and open(y1, "rb").read() == open(y4, "rb").read(), "with the same output")
        ck.check(any(os.path.getsize(os.path.join(cache, f)) > 16 for f in entries()), "and replaced")
        # 4. at most SNNC_CACHE_MAX entries, the most recently used kept
        small = dict(env, SNNC_CACHE_MAX="2")
        rc, _ = run(models[2], os.path.join(d, "y5.npy"), [], small)
        ck.check(rc == 0 and len(entries()) == 2, "SNNC_CACHE_MAX=2: %r" % entries())
        rc, got = run(models[2], os.path.join(d, "y5.npy"), [], small)
        ck.check(rc == 0 and got == [], "the newest entry is one of them: %r" % got)
        # 5. off
        off = dict(env, SNNC_CACHE_DIR="")
        n = len(entries())
        got = [run(models[0], os.path.join(d, "y6.npy"), ["--threads", "1"], off)[1] for _ in range(2)]
        ck.check(all(len(g) == 1 for g in got) and len(entries()) == n, "SNNC_CACHE_DIR= : every run compiles: %r" % got)
        # 6. train and grad
        g = os.path.join(d, "g.npy")
        np.save(g, np.ones((3, 2, 3), np.float32))
        outs = []
        for k in range(2):
            before = len(lines())
            out = os.path.join(d, "grad%d.safetensors" % k)
            p = subprocess.run([snnc, "grad", models[1], "--init", "1", "--input", x, "--grad-output", g, "--output",
                                out, "--cc", wrapper, "--target", "c", "--threads", "1"],
                               capture_output=True, text=True, env=env)
            builds = builds if k else lines()[before:]
            outs.append((p.returncode, len(lines()) - before, open(out, "rb").read() if p.returncode == 0 else b""))
        grad_builds = builds
        ck.check(outs[0][0] == 0 and outs[1][0] == 0 and outs[0][1] == 1 and outs[1][1] == 0 and
                 outs[0][2] == outs[1][2], "snnc grad: built once, the same gradients: %r" % [o[:2] for o in outs])
        data = os.path.join(d, "data")
        os.makedirs(data)
        rng = np.random.default_rng(2)
        for split, n in (("train", 32), ("test", 16)):
            np.save(os.path.join(data, split + "_x.npy"), rng.random((n, 6)).astype(np.float32))
            np.save(os.path.join(data, split + "_y.npy"), rng.integers(0, 3, n))
        tm = os.path.join(d, "t.snn")
        with open(tm, "w") as f:
            f.write(NET % (9, 8) + """
train Cache9 {
  data npy(train_x = "%s/train_x.npy", train_y = "%s/train_y.npy", test_x = "%s/test_x.npy", test_y = "%s/test_y.npy");
  epochs 1; batch 8; seed 1;
}
""" % (data, data, data, data))
        outs = []
        for k in range(2):
            before = len(lines())
            out = os.path.join(d, "train%d" % k)
            p = subprocess.run([snnc, "train", tm, "-o", out, "--cc", wrapper, "--target", "c", "--threads", "1"],
                               capture_output=True, text=True, env=env)
            builds = builds if k else lines()[before:]
            w = os.path.join(out, "weights.safetensors")
            outs.append((p.returncode, len(lines()) - before, open(w, "rb").read() if p.returncode == 0 else b""))
        ck.check(outs[0][0] == 0 and outs[1][0] == 0 and outs[0][1] == 1 and outs[1][1] == 0 and
                 outs[0][2] == outs[1][2], "snnc train: built once, the same weights: %r" % [o[:2] for o in outs])
        # 7. the headers the compiler read
        hdr = os.path.join(d, "extra header.h")  # a blank, as the compiler escapes it
        with open(hdr, "w") as f:
            f.write("/* version 1 */\n")
        hwrap = os.path.join(d, "cc-with-header")
        with open(hwrap, "w") as f:
            f.write('#!/bin/sh\necho "$*" >> "%s"\nexec %s -include "%s" "$@"\n' % (log, cc, hdr))
        os.chmod(hwrap, os.stat(hwrap).st_mode | stat.S_IEXEC)

        def hrun():
            before = len(lines())
            p = subprocess.run([snnc, "run", models[1], "--init", "1", "--input", x, "--output",
                                os.path.join(d, "y7.npy"), "--cc", hwrap, "--target", "c", "--threads", "1"],
                               capture_output=True, text=True, env=env)
            return p.returncode, len(lines()) - before
        got = [hrun(), hrun()]
        with open(hdr, "w") as f:
            f.write("/* version 2, a little longer */\n")
        got += [hrun(), hrun()]
        ck.check(got == [(0, 1), (0, 0), (0, 1), (0, 0)],
                 "a changed header builds anew, then the cache serves it: (status, compilations) %r" % got)
        for f in os.listdir(cache):
            if f.endswith(".dep"):
                os.unlink(os.path.join(cache, f))
        ck.check(hrun() == (0, 1), "an entry without its list of headers is built anew")
        # 8. the optimization level: -O2 for a short run, -O3 otherwise; the same values either way
        def level(cmds):
            return sorted({a for c in cmds if "omp_probe" not in c for a in c.split() if a in ("-O2", "-O3")})
        ck.check(level(first) == ["-O2"], "a short run builds with -O2: %r" % first)
        ck.check(level(grad_builds) == ["-O2"], "a short snnc grad builds with -O2: %r" % grad_builds)
        ck.check(level(builds) == ["-O3"], "snnc train builds with -O3: %r" % builds)
        big = os.path.join(d, "big.snn")
        with open(big, "w") as f:
            f.write(BIG)
        xb = os.path.join(d, "xb.npy")  # 10 samples: 2.1e9 multiply-accumulates
        np.save(xb, np.linspace(0, 1, 10 * 1024, dtype=np.float32).reshape(10, 1024))
        yb, yb2 = os.path.join(d, "yb.npy"), os.path.join(d, "yb2.npy")
        rc, got = run(big, yb, ["--threads", "1"], None, xb)
        ck.check(rc == 0 and level(got) == ["-O3"], "a run of 2.1e9 multiply-accumulates builds with -O3: %r" % got)
        swap = os.path.join(d, "cc-swap")
        with open(swap, "w") as f:
            f.write('#!/bin/sh\nfor a; do shift; case "$a" in -O2) a=-O3;; -O3) a=-O2;; esac; set -- "$@" "$a"; done\n'
                    'echo "$*" >> "%s"\nexec %s "$@"\n' % (log, cc))
        os.chmod(swap, os.stat(swap).st_mode | stat.S_IEXEC)
        for model, inp, ref, want in ((models[0], x, y1, "-O3"), (big, xb, yb, "-O2")):
            out = os.path.join(d, "swapped.npy")
            before = len(lines())
            p = subprocess.run([snnc, "run", model, "--init", "1", "--input", inp, "--output", out, "--cc", swap,
                                "--target", "c", "--threads", "2" if model != big else "1"],
                               capture_output=True, text=True, env=off)
            got = lines()[before:]
            ck.check(p.returncode == 0 and level(got) == [want] and open(out, "rb").read() == open(ref, "rb").read(),
                     "%s built with %s writes the same bytes: %r" % (os.path.basename(model), want, got))
    sys.exit(ck.status())


if __name__ == "__main__":
    main()
