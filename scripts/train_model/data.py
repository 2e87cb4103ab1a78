"""Training data for kvsieve's small long-context model (issue 7).

A batch is one context length L and tokens_per_batch // L samples. L follows a curriculum over
the run (`length_probs`): 256 tokens first, then up to 512, 1024, 2048, and from a quarter of the
run the final mix, half of it at 4096. Each sample is one of
  - kv: dense associative recall in RULER's niah format. A noise / novel / needle-line haystack
    with up to 24 keys (some with 2-4 values, words or uuid keys, number or uuid values), then a
    question about *every* key, one after the other, each in RULER's exact question + answer
    prefix wording (singular or plural, sometimes several keys at once), each answer with loss.
    The first question is exactly what the eval prompt ends with.
  - vtd: dense variable tracking in RULER's vt format (with its one-shot example from L=1024):
    up to 8 chains in noise, then a question for every chain, each answer with loss.
  - copy: lines of random words / numbers / uppercase strings / novel text, each repeated once;
    loss on the repeat (induction heads form on this).
  - the 11 RULER tasks exactly as data/ruler/README.md builds them (one question, from L=1024),
    haystack from the public-domain novels, never the Paul Graham essays (those are for eval);
  - lm: plain language modelling on the novels; loss on every token.
A sample is (ids, label ranges): the token ranges [a, b) of ids that carry loss. Each sample's
loss is the mean over its labelled tokens, then samples are averaged.

Seeds: batch b, sample j uses seed TRAIN_SEED_MIN + b * 1024 + j (>= 1_000_000); evaluation uses
seeds < 1_000_000 (data/ruler/README.md). Everything is a pure function of (batch index, total
steps, files), so a resumed run sees the same data as an uninterrupted one.
"""
import os

import ruler

HERE = os.path.dirname(os.path.abspath(__file__))
CACHE = os.path.join(HERE, ".cache")
BOS, EOS, PAD = 1, 2, 0

LENGTHS = [256, 512, 1024, 2048, 4096]
FINAL_P = [0.05, 0.08, 0.12, 0.25, 0.50]
# (fraction of the run, longest length before it)
CURRICULUM = [(0.04, 256), (0.10, 512), (0.17, 1024), (0.25, 2048)]

# Named mixtures: the share of each sample kind, and the draws of a kv sample's variant
# (kv_shape): P(uuid values); P(noise haystack), P(noise or essay) (the rest: needle lines);
# P(uuid keys | needle lines with uuid values). "fourth" (the default) is the fourth run's and
# the fifth's, which made the shipped model; "second" is the second run's (commit a21cd61, the
# model shipped before the fifth run), kept to rerun it.
MIXTURES = {
    "fourth": {
        "shares": {
            "kv": 0.38, "vtd": 0.16, "copy": 0.05, "lm": 0.095,
            "niah_single_1": 0.035, "niah_single_2": 0.035, "niah_single_3": 0.02,
            "niah_multikey_1": 0.045, "niah_multikey_2": 0.04, "niah_multikey_3": 0.035,
            "niah_multivalue": 0.04, "niah_multiquery": 0.02, "vt": 0.035, "cwe": 0.005, "fwe": 0.005,
        },
        "kv": (0.25, 0.2, 0.68, 0.6),
    },
    "second": {
        "shares": {
            "kv": 0.38, "vtd": 0.17, "copy": 0.06, "lm": 0.10,
            "niah_single_1": 0.04, "niah_single_2": 0.05, "niah_single_3": 0.02,
            "niah_multikey_1": 0.04, "niah_multikey_2": 0.02, "niah_multikey_3": 0.01,
            "niah_multivalue": 0.04, "niah_multiquery": 0.02, "vt": 0.04, "cwe": 0.005, "fwe": 0.005,
        },
        "kv": (0.2, 0.25, 0.75, 0.5),
    },
}
RULER_MIN_L = 1024  # below this a RULER-task draw becomes a kv sample


def length_probs(p):
    """Probabilities over LENGTHS at fraction p of the run."""
    for frac, top in CURRICULUM:
        if p < frac:
            i = LENGTHS.index(top)
            if i == 0:
                return [1.0] + [0.0] * (len(LENGTHS) - 1)
            return [0.4 / i] * i + [0.6] + [0.0] * (len(LENGTHS) - i - 1)
    return list(FINAL_P)


def sp_pieces(model_path):
    """(piece, type) for every id of a SentencePiece model file (a minimal protobuf reader)."""
    def varint(b, i):
        x = s = 0
        while True:
            c = b[i]
            i += 1
            x |= (c & 0x7F) << s
            s += 7
            if c < 0x80:
                return x, i

    def fields(b):
        i = 0
        while i < len(b):
            key, i = varint(b, i)
            f, wt = key >> 3, key & 7
            if wt == 0:
                v, i = varint(b, i)
            elif wt == 1:
                v, i = b[i:i + 8], i + 8
            elif wt == 2:
                n, i = varint(b, i)
                v, i = b[i:i + n], i + n
            elif wt == 5:
                v, i = b[i:i + 4], i + 4
            else:
                raise ValueError("bad wire type")
            yield f, v

    with open(model_path, "rb") as fh:
        b = fh.read()
    out = []
    for f, v in fields(b):
        if f == 1:
            piece, typ = "", 1
            for g, w in fields(v):
                if g == 1:
                    piece = w.decode("utf-8")
                elif g == 3:
                    typ = w
            out.append((piece, typ))
    return out


class Tokenizer:
    """Llama 2 SentencePiece vocabulary: sentencepiece if importable, else `tokenizers`.
    `encode_offsets` also gives each token's byte offset in the text (from the piece table)."""

    def __init__(self, model_path):
        try:
            import sentencepiece as spm
            self.sp = spm.SentencePieceProcessor(model_file=model_path)
            self.encode = lambda s: self.sp.encode(s)
            self.decode = lambda ids: self.sp.decode(ids)
            self.kind = "sentencepiece"
        except ImportError:
            from transformers import LlamaTokenizerFast
            tok = LlamaTokenizerFast(vocab_file=model_path, legacy=True, add_bos_token=False,
                                     add_eos_token=False)
            self.encode = lambda s: tok.encode(s, add_special_tokens=False)
            self.decode = lambda ids: tok.decode(ids)
            self.kind = "transformers"
        self.piece_bytes = piece_byte_lengths(model_path)

    def count(self, s):
        return len(self.encode(s))

    def encode_offsets(self, text):
        """(ids, starts): starts[i] = byte offset in text.encode() where token i begins (the
        SentencePiece dummy-prefix space is not part of the text), or None if the pieces do not
        spell the text back (then the caller drops the sample)."""
        ids = self.encode(text)
        starts, pos = [], -1  # the dummy prefix "▁" takes byte -1
        pb = self.piece_bytes
        for t in ids:
            starts.append(max(0, pos))
            pos += pb[t]
        if pos != len(text.encode("utf-8")):
            return ids, None
        return ids, starts


def piece_byte_lengths(model_path):
    out = []
    for piece, typ in sp_pieces(model_path):
        if typ == 6:  # byte fallback <0xNN>
            out.append(1)
        elif typ in (2, 3):  # unknown, control
            out.append(0)
        else:
            out.append(len(piece.replace("\u2581", " ").encode("utf-8")))
    return out


def pick(rng, items, probs):
    u = rng.uniform()
    acc = 0.0
    for it, p in zip(items, probs):
        acc += p
        if u < acc:
            return it
    return items[-1]


def _upper(rng, m):
    return "".join(chr(65 + rng.below(26)) for _ in range(m))


def _query(keys):
    return keys[0] if len(keys) == 1 else ", ".join(keys[:-1]) + ", and " + keys[-1]


class Mixture:
    def __init__(self, cache=CACHE, tokenizer=None, tokens_per_batch=131072, total_steps=10000,
                 mixture="fourth"):
        novels = [os.path.join(cache, "public-domain", n) for n in ("frankenstein.txt", "war-and-peace.txt")]
        self.res = ruler.Resources(essay_words=ruler.read_essay_words(novels), essay_from_start=False)
        self.novel_text = " ".join(self.res.essay_words)
        self.tok = tokenizer or Tokenizer(os.path.join(cache, "tokenizer.model"))
        self.tokens_per_batch = tokens_per_batch
        self.total_steps = total_steps
        if mixture not in MIXTURES:
            raise ValueError(f"unknown mixture {mixture!r}; known: {', '.join(MIXTURES)}")
        mix = MIXTURES[mixture]["shares"]
        self.kv_p = MIXTURES[mixture]["kv"]
        self.kinds = list(mix)
        tot = sum(mix.values())
        self.probs = [mix[k] / tot for k in self.kinds]
        self.guess = {}
        T = self.res.tasks
        # niah wordings: (head, tail, prefix) for singular numbers / uuids and plural numbers
        self.niah_t = {}
        for name, task in (("number", "niah_single_2"), ("uuid", "niah_single_3"),
                           ("numbers", "niah_multivalue")):
            head, tail = T[task]["prompt_template"].split("{context}")
            self.niah_t[name] = (head, tail, T[task]["answer_prefix"])
        self.needle_t = {"numbers": T["niah_single_2"]["needle_template"],
                         "uuids": T["niah_single_3"]["needle_template"]}
        # tokens per haystack unit, measured once (deterministic): sizing starts from these
        c = self.tok.count
        noise = self.res.noise
        self.per_noise = c("\n".join([noise] * 40)) / 40
        w = self.res.essay_words[10000:16000]
        self.per_word = c(" ".join(w)) / len(w)
        r = ruler.Rng(12345)
        self.per_needle = {}
        for kt, vt in (("words", "numbers"), ("words", "uuids"), ("uuids", "uuids")):
            lines = [self.needle_t[vt].format(key=ruler.draw_value(r, kt, self.res),
                                              value=ruler.draw_value(r, vt, self.res)) for _ in range(40)]
            self.per_needle[(kt, vt)] = c("\n".join(lines)) / 40

    # -- helpers --------------------------------------------------------------------------
    def labelled(self, text, spans, L, eos=True):
        """Tokenize text once; (ids with BOS [and EOS], label ranges) for the char spans."""
        ids, starts = self.tok.encode_offsets(text)
        if starts is None:
            return None
        ids = [BOS] + ids + ([EOS] if eos else [])
        ranges = []
        bpos = []
        for a, b in spans:
            bpos.append((len(text[:a].encode("utf-8")), len(text[:b].encode("utf-8"))))
        j = 0
        n = len(starts)
        for ba, bb in bpos:
            while j < n and starts[j] < ba:
                j += 1
            k = j
            while k < n and starts[k] < bb:
                k += 1
            if k > j:
                ranges.append((j + 1, k + 1))
            j = k
        if eos and ranges:
            a, b = ranges[-1]
            if b == len(ids) - 1:
                ranges[-1] = (a, b + 1)
        if not ranges:
            return None
        return ids, ranges

    def fit(self, build, per_unit, L, n_min=1):
        """Largest-ish n (units of per_unit tokens) whose build(n) fits L tokens; one or two
        tokenizations of the full text. build(n) -> (text, spans)."""
        fixed = self.tok.count(build(n_min)[0])
        n = max(n_min, int((L - 2 - fixed) / per_unit * 0.97) + n_min)
        best = None
        for it in range(4):
            text, spans = build(n)
            out = self.labelled(text, spans, L)
            if out is None:
                return None
            T = len(out[0])
            if T <= L:
                best = out
                if T >= L - 2 * per_unit - 8:
                    break
                n = n + max(1, int((L - T) / per_unit * 0.9))
            else:
                if best is not None or n == n_min:
                    break
                n = max(n_min, n - int((T - L) / per_unit) - 1 - n // 100)
        return best

    # -- kv: dense associative recall in niah format ----------------------------------------
    def kv_shape(self, rng):
        """(value type, haystack, key type): the first draws of a kv sample's rng."""
        p_uuid, p_noise, p_essay, p_ukey = self.kv_p
        vtype = "uuids" if rng.uniform() < p_uuid else "numbers"
        u = rng.uniform()
        hay = "noise" if u < p_noise else ("essay" if u < p_essay else "needle")
        # uuid keys among uuid distractor lines (niah_multikey_3) is the hardest lookup: the
        # key must be matched over ~20 hex tokens against dozens of near-identical lines
        ktype = "uuids" if (hay == "needle" and vtype == "uuids" and rng.uniform() < p_ukey) else "words"
        return vtype, hay, ktype

    def kv_label(self, L, seed):
        """Log name of kv sample `seed`, e.g. 'kv:needle-wn' (word keys, number values): the
        lookups fail separately (word keys among needle lines did in the third and fourth runs),
        and one 'kv' loss hid which one did."""
        vtype, hay, ktype = self.kv_shape(ruler.sample_rng("kv", L, seed))
        return f"kv:{hay}-{ktype[0]}{vtype[0]}"

    def kv_sample(self, L, seed):
        res = self.res
        rng = ruler.sample_rng("kv", L, seed)
        vtype, hay, ktype = self.kv_shape(rng)
        maxk = max(2, min(24, L // 100))
        m = 1 + rng.below(min(4, maxk) if hay == "needle" else maxk)
        used_k, used_v = set(), set()
        keys, vals = [], []
        for _ in range(m):
            keys.append(ruler.draw_distinct(rng, ktype, res, used_k))
            nv = 1
            if vtype == "numbers" and hay != "needle" and rng.uniform() < 0.3:
                nv = rng.randint(2, 4)
            vals.append([ruler.draw_distinct(rng, vtype, res, used_v) for _ in range(nv)])
        tmpl = self.needle_t[vtype]
        needles = [(i, tmpl.format(key=keys[i], value=v)) for i in range(m) for v in vals[i]]
        rng.shuffle(needles)
        hay_seed = rng.next()
        multi_p = 0.15 if vtype == "numbers" else 0.0

        def build(n):
            r = ruler.Rng(hay_seed)
            ks, vs = list(keys), [list(v) for v in vals]
            items = [t for _, t in needles]
            if hay == "noise":
                lines = ruler.insert_into_lines(r, [res.noise] * n, items)
                context = "\n".join(lines)
            elif hay == "needle":
                uk, uv = set(used_k), set(used_v)
                lines = []
                for _ in range(n):
                    dk = ruler.draw_distinct(r, ktype, res, uk)
                    dv = ruler.draw_distinct(r, vtype, res, uv)
                    ks.append(dk)
                    vs.append([dv])
                    lines.append(tmpl.format(key=dk, value=dv))
                context = "\n".join(ruler.insert_into_lines(r, lines, items))
            else:
                W = res.essay_words
                st = r.below(len(W))
                words = (W[st:st + n] + W[:max(0, st + n - len(W))])
                sents = ruler.split_sentences(words)
                pos = sorted(r.below(len(sents) + 1) for _ in items)
                parts, last = [], 0
                for p, it in zip(pos, items):
                    if p > last:
                        parts.append(" ".join(sents[last:p]))
                    parts.append(it)
                    last = p
                if last < len(sents):
                    parts.append(" ".join(sents[last:]))
                context = " ".join(parts)
            # questions: every real key; on a needle haystack also some distractor lines
            order = list(range(m))
            if hay == "needle":
                extra = r.sample_idx(len(ks) - m, min(len(ks) - m, r.randint(3, 15)))
                order += [m + i for i in extra]
            r.shuffle(order)
            qs = []
            i = 0
            while i < len(order):
                g = 1
                if len(order) - i >= 2 and r.uniform() < multi_p:
                    g = r.randint(2, min(4, len(order) - i))
                qs.append(order[i:i + g])
                i += g
            pieces, spans = [], []
            for qn, q in enumerate(qs):
                qk = [ks[x] for x in q]
                ans = []
                for x in q:
                    ans.extend(sorted(vs[x], key=lambda v: context.find(tmpl.format(key=ks[x], value=v))))
                if len(ans) == 1:
                    wording = "number" if vtype == "numbers" else "uuid"
                else:
                    wording = "numbers"
                head, tail, prefix = self.niah_t[wording]
                query = _query(qk)
                if qn == 0:
                    pieces.append(head + context)
                pieces.append(tail.format(query=query) + prefix.format(query=query).rstrip(" "))
                a = " " + ", ".join(ans) + "."
                off = sum(len(p) for p in pieces)
                spans.append((off, off + len(a)))
                pieces.append(a)
            return "".join(pieces), spans

        unit = {"noise": self.per_noise, "essay": self.per_word}.get(hay, self.per_needle.get((ktype, vtype)))
        return self.fit(build, unit, L, n_min=max(1, len(needles)) if hay != "essay" else 8)

    # -- vtd: dense variable tracking in vt format ---------------------------------------
    def vtd_sample(self, L, seed):
        res = self.res
        t = res.tasks["vt"]
        a = t["args"]
        rng = ruler.sample_rng("vtd", L, seed)
        used = set()
        example = ""
        if L >= 1024:
            ex_text, ex_vars = ruler.vt_instance(res, t, rng, a["icl_var_len"], a["icl_noise_sentences"],
                                                 used, True)
            example = ex_text + " " + " ".join(ex_vars) + "\n" + "\n"
        k = 1 + rng.below(max(1, min(8, L // 400)))
        hops = a["num_hops"] if rng.uniform() < 0.75 else rng.randint(1, 6)
        chains, values = [], []
        usedv = set()
        for _ in range(k):
            vs = []
            for _ in range(hops + 1):
                x = _upper(rng, a["var_len"])
                while x in used:
                    x = _upper(rng, a["var_len"])
                used.add(x)
                vs.append(x)
            chains.append(vs)
            v = str(rng.randint(a["value_min"], a["value_max"]))
            while v in usedv:
                v = str(rng.randint(a["value_min"], a["value_max"]))
            usedv.add(v)
            values.append(v)
        order = list(range(k))
        rng.shuffle(order)
        hay_seed = rng.next()
        head, tail = t["prompt_template"].split("{context}")
        prefix = t["answer_prefix"]

        def build(n):
            r = ruler.Rng(hay_seed)
            lines = [res.noise] * max(n, hops + 1)
            for c in range(k):
                vs = chains[c]
                chain = [f"VAR {vs[0]} = {values[c]}"] + [f"VAR {vs[j + 1]} = VAR {vs[j]} " for j in range(hops)]
                pos = sorted(r.sample_idx(len(lines), len(chain)))
                for j, p in enumerate(pos):
                    lines.insert(p + j, chain[j])
            context = "\n".join(lines).replace(". \n", ".\n")
            pieces = [example + head + context]
            spans = []
            for c in order:
                pieces.append(tail.format(query=values[c]) +
                              prefix.format(query=values[c], num_v=hops + 1).rstrip(" "))
                ans = " " + " ".join(chains[c])
                off = sum(len(p) for p in pieces)
                spans.append((off, off + len(ans)))
                pieces.append(ans)
            return "".join(pieces), spans

        return self.fit(build, self.per_noise, L, n_min=hops + 1)

    # -- copy: repeated lines ----------------------------------------------------------------
    def copy_sample(self, L, seed):
        res = self.res
        rng = ruler.sample_rng("copy", L, seed)
        W = res.essay_words
        pieces = ["Repeat each line after me.\n"]
        spans = []
        chars = 0
        while chars < 3.6 * L:
            if rng.below(2):
                items = []
                for _ in range(rng.randint(3, 30)):
                    c = rng.below(4)
                    items.append(rng.choice(res.words) if c == 0 else str(rng.randint(1000000, 9999999))
                                 if c == 1 else _upper(rng, rng.randint(3, 6)) if c == 2
                                 else ruler.draw_value(rng, "words", res))
                seg = " ".join(items)
            else:
                st = rng.below(len(W) - 200)
                seg = " ".join(W[st:st + rng.randint(8, 60)])
            off = sum(len(p) for p in pieces) + len(seg) + 1
            pieces.append(seg + "\n" + seg + "\n\n")
            spans.append((off, off + len(seg)))
            chars += 2 * len(seg) + 3
        out = self.labelled("".join(pieces), spans, L, eos=False)
        if out is None:
            return None
        ids, ranges = out
        ids = ids[:L]
        ranges = [(a, min(b, L)) for a, b in ranges if a < L]
        return (ids, ranges) if ranges else None

    # -- RULER tasks, plain LM -----------------------------------------------------------
    def task_sample(self, task, L, seed):
        key = (task, L)
        if key not in self.guess:  # fixed per (task, L): samples stay pure functions of seeds
            self.guess[key] = ruler.make_sample(self.res, task, L, ruler.TRAIN_SEED_MIN - 1,
                                                self.tok.count)["n"]
        s = ruler.make_sample(self.res, task, L, seed, self.tok.count, guess=self.guess[key])
        return self.with_target(s["text"], s["target"])

    def with_target(self, text, target):
        return self.labelled(text + target, [(len(text), len(text) + len(target))], 1 << 30)

    def lm_sample(self, L, seed):
        rng = ruler.sample_rng("lm", L, seed)
        t = self.novel_text
        start = rng.below(max(1, len(t) - 6 * L))
        ids = self.tok.encode(t[start:start + 6 * L])[:L - 1]
        return [BOS] + ids, [(1, len(ids) + 1)]

    def sample(self, kind, L, seed):
        try:
            if kind == "lm":
                return self.lm_sample(L, seed)
            if kind == "kv":
                return self.kv_sample(L, seed)
            if kind == "vtd":
                return self.vtd_sample(L, seed)
            if kind == "copy":
                return self.copy_sample(L, seed)
            return self.task_sample(kind, L, seed)
        except ValueError:
            return None  # length too short for this task

    # -- one batch -------------------------------------------------------------------------
    def batch(self, b):
        """Batch b: (L, [(ids, label ranges, kind)]), kv kinds split by `kv_label`. Pure
        function of b and total_steps."""
        rng = ruler.Rng(ruler.fnv1a64(f"batch/{b}"))
        L = pick(rng, LENGTHS, length_probs(b / max(1, self.total_steps)))
        B = max(1, self.tokens_per_batch // L)
        out = []
        j = 0
        while len(out) < B:
            kind = pick(rng, self.kinds, self.probs)
            if L < RULER_MIN_L and kind in self.res.tasks:
                kind = "kv"
            seed = ruler.TRAIN_SEED_MIN + b * 1024 + j
            s = self.sample(kind, L, seed)
            j += 1
            if s is not None and len(s[0]) <= L:
                out.append((s[0], s[1], self.kv_label(L, seed) if kind == "kv" else kind))
        return L, out


def collate(L, samples):
    """numpy arrays: ids [B, L] int64; tgt [B, L] int64 (-100 = no loss; tgt[t] = ids[t+1]);
    w [B, L] float32, each sample's weights summing to 1."""
    import numpy as np
    B = len(samples)
    ids = np.full((B, L), PAD, dtype=np.int64)
    tgt = np.full((B, L), -100, dtype=np.int64)
    w = np.zeros((B, L), dtype=np.float32)
    for i, (s, ranges, _) in enumerate(samples):
        ids[i, :len(s)] = s
        tot = sum(b - a for a, b in ranges)
        for a, b in ranges:  # positions a-1 .. b-2 predict tokens a .. b-1
            tgt[i, a - 1:b - 1] = s[a:b]
            w[i, a - 1:b - 1] = 1.0 / max(1, tot)
    return ids, tgt, w


def torch_dataset(cache, start_batch, tokens_per_batch, num_workers, total_steps, mixture="fourth"):
    """An IterableDataset yielding (ids, tgt, w, kinds) for batches start_batch, start_batch+1...
    in order when read through a DataLoader with num_workers workers (round robin)."""
    import torch

    class DS(torch.utils.data.IterableDataset):
        def __iter__(self):
            info = torch.utils.data.get_worker_info()
            wid, nw = (info.id, info.num_workers) if info else (0, 1)
            mix = Mixture(cache, tokens_per_batch=tokens_per_batch, total_steps=total_steps,
                          mixture=mixture)
            b = start_batch + wid
            while True:
                L, samples = mix.batch(b)
                ids, tgt, w = collate(L, samples)
                yield (torch.from_numpy(ids), torch.from_numpy(tgt), torch.from_numpy(w),
                       [k for _, _, k in samples])
                b += nw

    return DS()
