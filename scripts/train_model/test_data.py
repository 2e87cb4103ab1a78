#!/usr/bin/env python3
"""Checks of data.py's samples with the real Llama 2 vocabulary but without sentencepiece or
torch: `build/kvsieve tokenize` stands in for the tokenizer (python3 test_data.py [KVSIEVE]).

For every sample kind at several lengths: the sample fits L; its labels decode to the answers;
the tokens before the first label are exactly [BOS] + tokenize(prompt), the eval input, so the
offsets-based labelling never changes the prompt's tokenization; batches follow the curriculum."""
import os
import re
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import data  # noqa: E402

ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
KVS = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "build", "kvsieve")
CACHE = os.path.join(HERE, ".cache")
MODEL = os.path.join(CACHE, "tokenizer.model")


class KvsTok:
    kind = "kvsieve"

    def __init__(self):
        self.pieces = data.sp_pieces(MODEL)
        self.piece_bytes = data.piece_byte_lengths(MODEL)
        self.memo = {}

    def encode(self, s):
        if s not in self.memo:
            with tempfile.NamedTemporaryFile("w", delete=False, encoding="utf-8") as f:
                f.write(s)
            out = subprocess.run([KVS, "tokenize", "-m", MODEL, "--no-bos", "-f", f.name],
                                 capture_output=True, text=True, check=True).stdout
            os.unlink(f.name)
            self.memo[s] = [int(x) for x in out.split()]
        return self.memo[s]

    def count(self, s):
        return len(self.encode(s))

    def decode(self, ids):
        b = b""
        for t in ids:
            p, typ = self.pieces[t]
            if typ == 6:
                b += bytes([int(p[3:5], 16)])
            elif typ not in (2, 3):
                b += p.replace("\u2581", " ").encode("utf-8")
        return b.decode("utf-8", "replace")

    encode_offsets = data.Tokenizer.encode_offsets


def main():
    if not (os.path.exists(KVS) and os.path.exists(MODEL)):
        print("test_data.py: needs build/kvsieve and .cache/ (prepare_cache.sh); skipped")
        return
    assert abs(sum(data.length_probs(0.0)) - 1) < 1e-9 and data.length_probs(0.0)[0] == 1.0
    assert data.length_probs(0.5) == data.FINAL_P and abs(sum(data.FINAL_P) - 1) < 1e-9
    tok = KvsTok()
    assert len(tok.pieces) == 32000 and tok.pieces[13] == ("<0x0A>", 6) and tok.piece_bytes[29871] == 1
    mix = data.Mixture(CACHE, tokenizer=tok, total_steps=40)
    n = 0
    for kind in ("kv", "vtd", "copy", "lm", "niah_single_2", "niah_multivalue", "vt"):
        for L in (512, 2048):
            for seed in range(2):
                s = mix.sample(kind, L, 1_000_000 + seed)
                if s is None:
                    continue
                ids, ranges = s
                assert len(ids) <= L and ids[0] == data.BOS, (kind, L)
                assert all(0 < a < b <= len(ids) for a, b in ranges), (kind, L)
                labels = [tok.decode(ids[a:b]) for a, b in ranges]
                if kind in ("kv", "niah_single_2", "niah_multivalue"):
                    assert all(x.rstrip(".").replace(",", "").replace(" ", "").isalnum()
                               or "-" in x for x in labels), labels
                if kind != "lm" and kind != "copy":
                    a = ranges[0][0]
                    prompt = tok.decode(ids[1:a])[1:]  # the dummy-prefix space
                    assert [data.BOS] + tok.encode(prompt) == ids[:a], (kind, L, prompt[-80:])
                n += 1
    mix.tokens_per_batch = 8192
    for b in (0, 5, 39):
        L, out = mix.batch(b)
        assert all(len(x[0]) <= L for x in out)
        for x in out:  # kv samples are logged by variant, e.g. kv:needle-wn
            assert x[2] in mix.kinds or re.fullmatch(r"kv:(noise|essay|needle)-[wu][nu]", x[2]), x[2]
    assert mix.batch(0)[0] == 256
    # the named mixtures: the second run's builds batches too; an unknown name is refused
    second = data.Mixture(CACHE, tokenizer=tok, total_steps=40, mixture="second")
    second.tokens_per_batch = 8192
    assert second.kinds == mix.kinds and second.probs != mix.probs
    L, out = second.batch(39)
    assert out and all(len(x[0]) <= L for x in out)
    try:
        data.Mixture(CACHE, tokenizer=tok, mixture="nope")
        raise AssertionError("unknown mixture accepted")
    except ValueError as e:
        assert "second" in str(e)
    print(f"data.py: all checks passed ({n} samples)")


if __name__ == "__main__":
    main()
