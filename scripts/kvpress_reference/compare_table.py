#!/usr/bin/env python3
"""kvsieve's and kvpress's scores on the same prompts, side by side (markdown).

    compare_table.py KVSIEVE_RESULTS.jsonl KVPRESS_RESULTS.jsonl

KVSIEVE_RESULTS: `kvsieve eval --query-agnostic --kv-preset kvpress --ratios ...` rows;
KVPRESS_RESULTS: compare_eval.py's rows for the same prompts. Per (method, ratio): both mean
scores over the prompts both ran, the paired difference (kvsieve - kvpress) ± its standard error,
how many predictions are the same text, and the mean seconds per prompt of the prefill with its
cut (kvsieve: the shared prefill plus this cut; kvpress: the prefill under the press).
"""
import json
import math
import sys
from collections import defaultdict


def mean_se(x):
    m = sum(x) / len(x)
    v = sum((a - m) ** 2 for a in x) / (len(x) - 1) if len(x) > 1 else 0.0
    return m, math.sqrt(v / len(x))


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    ks, kp = defaultdict(dict), defaultdict(dict)
    for line in open(sys.argv[1]):
        r = json.loads(line)
        if "score" not in r or r.get("error"):
            continue
        ratio = 0.0 if r["method"] == "full" else r.get("ratio")
        if ratio is None:
            continue
        t = r["prefill_s"] + r.get("compress_s", 0.0)
        ks[(r["method"], ratio)][(r["task"], r["id"])] = (100 * r["score"], r["prediction"].strip(), t)
    for line in open(sys.argv[2]):
        r = json.loads(line)
        kp[(r["method"], r["ratio"])][(r["task"], r["id"])] = (100 * r["score"], r["prediction"].strip(), r["prefill_s"])
    print("| method | ratio | prompts | kvsieve | kvpress | kvsieve - kvpress | same prediction | "
          "kvsieve s (prefill + cut) | kvpress s (prefill with press) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    order = sorted(set(ks) & set(kp), key=lambda k: (k[0] != "full", k[0], k[1]))
    for key in order:
        keys = sorted(set(ks[key]) & set(kp[key]))
        if not keys:
            continue
        a = [ks[key][k][0] for k in keys]
        b = [kp[key][k][0] for k in keys]
        d, se = mean_se([x - y for x, y in zip(a, b)])
        same = sum(ks[key][k][1] == kp[key][k][1] for k in keys)
        ta = mean_se([ks[key][k][2] for k in keys])[0]
        tb = mean_se([kp[key][k][2] for k in keys])[0]
        print(f"| {key[0]} | {key[1] if key[0] != 'full' else '-'} | {len(keys)} | {mean_se(a)[0]:.1f} | "
              f"{mean_se(b)[0]:.1f} | {d:+.1f}±{se:.1f} | {same}/{len(keys)} | {ta:.2f} | {tb:.2f} |")


if __name__ == "__main__":
    main()
