#!/usr/bin/env python3
"""NVIDIA kvpress's presses with transformers on the CPU, on the prompts of a `kvsieve eval` run:
the scores to set beside kvsieve's at the same compression ratios.

    kvsieve eval -m MODEL.gguf --chat --tasks T --lengths L --samples N --print-samples > prompts.jsonl
    python3 scripts/kvpress_reference/compare_eval.py --kvpress third_party_ref --gguf MODEL.gguf \
        --prompts prompts.jsonl --out kvpress.jsonl

transformers reads the same GGUF (`gguf_file=`, every tensor dequantized to float32). Each prompt
is split into context and question exactly as kvsieve splits it (the whole text tokenized once;
the context is the prefix its own tokens share). As kvpress's pipeline does, the context alone is
prefilled under the press (the question is read after the cut: query-agnostic), then the question
and a greedy answer follow at the context's true positions, stopping at the end-of-generation
token or the sample's max_new_tokens. Scored with kvsieve's string_match_all (the share of the
answers found in the prediction, case-folded). One JSON line per (prompt, method, ratio), with the
prefill-with-press and decode times. Resumes: lines already in --out are skipped.
"""
import argparse
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_keep_sets as mks  # noqa: E402  (kvpress import and hook shims)


def string_match_all(pred, refs):
    p = pred.lower()
    return sum(1.0 for r in refs if r.lower() in p) / len(refs) if refs else 0.0


def split_ids(tok, context, question):
    full = tok(context + question, add_special_tokens=False).input_ids
    ctx = tok(context, add_special_tokens=False).input_ids
    k = 0
    while k < min(len(ctx), len(full)) and ctx[k] == full[k]:
        k += 1
    return full[:k], full[k:]


def answer(model, tok, ctx, q, press, max_new):
    from transformers import DynamicCache

    cache = DynamicCache()
    ids = torch.tensor([ctx])
    t0 = time.perf_counter()
    with torch.no_grad():
        if press is None:
            model.model(input_ids=ids, past_key_values=cache)
        else:
            with press(model):
                model.model(input_ids=ids, past_key_values=cache)
    prefill_s = time.perf_counter() - t0
    kept = cache.get_seq_length(0)
    t0 = time.perf_counter()
    # One token at a time, the question too: PyramidKV leaves each layer a cache of its own
    # length, and transformers builds one attention mask for all layers from layer 0's (a
    # single query needs none).
    pos = len(ctx)
    out = []
    logits = None
    with torch.no_grad():
        for t in q:
            logits = model(input_ids=torch.tensor([[t]]), past_key_values=cache,
                           position_ids=torch.tensor([[pos]]), use_cache=True).logits
            pos += 1
        while True:
            nxt = int(logits[0, -1].argmax())
            if nxt == tok.eos_token_id or len(out) == max_new:
                break
            out.append(nxt)
            logits = model(input_ids=torch.tensor([[nxt]]), past_key_values=cache,
                           position_ids=torch.tensor([[pos]]), use_cache=True).logits
            pos += 1
    decode_s = time.perf_counter() - t0
    return tok.decode(out, skip_special_tokens=True), prefill_s, decode_s, kept


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kvpress", required=True, help="folder holding the kvpress package (e.g. the PyPI wheel unpacked)")
    ap.add_argument("--gguf", required=True)
    ap.add_argument("--prompts", required=True, help="kvsieve eval --print-samples output")
    ap.add_argument("--methods", default="snapkv,pyramidkv,streamingllm,tova")
    ap.add_argument("--ratios", default="0.25,0.5,0.75")
    ap.add_argument("--out", required=True)
    ap.add_argument("--threads", type=int, default=0)
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    from transformers import AutoModelForCausalLM, AutoTokenizer

    kp = mks.import_kvpress(a.kvpress)
    folder, name = os.path.split(os.path.abspath(a.gguf))
    tok = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32,
                                                 attn_implementation="sdpa")
    model.eval()
    done = set()
    if os.path.exists(a.out):
        for line in open(a.out):
            r = json.loads(line)
            done.add((r["task"], r["id"], r["method"], r["ratio"]))
    prompts = [json.loads(line) for line in open(a.prompts)]
    ratios = [float(r) for r in a.ratios.split(",")]
    grid = [("full", 0.0)] + [(m, r) for m in a.methods.split(",") for r in ratios]
    with open(a.out, "a") as f:
        for i, s in enumerate(prompts):
            ctx, q = split_ids(tok, s["context"], s["question"])
            max_new = s["max_new_tokens"]
            for method, ratio in grid:
                if (s["task"], s["id"], method, ratio) in done:
                    continue
                press = None
                if method != "full":
                    press, _ = mks.make_press(kp, method, ratio)
                    mks.install_hook_shim(press, model)
                pred, prefill_s, decode_s, kept = answer(model, tok, ctx, q, press, max_new)
                row = {"task": s["task"], "id": s["id"], "length": s["length"], "method": method,
                       "ratio": ratio, "context_tokens": len(ctx), "kept_per_layer": kept,
                       "prediction": pred, "answers": s["answers"],
                       "score": string_match_all(pred, s["answers"]),
                       "prefill_s": prefill_s, "decode_s": decode_s}
                f.write(json.dumps(row) + "\n")
                f.flush()
                print(f"[{i + 1}/{len(prompts)}] {s['task']} {s['id']} {method} {ratio}: "
                      f"{row['score']:.2f} {pred[:40]!r} ({prefill_s:.2f} s + {decode_s:.2f} s)", flush=True)
    print("shims:", sorted(mks.SHIMS))


if __name__ == "__main__":
    main()
