#!/usr/bin/env python3
"""Scores of a `kvsieve eval` results file, and each method's difference from a base method on the
same prompts (paired), as markdown.

    scripts/paired_gains.py RESULTS.jsonl [RESULTS2.jsonl ...] [--base snapkv] [--by-length]

Per (placement, method, budget): the mean score in points over the prompts, and the mean paired
difference from the base method at the same budget ± its standard error (over prompts; a prompt
counts when both methods were scored on it). A difference beyond twice its error is marked *.
"""
import argparse
import json
import math
from collections import defaultdict


def mean_se(x):
    m = sum(x) / len(x)
    v = sum((a - m) ** 2 for a in x) / (len(x) - 1) if len(x) > 1 else 0.0
    return m, math.sqrt(v / len(x))


def budget_of(r):
    if "budget" in r:
        return str(r["budget"])
    return f"r{r['ratio']}"


def budget_key(b):
    if b == "full":
        return (2, 0)
    if b.startswith("r"):
        return (1, float(b[1:]))
    return (0, int(b))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("results", nargs="+")
    ap.add_argument("--base", default="snapkv", help="the method the others are paired with")
    ap.add_argument("--by-length", action="store_true", help="a table per prompt length")
    ap.add_argument("--tasks", help="only these tasks (comma-separated)")
    a = ap.parse_args()
    tasks = set(a.tasks.split(",")) if a.tasks else None
    # scores[(mode, length or "all")][(method, budget)][(task, length, id)] = points
    scores = defaultdict(lambda: defaultdict(dict))
    for path in a.results:
        for line in open(path):
            r = json.loads(line)
            if "score" not in r or r.get("error") or (tasks and r["task"] not in tasks):
                continue
            groups = [r["length"], "all"] if a.by_length else ["all"]
            for g in groups:
                scores[(r["mode"], g)][(r.get("kv", r["method"]), budget_of(r))][(r["task"], r["length"], r["id"])] = 100.0 * r["score"]
    for (mode, group) in sorted(scores, key=lambda k: (k[0], str(k[1]))):
        s = scores[(mode, group)]
        budgets = sorted({b for (_, b) in s}, key=budget_key)
        methods = sorted({m for (m, _) in s}, key=lambda m: (m != "full", m != a.base, m))
        n = max(len(v) for v in s.values())
        print(f"\n### {mode}, {'all lengths' if group == 'all' else f'{group} tokens'} ({n} prompts)\n")
        cut_budgets = [b for b in budgets if b != "full"]
        print("| method | " + " | ".join(cut_budgets) + " |")
        print("|---|" + "---:|" * len(cut_budgets))
        for m in methods:
            if m == "full":
                full = s[("full", "full")]
                print(f"| full cache | " + " | ".join(f"{mean_se(list(full.values()))[0]:.1f}" for _ in cut_budgets) + " |")
                continue
            cells = []
            for b in cut_budgets:
                mine = s.get((m, b))
                if not mine:
                    cells.append("")
                    continue
                text = f"{mean_se(list(mine.values()))[0]:.1f}"
                base = s.get((a.base, b))
                if m != a.base and base:
                    keys = sorted(set(mine) & set(base))
                    if keys:
                        d, se = mean_se([mine[k] - base[k] for k in keys])
                        star = "*" if abs(d) > 2 * se and se > 0 else ""
                        text += f" ({d:+.1f}±{se:.1f}{star})"
                cells.append(text)
            print(f"| {m} | " + " | ".join(cells) + " |")
    print(f"\nScore in points (mean over prompts); in brackets the paired difference from {a.base} on the "
          "same prompts ± its standard error; * beyond twice the error.")


if __name__ == "__main__":
    main()
