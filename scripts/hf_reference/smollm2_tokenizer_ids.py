#!/usr/bin/env python3
"""Reference ids for SmolLM2's tokenizer (tests/fixtures/tokenizers/smollm2/hf_tokenizers_ids.json).

Hugging Face `tokenizers` (PyPI) runs SmolLM2's byte-level BPE, built from the vocabulary and merges
in the GGUF that scripts/get_smollm2.sh fetches, with the pre-tokenizer of SmolLM2's tokenizer.json:
Sequence[Digits(individual_digits=True), ByteLevel(add_prefix_space=False)].
  pip install tokenizers gguf
  python3 scripts/hf_reference/smollm2_tokenizer_ids.py models/cache/SmolLM2-135M-Instruct.Q4_1.gguf > OUT.json
"""
import json, sys
import gguf
from tokenizers import Tokenizer, models, pre_tokenizers, decoders
r = gguf.GGUFReader(sys.argv[1])
def field(name):
    f = r.fields[name]
    return [bytes(f.parts[i]).decode("utf-8") for i in f.data]
tokens = field("tokenizer.ggml.tokens")
merges = field("tokenizer.ggml.merges")
vocab = {t: i for i, t in enumerate(tokens)}
bpe = models.BPE(vocab=vocab, merges=[tuple(m.split(" ", 1)) for m in merges])
tok = Tokenizer(bpe)
tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True),
                                             pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)])
tok.decoder = decoders.ByteLevel()
cases = ["In 2024,  12345 people   ran.", "Hello world", " leading space", "tabs\tand\nnewlines\n\n  x",
         "3.14159 and 1,000,000", "naïve café 東京 123", "don't you'll I'M", "a  b   c    d",
         "emoji 🙂 ok", "x1y22z333", "   ", "\n\n\n", "ÀÉÎ 42nd", "  9 lives\n 7"]
print(json.dumps([{"text": c, "ids": tok.encode(c).ids} for c in cases], ensure_ascii=False, indent=0))
