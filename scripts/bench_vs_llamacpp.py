#!/usr/bin/env python3
"""kvsieve beside llama.cpp on the same GGUF files, same threads, engines interleaved.

For each round and each model: llama.cpp's llama-bench (prompt lengths, then decode at each
depth), then `kvsieve bench` with the same settings, one repetition each; after all rounds, a
Markdown table of the medians over the rounds (and their range) and kvsieve / llama.cpp.
Interleaving the engines round by round spreads a noisy machine's slow spells over both.

    python3 scripts/bench_vs_llamacpp.py --llama-bench PATH/llama-bench MODEL.gguf [MODEL.gguf ...]
        [--kvsieve build/kvsieve] [--threads 2] [--rounds 3] [--prompts 512,2048]
        [--decode 128] [--depths 0,2048] [--json results.json]

llama.cpp is not part of kvsieve: build it yourself from a release of its public repository.
Both engines keep the K/V cache in f16 here (llama-bench's default).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def run_json(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit("failed (%d): %s\n%s" % (r.returncode, " ".join(cmd), r.stderr[-2000:]))
    return json.loads(r.stdout)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", nargs="+", help="GGUF files")
    ap.add_argument("--llama-bench", required=True, help="llama.cpp's llama-bench binary")
    ap.add_argument("--kvsieve", default=os.path.join(HERE, "..", "build", "kvsieve"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--prompts", default="512,2048")
    ap.add_argument("--decode", type=int, default=128)
    ap.add_argument("--depths", default="0,2048")
    ap.add_argument("--json", help="also write every sample here")
    a = ap.parse_args()
    t = str(a.threads)
    # samples[(model, test)] = {"llama.cpp": [...], "kvsieve": [...]}
    samples = {}

    def add(model, test, engine, value):
        samples.setdefault((model, test), {"llama.cpp": [], "kvsieve": []})[engine].append(value)

    for rnd in range(a.rounds):
        for m in a.models:
            name = os.path.basename(m)
            print("round %d/%d: %s" % (rnd + 1, a.rounds, name), file=sys.stderr, flush=True)
            for r in run_json([a.llama_bench, "-m", m, "-t", t, "-p", a.prompts, "-n", "0", "-r", "1", "-o", "json"]):
                add(name, "pp%d" % r["n_prompt"], "llama.cpp", r["avg_ts"])
            for r in run_json([a.llama_bench, "-m", m, "-t", t, "-p", "0", "-n", str(a.decode), "-d", a.depths,
                               "-r", "1", "-o", "json"]):
                add(name, "tg%d @ d%d" % (r["n_gen"], r["n_depth"]), "llama.cpp", r["avg_ts"])
            k = run_json([a.kvsieve, "bench", "-m", m, "-t", t, "-p", a.prompts, "-n", str(a.decode), "-d", a.depths,
                          "-r", "1", "--kv-type", "f16", "--json"])
            for p in k["prefill"]:
                add(name, "pp%d" % p["tokens"], "kvsieve", p["tokens_per_second"]["median"])
            for d in k["decode"]:
                add(name, "tg%d @ d%d" % (d["tokens"], d["depth"]), "kvsieve", d["tokens_per_second"]["median"])

    print("| model | test | llama.cpp tok/s | kvsieve tok/s | kvsieve / llama.cpp |")
    print("| --- | --- | ---: | ---: | ---: |")
    for (model, test), s in samples.items():
        def cell(xs):
            return "%.1f (%.1f-%.1f)" % (statistics.median(xs), min(xs), max(xs)) if xs else "-"
        ratio = (statistics.median(s["kvsieve"]) / statistics.median(s["llama.cpp"])
                 if s["kvsieve"] and s["llama.cpp"] else float("nan"))
        print("| %s | %s | %s | %s | %.2f |" % (model, test, cell(s["llama.cpp"]), cell(s["kvsieve"]), ratio))
    if a.json:
        with open(a.json, "w") as f:
            json.dump([{"model": m, "test": te, **s} for (m, te), s in samples.items()], f, indent=1)


if __name__ == "__main__":
    main()
