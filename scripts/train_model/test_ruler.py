#!/usr/bin/env python3
"""Checks of ruler.py and data.py that need no torch and no tokenizer (python3 test_ruler.py).

The vectors below are the ones data/ruler/README.md gives for the C++ harness to match."""
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ruler  # noqa: E402


def count(s):  # a stand-in tokenizer: words and punctuation
    return len(re.findall(r"\w+|[^\w\s]", s))


def main():
    r = ruler.Rng(0)
    assert r.next() == 0xE220A8397B1DCDAF and r.next() == 7960286522194355700
    assert ruler.fnv1a64("") == 14695981039346656037 and ruler.fnv1a64("a") == 0xAF63DC4C8601EC8C
    r = ruler.sample_rng("niah_single_1", 4096, 0)
    assert [r.below(100) for _ in range(5)] == [8, 5, 13, 22, 18]
    assert r.sample_idx(10, 3) == [6, 2, 8]
    res = ruler.Resources()
    assert len(res.words) == 2000 and len(set(res.words)) == 2000
    text, refs, _ = ruler.build_text(res, "niah_single_1", 4096, 0, 12)
    assert refs == ["8862013"] and "takes-insignificant" in text
    assert ruler.build_text(res, "niah_multikey_3", 2048, 1, 3)[1] == ["db1d87ca-5987-4bc0-9e8b-b9b3b9045852"]
    novels = os.path.join(ruler.ROOT, "..", "shared", "data", "haystack", "public-domain")
    res.essay_words = ruler.read_essay_words([os.path.join(novels, "frankenstein.txt")]) \
        if os.path.isdir(novels) else ("The cat sat. " * 5000).split()
    for task, t in res.tasks.items():
        for L in (2048, 4096):
            s = ruler.make_sample(res, task, L, 3, count)
            assert s == ruler.make_sample(res, task, L, 3, count), task  # deterministic
            assert count(s["text"]) + t["tokens_to_generate"] <= L, task
            assert not ruler.build_text(res, task, L, 3, s["n"] * 2)[0] == s["text"]
            assert ruler.string_match_all(s["target"], s["refs"]) == 1.0, task
            assert all(r not in s["text"][-300:] for r in s["refs"]) or t["family"] != "niah", task
            g = ruler.make_sample(res, task, L, 4, count, guess=s["n"])
            assert count(g["text"]) + t["tokens_to_generate"] <= L, task
    assert ruler.string_match_all(" 1. a 2. b", ["A", "c"]) == 0.5
    assert ruler.string_match_part("x\x01y", ["Y"]) == 1.0
    print("ruler.py: all checks passed")


if __name__ == "__main__":
    main()
