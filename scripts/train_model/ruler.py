"""RULER synthetic tasks as data/ruler/README.md specifies them (pure Python, no dependencies).

The same procedure, RNG and draw order as the C++ evaluation harness, so a (task, length, seed)
gives the same sample in both. `build_text(task, L, seed, n)` makes the sample for haystack size
`n`; `make_sample` sizes it to L tokens (exactly, as evaluation does, or approximately, for
training). Training uses seeds >= TRAIN_SEED_MIN, evaluation seeds below it.
"""
import json
import math
import os
import re

TRAIN_SEED_MIN = 1_000_000
MASK64 = (1 << 64) - 1

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
DEPTHS = [int(round(i * 100 / 39)) for i in range(40)]
ZETA2 = math.pi ** 2 / 6


def fnv1a64(s):
    h = 0xCBF29CE484222325
    for b in s.encode("utf-8"):
        h = ((h ^ b) * 0x100000001B3) & MASK64
    return h


class Rng:
    """SplitMix64 with the helpers of data/ruler/README.md."""

    def __init__(self, seed):
        self.state = seed & MASK64

    def next(self):
        self.state = (self.state + 0x9E3779B97F4A7C15) & MASK64
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
        return z ^ (z >> 31)

    def below(self, n):
        return self.next() % n

    def randint(self, lo, hi):
        return lo + self.below(hi - lo + 1)

    def uniform(self):
        return (self.next() >> 11) * (1.0 / (1 << 53))

    def choice(self, seq):
        return seq[self.below(len(seq))]

    def shuffle(self, a):
        for i in range(len(a) - 1, 0, -1):
            j = self.below(i + 1)
            a[i], a[j] = a[j], a[i]

    def sample_idx(self, n, k):
        # partial Fisher-Yates over 0..n-1 (a dict keeps it O(k) for large n)
        swapped = {}
        out = []
        for i in range(k):
            j = i + self.below(n - i)
            vi, vj = swapped.get(i, i), swapped.get(j, j)
            swapped[i], swapped[j] = vj, vi
            out.append(vj)
        return out

    def sample(self, seq, k):
        return [seq[i] for i in self.sample_idx(len(seq), k)]


def sample_rng(task, length, seed):
    return Rng(fnv1a64(f"{task}/{length}/{seed}"))


# ---------------------------------------------------------------- resources

class Resources:
    """Task definitions, words and haystack text. `essay_words` is the word list of the essay
    haystack: Paul Graham's essays for evaluation, public-domain novels for training."""

    def __init__(self, tasks_json=None, words_txt=None, essay_words=None, essay_from_start=True):
        tasks_json = tasks_json or os.path.join(ROOT, "data", "ruler", "tasks.json")
        words_txt = words_txt or os.path.join(ROOT, "data", "ruler", "words.txt")
        with open(tasks_json, encoding="utf-8") as f:
            self.spec = json.load(f)
        self.tasks = self.spec["tasks"]
        self.noise = self.spec["common"]["noise_sentence"]
        with open(words_txt, encoding="utf-8") as f:
            self.words = [w for w in f.read().split("\n") if w]
        self.essay_words = essay_words or []
        self.essay_from_start = essay_from_start


def read_essay_words(paths):
    texts = []
    for p in paths:
        with open(p, encoding="utf-8") as f:
            texts.append(f.read())
    return re.sub(r"\s+", " ", " ".join(texts)).strip().split(" ")


def paulgraham_words(shared):
    return paulgraham_words_dir(os.path.join(shared, "data", "haystack", "paulgraham"))


def paulgraham_words_dir(d):
    names = sorted(n for n in os.listdir(d) if n.endswith(".txt")
                   and n not in ("NEEDLE_DEFAULTS.txt", "SOURCE_COMMIT.txt")
                   and not n.startswith("LICENSE"))
    return read_essay_words([os.path.join(d, n) for n in names])


# ---------------------------------------------------------------- pieces

_END_STRIP = "\"'\u201d\u2019)]"


def split_sentences(words):
    sents, cur = [], []
    for w in words:
        cur.append(w)
        t = w.rstrip(_END_STRIP)
        if t and t[-1] in ".!?":
            sents.append(" ".join(cur))
            cur = []
    if cur:
        sents.append(" ".join(cur))
    return sents


def insert_into_essay(rng, sents, items):
    s = len(sents)
    ds = rng.sample(DEPTHS, len(items))
    pos = sorted(s * d // 100 for d in ds)
    parts, last = [], 0
    for p, item in zip(pos, items):
        if p > last:
            parts.append(" ".join(sents[last:p]))
        parts.append(item)
        last = p
    if last < s:
        parts.append(" ".join(sents[last:s]))
    return " ".join(parts)


def insert_into_lines(rng, lines, items):
    idx = sorted(rng.sample_idx(len(lines), len(items)), reverse=True)
    for i, item in zip(idx, items):
        lines.insert(i, item)
    return lines


def essay_haystack(res, rng, n):
    W = res.essay_words
    if res.essay_from_start:
        start = 0
    else:
        start = rng.below(len(W))
    out = []
    while len(out) < n:
        take = W[start:start + n - len(out)]
        out.extend(take)
        start = 0
    return out


def draw_value(rng, kind, res):
    if kind == "numbers":
        return str(rng.randint(1000000, 9999999))
    if kind == "uuids":
        hi, lo = rng.next(), rng.next()
        hi = (hi & ~0xF000 & MASK64) | 0x4000
        lo = (lo & ~(0xC << 60) & MASK64) | (0x8 << 60)
        h = f"{hi:016x}{lo:016x}"
        return f"{h[0:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"
    if kind == "words":
        w1 = rng.choice(res.words)
        w2 = rng.choice(res.words)
        while w2 == w1:
            w2 = rng.choice(res.words)
        return f"{w1}-{w2}"
    raise ValueError(kind)


def draw_distinct(rng, kind, res, used):
    v = draw_value(rng, kind, res)
    while v in used:
        v = draw_value(rng, kind, res)
    used.add(v)
    return v


def finish(text):
    return text.rstrip(" ")


# ---------------------------------------------------------------- tasks

def build_niah(res, t, rng, n):
    a = t["args"]
    k, v, q = a["num_needle_k"], a["num_needle_v"], a["num_needle_q"]
    used_k, used_v = set(), set()
    keys, values, needles = [], [], []
    for _ in range(k):
        key = draw_distinct(rng, a["type_needle_k"], res, used_k)
        keys.append(key)
        vals = []
        for _ in range(v):
            val = draw_distinct(rng, a["type_needle_v"], res, used_v)
            vals.append(val)
            needles.append(t["needle_template"].format(key=key, value=val))
        values.append(vals)
    rng.shuffle(needles)
    qi = rng.sample_idx(k, q)
    queries = [keys[i] for i in qi]
    answers = [x for i in qi for x in values[i]]
    query = queries[0] if q == 1 else ", ".join(queries[:-1]) + ", and " + queries[-1]
    hay = a["type_haystack"]
    if hay in ("noise", "repeat"):
        context = "\n".join(insert_into_lines(rng, [res.noise] * n, needles))
    elif hay == "needle":
        lines = []
        for _ in range(n):
            dk = draw_distinct(rng, a["type_needle_k"], res, used_k)
            dv = draw_distinct(rng, a["type_needle_v"], res, used_v)
            lines.append(t["needle_template"].format(key=dk, value=dv))
        context = "\n".join(insert_into_lines(rng, lines, needles))
    elif hay == "essay":
        sents = split_sentences(essay_haystack(res, rng, n))
        context = insert_into_essay(rng, sents, needles)
    else:
        raise ValueError(hay)
    text = finish(t["prompt_template"].format(context=context, query=query)
                  + t["answer_prefix"].format(query=query))
    # training target: queried values, query by query, each key's values in context order
    order = []
    for i in qi:
        vals = values[i]
        order.extend(sorted(vals, key=lambda x: context.find(
            t["needle_template"].format(key=keys[i], value=x))))
    target = " " + ", ".join(order) + "."
    return text, answers, target


def _upper(rng, m):
    return "".join(chr(65 + rng.below(26)) for _ in range(m))


def vt_instance(res, t, rng, var_len, n, used, icl):
    a = t["args"]
    chains_n, hops = a["num_chains"], a["num_hops"]
    vars_all = []
    for _ in range(chains_n * (hops + 1)):
        x = _upper(rng, var_len)
        while x in used:
            x = _upper(rng, var_len)
        used.add(x)
        vars_all.append(x)
    chains, chain_vars = [], []
    for c in range(chains_n):
        vs = vars_all[c * (hops + 1):(c + 1) * (hops + 1)]
        val = str(rng.randint(a["value_min"], a["value_max"]))
        chain = [f"VAR {vs[0]} = {val}"] + [f"VAR {vs[j + 1]} = VAR {vs[j]} " for j in range(hops)]
        chains.append(chain)
        chain_vars.append(vs)
    lines = [res.noise] * n
    for chain in chains:
        pos = sorted(rng.sample_idx(len(lines), len(chain)))
        for j, p in enumerate(pos):
            lines.insert(p + j, chain[j])
    context = "\n".join(lines).replace(". \n", ".\n")
    query = chains[0][0].split("=")[-1].strip()
    text = t["prompt_template"].format(context=context, query=query) + \
        t["answer_prefix"].format(query=query, num_v=hops + 1)
    return finish(text), chain_vars[0]


def build_vt(res, t, rng, n):
    a = t["args"]
    used = set()
    ex_text, ex_vars = vt_instance(res, t, rng, a["icl_var_len"], a["icl_noise_sentences"], used, True)
    example = ex_text + " " + " ".join(ex_vars) + "\n"
    text, answers = vt_instance(res, t, rng, a["var_len"], n, used, False)
    return finish(example + "\n" + text), answers, " " + " ".join(answers)


def cwe_list(res, rng, num_words, rc, ru, num_cw):
    w = rng.sample(res.words, min(num_words, len(res.words)))
    common, uncommon = w[:num_cw], w[num_cw:]
    entries = common * rc + uncommon * ru
    rng.shuffle(entries)
    return " ".join(f"{i + 1}. {x}" for i, x in enumerate(entries)), common, entries


def build_cwe(res, t, rng, n, length):
    a = t["args"]
    short = length < a["short_context_below"]
    ncw = a["num_cw"]
    if short:
        ex = cwe_list(res, rng, a["short_fewshot_num_words"], a["short_fewshot_freq_cw"],
                      a["short_fewshot_freq_ucw"], ncw)
        rc, ru = a["short_freq_cw"], a["short_freq_ucw"]
    else:
        ex = cwe_list(res, rng, a["fewshot_num_words"], a["fewshot_freq_cw"], a["fewshot_freq_ucw"], ncw)
        rc, ru = a["freq_cw"], a["freq_ucw"]
    ctx, common, entries = cwe_list(res, rng, max(n, ncw + 1), rc, ru, ncw)
    pre = t["answer_prefix"]
    example = t["prompt_template"].format(context=ex[0], query="") + pre + " " + \
        " ".join(f"{i + 1}. {c}" for i, c in enumerate(ex[1]))
    text = finish(example + "\n" + t["prompt_template"].format(context=ctx, query="") + pre)
    first = sorted(common, key=entries.index)
    return text, common, " " + " ".join(f"{i + 1}. {c}" for i, c in enumerate(first))


def build_fwe(res, t, rng, n, length):
    a = t["args"]
    V = (length - t["tokens_to_generate"]) // a["vocab_size_divisor"]
    V = max(V, 5)
    seen, vocab = set(), []
    while len(vocab) < V:
        x = "".join(chr(97 + rng.below(26)) for _ in range(a["coded_wordlen"]))
        if x not in seen:
            seen.add(x)
            vocab.append(x)
    vocab[0] = a["noise_word"]
    words = []
    for r in range(1, V + 1):
        c = int(n * r ** -a["alpha"] / ZETA2)
        if c <= 0:
            break
        words.extend([vocab[r - 1]] * c)
    rng.shuffle(words)
    text = finish(t["prompt_template"].format(context=" ".join(words), query="") + t["answer_prefix"])
    ans = vocab[1:4]
    return text, ans, " " + " ".join(ans)


def build_text(res, task, length, seed, n):
    """(text, references, training target) of sample `seed` of `task` at `length` with size n."""
    t = res.tasks[task]
    rng = sample_rng(task, length, seed)
    fam = t["family"]
    if fam == "niah":
        return build_niah(res, t, rng, n)
    if fam == "variable_tracking":
        return build_vt(res, t, rng, n)
    if fam == "common_words_extraction":
        return build_cwe(res, t, rng, n, length)
    if fam == "freq_words_extraction":
        return build_fwe(res, t, rng, n, length)
    raise ValueError(fam)


def size_exact(fits, start=8):
    """Largest n with fits(n), by doubling then bisection (README 'Sizing')."""
    if not fits(start):
        return None
    hi = start
    while fits(hi):
        hi *= 2
    lo = hi // 2
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if fits(mid):
            lo = mid
        else:
            hi = mid
    return lo


def make_sample(res, task, length, seed, count_tokens, guess=None):
    """Returns dict(text, refs, target, n). count_tokens(text) -> tokens without BOS.

    guess=None: exact sizing (evaluation). guess=int: training sizing, a local search from the
    guess in 3 % steps (the result fits, within ~3 % of the largest size that fits)."""
    ttg = res.tasks[task]["tokens_to_generate"]
    cache = {}

    def fits(n):
        if n not in cache:
            out = build_text(res, task, length, seed, n)
            cache[n] = (count_tokens(out[0]) + ttg <= length, out)
        return cache[n][0]

    if guess is None:
        n = size_exact(fits)
    else:
        n = max(8, int(guess))
        if fits(n):
            while True:
                m = max(n + 1, int(n * 1.03))
                if not fits(m):
                    break
                n = m
        else:
            while n > 8 and not fits(n):
                n = max(8, int(n / 1.03))
            if not fits(n):
                n = None
    if n is None:
        raise ValueError(f"context length {length} too short for {task}")
    text, refs, target = cache[n][1]
    return {"task": task, "length": length, "seed": seed, "n": n,
            "text": text, "refs": refs, "target": target}


# ---------------------------------------------------------------- scoring

def postprocess(pred):
    pred = pred.strip()
    pred = re.sub(r"[\x00-\x1f]", "\n", pred)
    return pred.strip()


def string_match_all(pred, refs):
    p = postprocess(pred).lower()
    return sum(1.0 for r in refs if r.lower() in p) / len(refs)


def string_match_part(pred, refs):
    p = postprocess(pred).lower()
    return max(1.0 if r.lower() in p else 0.0 for r in refs)
