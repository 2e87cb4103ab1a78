#!/usr/bin/env python3
"""Make data/ruler/words.txt: kvsieve's own list of common lowercase English words.

RULER draws its key words and its common-words-extraction words from the third-party
`wonderwords` lists; kvsieve does not copy those. This script derives a list instead from the
public-domain novels in ../shared/data/haystack/public-domain (Frankenstein, War and Peace):

  1. split each text into words with the Unicode-aware pattern \\w+(?:'\\w+)* ;
  2. drop words that hold anything but ASCII letters (digits, accented letters, apostrophes,
     underscores), so no fragments such as "didn" or "kut" from "Kutuzov" slip in;
  3. count each word case-folded, and separately its all-lowercase occurrences;
  4. keep words of at least MIN_LEN letters whose lowercase occurrences are at least
     LOWER_SHARE of all occurrences (this removes names such as "pierre" or "natasha" and
     words seen mostly at the start of sentences or in titles);
  5. sort by count, descending, then alphabetically, and take the first N.

Standard library only; deterministic. Usage:
    python3 scripts/train_model/make_words.py [--shared ../shared] [-o data/ruler/words.txt]
"""
import argparse
import collections
import os
import re
import sys

MIN_LEN = 4
LOWER_SHARE = 0.9
N = 2000
TEXTS = ["frankenstein.txt", "war-and-peace.txt"]
WORD = re.compile(r"\w+(?:'\w+)*")
ASCII_LOWER = re.compile(r"[a-z]+")


def make_words(text_dir, n=N):
    total = collections.Counter()
    lower = collections.Counter()
    for name in TEXTS:
        with open(os.path.join(text_dir, name), encoding="utf-8") as f:
            text = f.read()
        for m in WORD.finditer(text):
            w = m.group(0)
            folded = w.lower()
            if not ASCII_LOWER.fullmatch(folded):
                continue
            total[folded] += 1
            if w == folded:
                lower[folded] += 1
    keep = [w for w, c in total.items()
            if len(w) >= MIN_LEN and lower[w] >= LOWER_SHARE * c]
    keep.sort(key=lambda w: (-total[w], w))
    if len(keep) < n:
        sys.exit(f"only {len(keep)} words qualify, {n} asked")
    return keep[:n]


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.normpath(os.path.join(here, "..", ".."))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shared", default=os.path.join(root, "..", "shared"))
    ap.add_argument("-o", "--out", default=os.path.join(root, "data", "ruler", "words.txt"))
    ap.add_argument("-n", type=int, default=N)
    a = ap.parse_args()
    words = make_words(os.path.join(a.shared, "data", "haystack", "public-domain"), a.n)
    with open(a.out, "w", encoding="utf-8") as f:
        f.write("\n".join(words) + "\n")
    print(f"wrote {len(words)} words to {a.out}")


if __name__ == "__main__":
    main()
