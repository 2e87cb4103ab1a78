#!/usr/bin/env python3
"""Rewrites kept_goldens.sh's raw lines (a --dump-kept document per case) in the
compact form the goldens keep: per head "budget:ranges", heads separated by ' ',
layers by ' | '. stdin -> stdout, JSON lines."""
import json
import sys


def ranges(xs):
    out, i = [], 0
    while i < len(xs):
        j = i
        while j + 1 < len(xs) and xs[j + 1] == xs[j] + 1:
            j += 1
        out.append(str(xs[i]) if i == j else f"{xs[i]}-{xs[j]}")
        i = j + 1
    return ",".join(out)


for line in sys.stdin:
    row = json.loads(line)
    if "kept" in row:
        d = row["kept"]
        layers = sorted(d["layers"], key=lambda L: L["layer"])
        row["kept"] = " | ".join(
            " ".join(f'{h["budget"]}:{ranges(h["kept"])}' for h in sorted(L["heads"], key=lambda h: h["head"]))
            for L in layers)
        row["heads"] = d["n_heads"]
        row["prompt_tokens"] = d["prompt_tokens"]
    print(json.dumps(row, separators=(",", ":")))
