#!/usr/bin/env python3
"""Hugging Face transformers (SDPA attention, bf16, one GPU) on a model folder: prefill tokens/s at
each prompt length, then decode tokens/s after the longest prompt. Prints one JSON line.

    python3 hf_bench.py --model DIR --lengths 8192,32768 [--decode 64] [--reps 3]

Prefill: median of --reps timed runs after one warm-up, each a fresh cache, logits of the last
position only. Decode: --decode greedy tokens after the longest prompt, after 8 warm-up steps.
"""
import argparse
import json
import statistics
import time

import numpy as np
import torch
from transformers import AutoModelForCausalLM, DynamicCache


def timed(fn):
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    out = fn()
    torch.cuda.synchronize()
    return time.perf_counter() - t0, out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--lengths", default="8192,32768")
    ap.add_argument("--decode", type=int, default=64)
    ap.add_argument("--reps", type=int, default=3)
    a = ap.parse_args()
    model = AutoModelForCausalLM.from_pretrained(a.model, dtype=torch.bfloat16,
                                                 attn_implementation="sdpa").cuda().eval()
    res = {"engine": "transformers", "prefill": {}}
    lengths = [int(x) for x in a.lengths.split(",")]
    with torch.no_grad():
        for n in lengths:
            ids = torch.from_numpy(np.load(f"{a.model}/ids_{n}.npy").astype(np.int64)).cuda()[None]
            run = lambda: model(input_ids=ids, past_key_values=DynamicCache(), logits_to_keep=1)
            timed(run)
            ts = [timed(run)[0] for _ in range(a.reps)]
            res["prefill"][n] = {"s": statistics.median(ts), "tokens_per_s": n / statistics.median(ts),
                                 "runs": ts}
        n = lengths[-1]
        ids = torch.from_numpy(np.load(f"{a.model}/ids_{n}.npy").astype(np.int64)).cuda()[None]
        cache = DynamicCache()
        out = model(input_ids=ids, past_key_values=cache, logits_to_keep=1)
        tok = out.logits[:, -1:].argmax(-1)
        steps = []
        for i in range(8 + a.decode):
            dt, out = timed(lambda: model(input_ids=tok, past_key_values=cache))
            tok = out.logits[:, -1:].argmax(-1)
            if i >= 8:
                steps.append(dt)
        res["decode"] = {"after": n, "tokens": a.decode, "tokens_per_s": a.decode / sum(steps),
                         "median_step_s": statistics.median(steps)}
    res["peak_gpu_bytes"] = torch.cuda.max_memory_allocated()
    print(json.dumps(res))


if __name__ == "__main__":
    main()
