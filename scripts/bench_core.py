#!/usr/bin/env python3
"""Before/after benchmark of two kvsieve binaries, run side by side in one sitting.

  scripts/bench_core.py BASE_KVSIEVE NEW_KVSIEVE [--reps 3] [--threads 2] [--big MODEL.gguf]

Every figure is measured for both binaries in the same run, the engines interleaved
(A B, B A, A B, ...) so that a slow spell of the machine hits both; medians are printed
with their spread (min-max). What it measures:

  1. prefill and decode tokens/s (`kvsieve run --ids`, 64 new tokens, --ignore-eos; the
     shipped model's short runs are repeated 3x as often) on the
     shipped model and on a ~1.1B random model (TinyLlama's shape, Q8_0; written by the
     new binary's `random-model` into build/bench/ unless --big names one), at prompts of
     512 and 4096 tokens;
  2. H2O's prefill overhead: prefill tokens/s with `--kv h2o` against `--kv full`
     (4096 tokens, shipped model);
  3. the demo's sweep (`kvsieve eval`, 3 tasks x 4 prompts of 4096 tokens, 7 methods x 3
     budgets): the cost figure each binary prints, wall time and peak RSS.

Stdlib only. Prints a Markdown table; --json FILE also writes the raw runs.
"""
import argparse
import json
import os
import random
import re
import shlex
import statistics
import struct
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHIPPED = os.path.join(ROOT, "models", "kvsieve-tiny.gguf")
SOFT = os.path.join(ROOT, "models", "kvsieve-tiny.judgeq.gguf")
DEMO_KV = ("streamingllm h2o snapkv pyramidkv laq laq++ judgeq:soft=" + SOFT)


def write_ids_npy(path, ids):
    """An int32 .npy file (format 1.0) holding ids, shape (n,)."""
    header = "{'descr': '<i4', 'fortran_order': False, 'shape': (%d,), }" % len(ids)
    pad = 64 - (10 + len(header) + 1) % 64
    header = header + " " * pad + "\n"
    with open(path, "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode("latin1"))
        f.write(struct.pack("<%di" % len(ids), *ids))


def run(cmd):
    """Runs cmd; returns (stderr text, wall seconds, peak RSS in bytes). Fails loudly."""
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    err = p.stderr.read()
    _, status, ru = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    wall = time.monotonic() - t0
    if p.returncode != 0:
        sys.exit("bench_core: failed (%d): %s\n%s" % (p.returncode, shlex.join(cmd), err[-2000:]))
    return err, wall, ru.ru_maxrss * 1024


def grab(pattern, text, what):
    m = re.search(pattern, text)
    if not m:
        sys.exit("bench_core: no %s in the output:\n%s" % (what, text[-2000:]))
    return float(m.group(1))


def med(xs):
    return "%.1f (%.1f-%.1f)" % (statistics.median(xs), min(xs), max(xs))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("base")
    ap.add_argument("new")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--big", help="the ~1B model (default: written by NEW's random-model)")
    ap.add_argument("--lengths", default="512,4096")
    ap.add_argument("--skip", default="", help="comma list of parts to skip: speed,big,h2o,sweep")
    ap.add_argument("--json", help="write the raw runs here")
    a = ap.parse_args()
    bins = {"before": a.base, "after": a.new}
    skip = set(filter(None, a.skip.split(",")))
    raw = {"speed": [], "h2o": [], "sweep": []}
    tmp = tempfile.mkdtemp(prefix="kvsieve-bench-")
    lengths = [int(x) for x in a.lengths.split(",")]
    rng = random.Random(7)
    ids = {}
    for n in lengths:
        # Ids 3..31999 exist in both models' vocabularies (32000); BOS first.
        ids[n] = os.path.join(tmp, "ids_%d.npy" % n)
        write_ids_npy(ids[n], [1] + [rng.randrange(3, 32000) for _ in range(n - 1)])

    # (label, path, repetitions): the shipped model's runs take tens of milliseconds, so they
    # get three times the repetitions to see through the machine's noise.
    models = [("shipped (17.6M, f32)", SHIPPED, 3 * a.reps)]
    if "big" not in skip:
        big = a.big
        if not big:
            big = os.path.join(ROOT, "build", "bench", "random-1.1b-q8_0.gguf")
            if not os.path.exists(big):
                os.makedirs(os.path.dirname(big), exist_ok=True)
                print("bench_core: writing %s (TinyLlama shape, Q8_0)" % big, file=sys.stderr)
                run([a.new, "random-model", "-o", big, "--dim", "2048", "--layers", "22",
                     "--heads", "32", "--kv-heads", "4", "--ff", "5632", "--vocab-size", "32000",
                     "--type", "q8_0"])
        models.append(("random 1.1B (q8_0)", big, a.reps))

    def order(rep):
        return ["before", "after"] if rep % 2 == 0 else ["after", "before"]

    th = ["-t", str(a.threads)]
    if "speed" not in skip:
        for label, path, reps in models:
            for n in lengths:
                for rep in range(reps):
                    for who in order(rep):
                        err, _, _ = run([bins[who], "run", "-m", path, "--ids", ids[n], "-n", "64",
                                         "--ignore-eos"] + th)
                        pre = grab(r"prefill [\d.]+ s \(([\d.]+) tokens/s\)", err, "prefill")
                        dec = grab(r"decode ([\d.]+) tokens/s", err, "decode")
                        raw["speed"].append(dict(model=label, n=n, who=who, prefill=pre, decode=dec))
                        print("  %-22s %5d %-6s prefill %8.1f decode %7.1f tokens/s"
                              % (label, n, who, pre, dec), file=sys.stderr)

    if "h2o" not in skip:
        n = max(lengths)
        for rep in range(3 * a.reps):
            for who in order(rep):
                for kv in (["--kv", "full"], ["--kv", "h2o", "--kv-budget", "256"]):
                    err, _, _ = run([bins[who], "run", "-m", SHIPPED, "--ids", ids[n], "-n", "1"]
                                    + kv + th)
                    pre = grab(r"prefill [\d.]+ s \(([\d.]+) tokens/s\)", err, "prefill")
                    raw["h2o"].append(dict(who=who, kv=kv[1], prefill=pre))
                    print("  h2o %-6s %-5s prefill %8.1f tokens/s" % (who, kv[1], pre), file=sys.stderr)

    if "sweep" not in skip:
        for rep in range(max(1, a.reps // 2)):
            for who in order(rep):
                out = os.path.join(tmp, "sweep_%s_%d.jsonl" % (who, rep))
                err, wall, rss = run([bins[who], "eval", "-m", SHIPPED, "--tasks",
                                      "niah_single_1,niah_multikey_2,vt", "--lengths", "4096",
                                      "--samples", "4", "--kv", DEMO_KV, "--budgets", "64,128,256",
                                      "--out", out] + th)
                cost = grab(r"sweep cost ([\d.]+)x", err, "sweep cost")
                raw["sweep"].append(dict(who=who, cost=cost, wall=wall, rss=rss))
                print("  sweep %-6s cost %.2fx wall %.1f s peak RSS %.1f MiB"
                      % (who, cost, wall, rss / 2**20), file=sys.stderr)

    print("\n| what | before | after | after / before |\n| --- | --- | --- | --- |")

    def row(what, xs_b, xs_a, unit=""):
        if not xs_b or not xs_a:
            return
        r = statistics.median(xs_a) / statistics.median(xs_b)
        print("| %s | %s%s | %s%s | %.3f |" % (what, med(xs_b), unit, med(xs_a), unit, r))

    for label, _, _ in models:
        for n in lengths:
            for key in ("prefill", "decode"):
                sel = [r for r in raw["speed"] if r["model"] == label and r["n"] == n]
                row("%s, %d tokens: %s tokens/s" % (label, n, key),
                    [r[key] for r in sel if r["who"] == "before"],
                    [r[key] for r in sel if r["who"] == "after"])
    for who in ("before", "after"):
        full = [r["prefill"] for r in raw["h2o"] if r["who"] == who and r["kv"] == "full"]
        h2o = [r["prefill"] for r in raw["h2o"] if r["who"] == who and r["kv"] == "h2o"]
        if full and h2o:
            raw.setdefault("h2o_overhead", {})[who] = statistics.median(full) / statistics.median(h2o) - 1
    if "h2o_overhead" in raw:
        o = raw["h2o_overhead"]
        print("| H2O prefill overhead (4096 tokens, shipped) | %.1f %% | %.1f %% | |"
              % (100 * o["before"], 100 * o["after"]))
    for key, what in (("cost", "demo sweep cost (x one full-cache run)"), ("wall", "demo sweep wall s"),
                      ("rss", "demo sweep peak RSS MiB")):
        scale = 2**20 if key == "rss" else 1
        row(what, [r[key] / scale for r in raw["sweep"] if r["who"] == "before"],
            [r[key] / scale for r in raw["sweep"] if r["who"] == "after"])
    if a.json:
        with open(a.json, "w") as f:
            json.dump(raw, f, indent=1)


if __name__ == "__main__":
    main()
