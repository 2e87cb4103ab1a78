"""Training data for kvsieve's small long-context model (issue 7).

A batch is one context length L (a bucket, up to 4096 tokens) and tokens_per_batch // L samples,
each drawn from a mixture of
  - the 11 RULER tasks of data/ruler/tasks.json (ruler.py), with the essay haystack taken from the
    public-domain novels (never the Paul Graham essays: those are for evaluation) and the noise
    sentence; loss on the answer tokens only (the target after the answer prefix, then EOS);
  - passkey retrieval (a number hidden in noise or novel text); loss on the answer only;
  - plain language modelling on the novels; loss on every token.
Each sample's loss is averaged over its own labelled tokens, then samples are averaged, so that a
4096-token LM sample weighs as much as a 7-token answer.

Seeds: batch b, sample j uses seed TRAIN_SEED_MIN + b * 1024 + j (>= 1_000_000); evaluation uses
seeds < 1_000_000 (data/ruler/README.md). Everything is a pure function of (batch index, files),
so a resumed run sees the same data as an uninterrupted one.
"""
import os

import ruler

HERE = os.path.dirname(os.path.abspath(__file__))
CACHE = os.path.join(HERE, ".cache")
BOS, EOS, PAD = 1, 2, 0

LENGTHS = [512, 1024, 2048, 4096]
LENGTH_P = [0.15, 0.20, 0.30, 0.35]

MIXTURE = {
    "niah_single_1": 0.07, "niah_single_2": 0.08, "niah_single_3": 0.07,
    "niah_multikey_1": 0.08, "niah_multikey_2": 0.08, "niah_multikey_3": 0.07,
    "niah_multivalue": 0.08, "niah_multiquery": 0.08,
    "vt": 0.12, "cwe": 0.04, "fwe": 0.04,
    "passkey": 0.07, "lm": 0.12,
}

PASSKEY_INTRO = ("There is an important piece of information hidden inside a lot of irrelevant "
                 "text. Find it and memorize it. I will quiz you about it afterwards.")
PASSKEY_NEEDLE = "The pass key is {key}. Remember it. {key} is the pass key."
PASSKEY_QUESTION = "What is the pass key? The pass key is"


class Tokenizer:
    """Llama 2 SentencePiece vocabulary: sentencepiece if importable, else `tokenizers`."""

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

    def count(self, s):
        return len(self.encode(s))


def pick(rng, items, probs):
    u = rng.uniform()
    acc = 0.0
    for it, p in zip(items, probs):
        acc += p
        if u < acc:
            return it
    return items[-1]


class Mixture:
    def __init__(self, cache=CACHE, tokenizer=None, tokens_per_batch=131072, lengths=None,
                 length_p=None, mixture=None):
        novels = [os.path.join(cache, "public-domain", n) for n in ("frankenstein.txt", "war-and-peace.txt")]
        self.res = ruler.Resources(essay_words=ruler.read_essay_words(novels), essay_from_start=False)
        self.novel_text = " ".join(self.res.essay_words)
        self.tok = tokenizer or Tokenizer(os.path.join(cache, "tokenizer.model"))
        self.tokens_per_batch = tokens_per_batch
        self.lengths = lengths or LENGTHS
        self.length_p = length_p or LENGTH_P
        mix = mixture or MIXTURE
        self.kinds = list(mix)
        tot = sum(mix.values())
        self.probs = [mix[k] / tot for k in self.kinds]
        self.guess = {}

    # -- one sample: (ids, target positions) ------------------------------------------------
    def task_sample(self, task, L, seed):
        key = (task, L)
        if key not in self.guess:  # fixed per (task, L): samples stay pure functions of seeds
            self.guess[key] = ruler.make_sample(self.res, task, L, ruler.TRAIN_SEED_MIN - 1,
                                                self.tok.count)["n"]
        s = ruler.make_sample(self.res, task, L, seed, self.tok.count, guess=self.guess[key])
        return self.with_target(s["text"], s["target"])

    def with_target(self, text, target):
        p = self.tok.encode(text)
        full = self.tok.encode(text + target)
        if full[:len(p)] != p:
            return None
        ids = [BOS] + full + [EOS]
        return ids, len(p) + 1

    def passkey_sample(self, L, seed):
        rng = ruler.sample_rng("passkey", L, seed)
        digits = rng.randint(4, 8)
        key = str(rng.randint(10 ** (digits - 1), 10 ** digits - 1))
        needle = PASSKEY_NEEDLE.format(key=key)
        noise = rng.below(2) == 0
        start = rng.below(max(1, len(self.res.essay_words) - 12 * L))  # n words < 12 L
        depth = rng.uniform()

        def build(n):
            if noise:
                lines = [self.res.noise] * n
                lines.insert(int(depth * n + 0.5), needle)
                ctx = "\n".join(lines)
            else:
                w = self.res.essay_words[start:start + n]
                sents = ruler.split_sentences(w)
                k = int(depth * len(sents) + 0.5)
                ctx = " ".join(sents[:k] + [needle] + sents[k:])
            return PASSKEY_INTRO + "\n" + ctx + "\n" + PASSKEY_QUESTION

        n = {True: 25, False: 600}[noise] * L // 1024  # rough sizes, refined below
        limit = L - 16
        if self.tok.count(build(n)) <= limit:
            while n < 12 * L and self.tok.count(build(max(n + 1, int(n * 1.03)))) <= limit:
                n = max(n + 1, int(n * 1.03))
        else:
            while n > 8 and self.tok.count(build(n)) > limit:
                n = max(8, int(n / 1.03))
        return self.with_target(build(n), " " + key + ".")

    def lm_sample(self, L, seed):
        rng = ruler.sample_rng("lm", L, seed)
        t = self.novel_text
        start = rng.below(max(1, len(t) - 6 * L))
        ids = self.tok.encode(t[start:start + 6 * L])[:L - 1]
        return [BOS] + ids, 1

    def sample(self, kind, L, seed):
        try:
            if kind == "lm":
                return self.lm_sample(L, seed)
            if kind == "passkey":
                return self.passkey_sample(L, seed)
            return self.task_sample(kind, L, seed)
        except ValueError:
            return None  # length too short for this task

    # -- one batch -------------------------------------------------------------------------
    def batch(self, b):
        """Batch b: (L, [(ids, first_target_position, kind)]). Pure function of b."""
        rng = ruler.Rng(ruler.fnv1a64(f"batch/{b}"))
        L = pick(rng, self.lengths, self.length_p)
        B = max(1, self.tokens_per_batch // L)
        out = []
        j = 0
        while len(out) < B:
            kind = pick(rng, self.kinds, self.probs)
            s = self.sample(kind, L, ruler.TRAIN_SEED_MIN + b * 1024 + j)
            j += 1
            if s is not None and len(s[0]) <= L:
                out.append((s[0], s[1], kind))
        return L, out


def collate(L, samples):
    """numpy arrays: ids [B, L] int64; tgt [B, L] int64 (-100 = no loss; tgt[t] = ids[t+1]);
    w [B, L] float32, each sample's weights summing to 1."""
    import numpy as np
    B = len(samples)
    ids = np.full((B, L), PAD, dtype=np.int64)
    tgt = np.full((B, L), -100, dtype=np.int64)
    w = np.zeros((B, L), dtype=np.float32)
    for i, (s, first, _) in enumerate(samples):
        n = len(s)
        ids[i, :n] = s
        # positions first-1 .. n-2 predict tokens first .. n-1
        tgt[i, first - 1:n - 1] = s[first:n]
        w[i, first - 1:n - 1] = 1.0 / max(1, n - first)
    return ids, tgt, w


def torch_dataset(cache, start_batch, tokens_per_batch, num_workers):
    """An IterableDataset yielding (L, ids, tgt, w, kinds) for batches start_batch, start_batch+1...
    in order when read through a DataLoader with num_workers workers (round robin)."""
    import torch

    class DS(torch.utils.data.IterableDataset):
        def __iter__(self):
            info = torch.utils.data.get_worker_info()
            wid, nw = (info.id, info.num_workers) if info else (0, 1)
            mix = Mixture(cache, tokens_per_batch=tokens_per_batch)
            b = start_batch + wid
            while True:
                L, samples = mix.batch(b)
                ids, tgt, w = collate(L, samples)
                yield (torch.from_numpy(ids), torch.from_numpy(tgt), torch.from_numpy(w),
                       [k for _, _, k in samples])
                b += nw

    return DS()
