#!/usr/bin/env python3
"""Load benchmark of `kvsieve serve` (a script, not a test): N concurrent
clients, each streaming one completion of a long prompt through the OpenAI
SDK, with the full KV cache and with a cut to a budget. Prints a markdown
table: throughput, p50/p99 time to first token and per token, the server's
peak memory, failed or lost requests; then how many sessions live at once in
a fixed --kv-memory with and without eviction.

    build/pyenv/bin/python scripts/bench_serve.py                 # 1,4,16,64 clients, 4K prompts
    build/pyenv/bin/python scripts/bench_serve.py --clients 1,4 --prompt-tokens 1024   # quicker

Needs the OpenAI client (scripts/serve_pyenv.sh makes build/pyenv)."""
import argparse
import concurrent.futures
import os
import shlex
import statistics
import sys
import time

import openai

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "serve"))
from serve_harness import Server  # noqa: E402

WORDS = ("The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again. ").split()


def make_prompt(i, n_words):
    """A haystack of n_words words with one needle, different per client."""
    words = [WORDS[(i + k) % len(WORDS)] for k in range(n_words)]
    words.insert(n_words // 2, "One of the special magic numbers for client-%d is: %07d." % (i, 1000003 * i % 9999991))
    return " ".join(words) + " What is the special magic number for client-%d mentioned in the provided text?" % i


_CALIBRATED = {}


def calibrate(c, model, target):
    """Words that make a prompt of about `target` tokens (the server counts; once per target)."""
    if target in _CALIBRATED:
        return _CALIBRATED[target]
    n = int(target * 0.7)  # words are ~1.3 tokens each here; never start above the context
    for _ in range(3):
        r = c.completions.create(model=model, prompt=make_prompt(0, n), max_tokens=1)
        n = max(16, int(n * target / r.usage.prompt_tokens))
    _CALIBRATED[target] = n
    return n


def one(c, model, prompt, max_tokens, kv):
    t0 = time.perf_counter()
    first = last = None
    n = 0
    usage = None
    stream = c.completions.create(model=model, prompt=prompt, max_tokens=max_tokens, temperature=0, stream=True,
                                  stream_options={"include_usage": True},
                                  extra_body={"ignore_eos": True, **({"kv": kv} if kv else {})})
    for ch in stream:
        now = time.perf_counter()
        if ch.choices and ch.choices[0].text:
            first = first or now
            last = now
        if ch.usage:
            usage = ch.usage
    n = usage.completion_tokens if usage else 0
    return {"ttft": (first or time.perf_counter()) - t0,
            "per_token": (last - first) / (n - 1) if first and n > 1 else 0.0,
            "tokens": n, "prompt_tokens": usage.prompt_tokens if usage else 0,
            "kv_kept": usage.model_dump().get("kv_bytes_kept", 0) if usage else 0}


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))] if xs else float("nan")


def run_level(args, clients, kv):
    s = Server(args.binary, args.model, *args.server_args, "--parallel", max(clients, 1), "--max-queue", 4 * clients + 4,
               "--max-tokens", args.max_tokens, "--ctx-size", args.prompt_tokens + args.max_tokens + 256,
               "--max-body-bytes", 8 << 20, "--timeout", 3600)
    try:
        c = openai.OpenAI(base_url=s.url + "/v1", api_key="none", max_retries=0, timeout=3600)
        model = c.models.list().data[0].id
        n_words = calibrate(c, model, args.prompt_tokens)
        prompts = [make_prompt(i + 1, n_words) for i in range(clients)]
        t0 = time.perf_counter()
        results, failed = [], 0
        with concurrent.futures.ThreadPoolExecutor(clients) as ex:
            futs = [ex.submit(one, c, model, p, args.max_tokens, kv) for p in prompts]
            for f in futs:
                try:
                    results.append(f.result())
                except Exception as e:  # counted, not hidden
                    print("request failed:", e, file=sys.stderr)
                    failed += 1
        wall = time.perf_counter() - t0
        lost = sum(1 for r in results if r["tokens"] != args.max_tokens)
        gen = sum(r["tokens"] for r in results)
        return {"clients": clients, "kv": kv["method"] + " " + str(kv["budget"]) if kv else "full",
                "prompt": statistics.mean(r["prompt_tokens"] for r in results) if results else 0,
                "wall": wall, "tok_s": gen / wall, "prompt_tok_s": sum(r["prompt_tokens"] for r in results) / wall,
                "ttft50": pct([r["ttft"] for r in results], 50), "ttft99": pct([r["ttft"] for r in results], 99),
                "tpt50": pct([r["per_token"] for r in results], 50), "tpt99": pct([r["per_token"] for r in results], 99),
                "rss": s.peak_rss(), "failed": failed, "lost": lost,
                "batch": s.metrics()["kvsieve_decode_batch_rows_total"] / max(1, s.metrics()["kvsieve_decode_steps_total"])}
    finally:
        s.stop()


def sessions_that_fit(args, kv):
    """Peak live sessions when 64 clients at once ask in --kv-memory."""
    s = Server(args.binary, args.model, *args.server_args, "--parallel", 256, "--max-queue", 256, "--kv-memory", args.kv_memory,
               "--max-tokens", args.fit_tokens, "--ctx-size", args.prompt_tokens + args.fit_tokens + 256,
               "--max-body-bytes", 8 << 20, "--timeout", 3600)
    try:
        c = openai.OpenAI(base_url=s.url + "/v1", api_key="none", max_retries=0, timeout=3600)
        model = c.models.list().data[0].id
        n_words = calibrate(c, model, args.prompt_tokens)
        body = dict(max_tokens=args.fit_tokens, temperature=0, extra_body={"ignore_eos": True, **({"kv": kv} if kv else {})})
        with concurrent.futures.ThreadPoolExecutor(args.fit_clients) as ex:
            res = list(ex.map(lambda i: c.completions.create(model=model, prompt=make_prompt(i, n_words), **body),
                              range(args.fit_clients)))
        m = s.metrics()
        return m["kvsieve_sessions_peak"], len(res), m["kvsieve_kv_bytes_saved_total"]
    finally:
        s.stop()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", default=os.path.join(HERE, "..", "build", "kvsieve"))
    ap.add_argument("--model", default=os.path.join(HERE, "..", "models", "kvsieve-tiny.gguf"))
    ap.add_argument("--clients", default="1,4,16,64")
    ap.add_argument("--prompt-tokens", type=int, default=4096)
    ap.add_argument("--max-tokens", type=int, default=32)
    ap.add_argument("--method", default="snapkv")
    ap.add_argument("--budget", type=int, default=256)
    ap.add_argument("--kv-memory", default="512M")
    ap.add_argument("--fit-clients", type=int, default=64)
    ap.add_argument("--fit-tokens", type=int, default=64)
    ap.add_argument("--skip-fit", action="store_true")
    ap.add_argument("--server-args", default="", type=shlex.split,
                    help='more options for kvsieve serve, e.g. "--device cuda --kv-type bf16"')
    args = ap.parse_args()
    print("| clients | kv | prompt tokens | wall s | gen tok/s | prompt tok/s | TTFT p50 / p99 s | per token p50 / p99 ms | mean batch | peak RSS MiB | failed | lost |")
    print("| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for n in [int(x) for x in args.clients.split(",") if x]:  # --clients "": the memory figure only
        for kv in (None, {"method": args.method, "budget": args.budget}):
            r = run_level(args, n, kv)
            print("| %d | %s | %.0f | %.1f | %.1f | %.0f | %.2f / %.2f | %.1f / %.1f | %.1f | %.0f | %d | %d |" % (
                r["clients"], r["kv"], r["prompt"], r["wall"], r["tok_s"], r["prompt_tok_s"], r["ttft50"], r["ttft99"],
                1e3 * r["tpt50"], 1e3 * r["tpt99"], r["batch"], r["rss"] / 2**20, r["failed"], r["lost"]), flush=True)
    if not args.skip_fit:
        print("\nSessions alive at once, %d clients, --kv-memory %s, %d-token prompts, %d new tokens:" % (
            args.fit_clients, args.kv_memory, args.prompt_tokens, args.fit_tokens))
        for kv in (None, {"method": args.method, "budget": args.budget}):
            peak, done, saved = sessions_that_fit(args, kv)
            print("- %s: %d sessions at most (%d requests served, %.0f MiB freed by cuts)" % (
                kv["method"] + " " + str(kv["budget"]) if kv else "full cache", peak, done, saved / 2**20), flush=True)


if __name__ == "__main__":
    main()
