#!/usr/bin/env python3
"""Hugging Face tokenizer.json fixtures converted by transformers/tokenizers, plus the ids they give.

For each shared vocabulary this builds a `tokenizer.json` with the Hugging Face libraries (the
reference code; nothing here re-implements a tokenizer), encodes every case of the matching
llama.cpp test vectors (`*.gguf.inp`) with add_special_tokens=False, writes the ids to
`expected_ids.json`, and compares them with llama.cpp's `*.gguf.out` and, where the original
library is installed, with sentencepiece / tiktoken themselves.

  llama-spm  tokenizer.model (sentencepiece BPE, Llama 2)  -> transformers LlamaTokenizer(Fast) vocab and
             merges, with the Prepend+Replace normalizer of the tokenizer.json Llama 2 ships
  llama-spm-metaspace   the same, as transformers 5 writes it (Metaspace pre-tokenizer)
  gpt-2      ggml-vocab-gpt-2.gguf (tokens + merges)        -> transformers GPT2Tokenizer(Fast)
  llama3     tokenizer.model (Meta tiktoken ranks)          -> transformers TikTokenConverter

Runs where transformers, tokenizers, sentencepiece and tiktoken are installed (the GPU box).
  python3 scripts/hf_reference/make_tokenizer_fixtures.py --data <dir with llama-spm/ gpt-2/ llama3/> \
      --out tests/fixtures/tokenizers
"""

import argparse
import json
import os
import shutil
import struct
import sys
import tempfile
import traceback

# Meta's Llama 3 split pattern (models/llama3/tokenizer.py in meta-llama/llama-models).
LLAMA3_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"
                  r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
LLAMA3_NUM_RESERVED = 256  # special tokens after the 128000 ranks


def llama3_special_tokens():
    """The 256 special tokens Meta appends after the ranks, in id order (ids 128000..128255)."""
    named = ["<|begin_of_text|>", "<|end_of_text|>", "<|reserved_special_token_0|>",
             "<|reserved_special_token_1|>", "<|finetune_right_pad_id|>", "<|step_id|>",
             "<|start_header_id|>", "<|end_header_id|>", "<|eom_id|>", "<|eot_id|>",
             "<|python_tag|>", "<|image|>"]
    reserved = [f"<|reserved_special_token_{2 + i}|>" for i in range(LLAMA3_NUM_RESERVED - len(named))]
    return named + reserved


# ----------------------------------------------------------------------------------------------
# Test vectors: split exactly as llama.cpp's tests/test-tokenizer-0.cpp does (separator
# "\n__ggml_vocab_test__\n"; the trailing separator does not start a new case). The .out file has
# one line per case, ids separated by spaces.

SEP = "\n__ggml_vocab_test__\n"


def read_cases(inp_path, out_path):
    with open(inp_path, "rb") as f:
        raw = f.read().decode("utf-8")
    texts = []
    pos = 0
    while pos < len(raw):
        nxt = raw.find(SEP, pos)
        if nxt < 0:
            texts.append(raw[pos:])
            break
        texts.append(raw[pos:nxt])
        pos = nxt + len(SEP)
    with open(out_path, "rb") as f:
        out_lines = f.read().decode("utf-8").split("\n")
    if out_lines and out_lines[-1] == "":
        out_lines.pop()  # the file ends with a newline
    if len(out_lines) != len(texts):
        raise ValueError(f"{inp_path}: {len(texts)} cases but {out_path} has {len(out_lines)} lines")
    expected = [[int(t) for t in line.split()] for line in out_lines]
    return texts, expected


# ----------------------------------------------------------------------------------------------
# Minimal GGUF metadata reader (little-endian, versions 2 and 3); tensors are not needed.

_SCALAR = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
GGUF_STRING, GGUF_ARRAY = 8, 9


class _Reader:
    def __init__(self, data):
        self.data = data
        self.pos = 0

    def take(self, n):
        if n < 0 or self.pos + n > len(self.data):
            raise ValueError(f"GGUF truncated at offset {self.pos} (wanted {n} bytes)")
        b = self.data[self.pos:self.pos + n]
        self.pos += n
        return b

    def unpack(self, fmt):
        return struct.unpack(fmt, self.take(struct.calcsize(fmt)))[0]

    def string(self):
        n = self.unpack("<Q")
        return self.take(n).decode("utf-8")

    def value(self, vtype):
        if vtype in _SCALAR:
            return self.unpack(_SCALAR[vtype])
        if vtype == GGUF_STRING:
            return self.string()
        if vtype == GGUF_ARRAY:
            etype = self.unpack("<I")
            count = self.unpack("<Q")
            if count > len(self.data):
                raise ValueError(f"GGUF array count {count} larger than the file")
            return [self.value(etype) for _ in range(count)]
        raise ValueError(f"GGUF value type {vtype} unknown at offset {self.pos}")


def read_gguf_metadata(path):
    with open(path, "rb") as f:
        r = _Reader(f.read())
    if r.take(4) != b"GGUF":
        raise ValueError(f"{path}: not a GGUF file")
    version = r.unpack("<I")
    if version not in (2, 3):
        raise ValueError(f"{path}: GGUF version {version} not supported")
    r.unpack("<Q")  # tensor count
    n_kv = r.unpack("<Q")
    meta = {}
    for _ in range(n_kv):
        key = r.string()
        meta[key] = r.value(r.unpack("<I"))
    return meta


# ----------------------------------------------------------------------------------------------
# Converters. Each returns a transformers tokenizer (tokenizers backend).

def build_llama_spm_metaspace(src_dir, work_dir):
    """Llama 2 sentencepiece model -> transformers' own conversion (LlamaTokenizerFast), as
    transformers 5 writes it: no normalizer, a Metaspace pre-tokenizer (prepend_scheme "first").
    Metaspace does not prepend "▁" to text that already starts with a space, so this file gives
    other ids than sentencepiece for text with leading spaces: the ids here are what the file means."""
    from transformers import LlamaTokenizerFast
    d = os.path.join(work_dir, "llama-spm-src")
    os.makedirs(d, exist_ok=True)
    shutil.copy(os.path.join(src_dir, "tokenizer.model"), os.path.join(d, "tokenizer.model"))
    # What the Llama 2 checkpoints ship (meta-llama/Llama-2-7b-hf tokenizer_config.json, in short).
    cfg = {"tokenizer_class": "LlamaTokenizer", "add_bos_token": True, "add_eos_token": False,
           "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "pad_token": None,
           "legacy": False, "clean_up_tokenization_spaces": False, "model_max_length": 4096}
    with open(os.path.join(d, "tokenizer_config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    try:
        tok = LlamaTokenizerFast.from_pretrained(d)
    except Exception:
        traceback.print_exc()
        from transformers import AutoTokenizer
        tok = AutoTokenizer.from_pretrained(d)
    print(f"  built {type(tok).__name__} from tokenizer.model", flush=True)
    return tok


def build_llama_spm(src_dir, work_dir):
    """The same vocab and merges (extracted by transformers from tokenizer.model), made to mean what
    the tokenizer.json shipped with the Llama 2 checkpoints means (transformers 4's LlamaConverter,
    legacy mode):
      - normalizer Prepend("▁") + Replace(" ", "▁"), no pre-tokenizer, so the dummy prefix is
        always added, as sentencepiece does;
      - merges ranked by the sentencepiece score of the merged piece (best first). transformers 5.17
        ranks them by piece id, which puts the whitespace pieces ("▁▁", score -1e9, id 259)
        first; sentencepiece merges those last. Ties keep transformers' order."""
    import sentencepiece as spm
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast
    base = build_llama_spm_metaspace(src_dir, work_dir)
    spec = json.loads(base.backend_tokenizer.to_str())
    sp = spm.SentencePieceProcessor(model_file=os.path.join(src_dir, "tokenizer.model"))
    score = {sp.id_to_piece(i): sp.get_score(i) for i in range(sp.get_piece_size())}
    merges = [m.split(" ") if isinstance(m, str) else list(m) for m in spec["model"]["merges"]]
    missing = [m for m in merges if m[0] + m[1] not in score]
    if missing:
        raise ValueError(f"llama-spm: {len(missing)} merges make pieces not in the model, e.g. {missing[:3]}")
    order = sorted(range(len(merges)), key=lambda k: (-score[merges[k][0] + merges[k][1]], k))
    moved = sum(1 for rank, k in enumerate(order) if rank != k)
    spec["model"]["merges"] = [merges[k] for k in order]
    print(f"  merges re-ranked by sentencepiece score: {moved} of {len(merges)} moved; "
          f"first {spec['model']['merges'][:3]}", flush=True)
    spec["normalizer"] = {"type": "Sequence", "normalizers": [
        {"type": "Prepend", "prepend": "\u2581"},
        {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"}]}
    spec["pre_tokenizer"] = None
    spec["model"]["unk_token"] = "<unk>"  # as in the shipped file (byte fallback makes it rare)
    backend = Tokenizer.from_str(json.dumps(spec))
    tok = PreTrainedTokenizerFast(tokenizer_object=backend, bos_token="<s>", eos_token="</s>", unk_token="<unk>",
                                  add_bos_token=True, add_eos_token=False, clean_up_tokenization_spaces=False,
                                  model_max_length=4096)
    print("  normalizer set to Prepend+Replace, pre_tokenizer removed", flush=True)
    return tok


def build_gpt2(src_dir, work_dir):
    """GPT-2 vocab from llama.cpp's GGUF (tokens and merges read here) -> GPT2TokenizerFast."""
    meta = read_gguf_metadata(os.path.join(src_dir, "ggml-vocab-gpt-2.gguf"))
    model = meta.get("tokenizer.ggml.model")
    if model != "gpt2":
        raise ValueError(f"gpt-2 GGUF: tokenizer.ggml.model is {model!r}, expected 'gpt2'")
    tokens = meta["tokenizer.ggml.tokens"]
    merges = meta["tokenizer.ggml.merges"]
    types = meta.get("tokenizer.ggml.token_type", [1] * len(tokens))
    vocab = {t: i for i, t in enumerate(tokens)}
    if len(vocab) != len(tokens):
        raise ValueError("gpt-2 GGUF: duplicate tokens")
    pairs = []
    for m in merges:
        a, b = m.split(" ")  # byte-level pieces never contain a raw space
        pairs.append((a, b))
    control = [t for t, ty in zip(tokens, types) if ty == 3]
    print(f"  gguf: {len(tokens)} tokens, {len(pairs)} merges, control tokens {control}", flush=True)
    eot = "<|endoftext|>"
    if eot not in vocab:
        raise ValueError("gpt-2 GGUF: <|endoftext|> missing")
    try:
        from transformers import GPT2TokenizerFast
        tok = GPT2TokenizerFast(vocab=vocab, merges=pairs, unk_token=eot, bos_token=eot, eos_token=eot,
                                add_prefix_space=False)
        how = "transformers.GPT2TokenizerFast(vocab=..., merges=...)"
    except Exception:
        # Fallback: the same byte-level BPE assembled with the tokenizers library directly.
        traceback.print_exc()
        from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors
        from transformers import PreTrainedTokenizerFast
        backend = Tokenizer(models.BPE(vocab=vocab, merges=pairs, dropout=None, continuing_subword_prefix="",
                                       end_of_word_suffix="", fuse_unk=False))
        backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        backend.decoder = decoders.ByteLevel()
        backend.post_processor = processors.ByteLevel(trim_offsets=False)
        backend.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in control])
        tok = PreTrainedTokenizerFast(tokenizer_object=backend, unk_token=eot, bos_token=eot, eos_token=eot)
        how = "tokenizers ByteLevel BPE wrapped in PreTrainedTokenizerFast"
    for t in control:
        if tok.convert_tokens_to_ids(t) != vocab[t]:
            raise ValueError(f"gpt-2: control token {t} did not keep id {vocab[t]}")
    print(f"  built with {how}", flush=True)
    return tok


def build_llama3(src_dir, work_dir):
    """Meta's tiktoken ranks -> transformers' TikTokenConverter -> PreTrainedTokenizerFast."""
    import inspect
    from transformers import PreTrainedTokenizerFast
    from transformers.convert_slow_tokenizer import TikTokenConverter
    specials = llama3_special_tokens()
    params = inspect.signature(TikTokenConverter.__init__).parameters
    kw = {"vocab_file": os.path.join(src_dir, "tokenizer.model"), "pattern": LLAMA3_PATTERN}
    kw["extra_special_tokens" if "extra_special_tokens" in params else "additional_special_tokens"] = specials
    try:
        backend = TikTokenConverter(**kw).converted()
        tok = PreTrainedTokenizerFast(tokenizer_object=backend, bos_token="<|begin_of_text|>",
                                      eos_token="<|end_of_text|>", add_bos_token=True, add_eos_token=False,
                                      clean_up_tokenization_spaces=True, model_max_length=131072)
        how = "TikTokenConverter(...).converted() in PreTrainedTokenizerFast"
    except Exception:
        # Fallback: let transformers find the tiktoken file itself (it tries sentencepiece, then tiktoken).
        traceback.print_exc()
        d = os.path.join(work_dir, "llama3-src")
        os.makedirs(d, exist_ok=True)
        shutil.copy(os.path.join(src_dir, "tokenizer.model"), os.path.join(d, "tokenizer.model"))
        with open(os.path.join(d, "tokenizer_config.json"), "w") as f:
            json.dump({"tokenizer_class": "PreTrainedTokenizerFast", "bos_token": "<|begin_of_text|>",
                       "eos_token": "<|end_of_text|>", "extra_special_tokens": specials,
                       "additional_special_tokens": specials, "model_max_length": 131072}, f)
        tok = PreTrainedTokenizerFast.from_pretrained(d)
        how = "PreTrainedTokenizerFast.from_pretrained(folder with tokenizer.model)"
    print(f"  built with {how}", flush=True)
    for i, s in enumerate(specials):
        if tok.convert_tokens_to_ids(s) != 128000 + i:
            raise ValueError(f"llama3: special token {s} has id {tok.convert_tokens_to_ids(s)}, expected {128000 + i}")
    return tok


# Direct encoders from the original libraries, as a second opinion on the conversion.

def direct_llama_spm(src_dir):
    import sentencepiece as spm
    sp = spm.SentencePieceProcessor(model_file=os.path.join(src_dir, "tokenizer.model"))
    return "sentencepiece", lambda text: list(sp.encode(text))


def direct_llama3(src_dir):
    import tiktoken
    from tiktoken.load import load_tiktoken_bpe
    ranks = load_tiktoken_bpe(os.path.join(src_dir, "tokenizer.model"))
    specials = {s: len(ranks) + i for i, s in enumerate(llama3_special_tokens())}
    enc = tiktoken.Encoding(name="llama3", pat_str=LLAMA3_PATTERN, mergeable_ranks=ranks, special_tokens=specials)
    return "tiktoken", lambda text: enc.encode(text, allowed_special=set(), disallowed_special=())


VARIANTS = [
    # name, source folder, test-vector stem, builder, direct encoder
    ("llama-spm", "llama-spm", "ggml-vocab-llama-spm.gguf", build_llama_spm, direct_llama_spm),
    ("llama-spm-metaspace", "llama-spm", "ggml-vocab-llama-spm.gguf", build_llama_spm_metaspace, direct_llama_spm),
    ("gpt-2", "gpt-2", "ggml-vocab-gpt-2.gguf", build_gpt2, None),
    ("llama3", "llama3", "ggml-vocab-llama-bpe.gguf", build_llama3, direct_llama3),
]


def encode_all(fn, texts):
    return [list(map(int, fn(t))) for t in texts]


def count_match(a, b):
    return sum(1 for x, y in zip(a, b) if x == y)


def make_one(name, src_dir, stem, builder, direct, out_root, work_dir, max_json_mb):
    import tokenizers
    from transformers import AutoTokenizer
    out_dir = os.path.join(out_root, name)
    if os.path.isdir(out_dir):
        shutil.rmtree(out_dir)
    os.makedirs(out_dir)
    texts, llamacpp = read_cases(os.path.join(src_dir, stem + ".inp"), os.path.join(src_dir, stem + ".out"))
    print(f"[{name}] {len(texts)} cases from {stem}.inp", flush=True)

    tok = builder(src_dir, work_dir)
    hf_ids = encode_all(lambda t: tok.encode(t, add_special_tokens=False), texts)

    save_dir = os.path.join(work_dir, name + "-saved")
    tok.save_pretrained(save_dir)
    # Keep only what a loader needs; tokenizer.json written compact (one line) to stay small.
    tokenizer_json = os.path.join(out_dir, "tokenizer.json")
    tok.backend_tokenizer.save(tokenizer_json, pretty=False)
    for extra in ("tokenizer_config.json", "special_tokens_map.json"):
        p = os.path.join(save_dir, extra)
        if os.path.isfile(p):
            shutil.copy(p, os.path.join(out_dir, extra))

    # The files as written must give the same ids: raw tokenizers, and transformers reloading.
    raw = tokenizers.Tokenizer.from_file(tokenizer_json)
    raw_ids = encode_all(lambda t: raw.encode(t, add_special_tokens=False).ids, texts)
    re_dir = os.path.join(work_dir, name + "-reload")
    os.makedirs(re_dir, exist_ok=True)
    for fn in os.listdir(out_dir):
        shutil.copy(os.path.join(out_dir, fn), os.path.join(re_dir, fn))
    reloaded = AutoTokenizer.from_pretrained(re_dir)
    re_ids = encode_all(lambda t: reloaded.encode(t, add_special_tokens=False), texts)
    problems = []
    if raw_ids != hf_ids:
        problems.append(f"tokenizers.Tokenizer.from_file gives other ids on {len(texts) - count_match(raw_ids, hf_ids)} cases")
    if re_ids != hf_ids:
        problems.append(f"AutoTokenizer reload gives other ids on {len(texts) - count_match(re_ids, hf_ids)} cases")

    with open(os.path.join(out_dir, "expected_ids.json"), "w", encoding="utf-8") as f:
        json.dump([{"text": t, "ids": ids} for t, ids in zip(texts, hf_ids)], f, ensure_ascii=False, indent=1)

    n_llamacpp = count_match(hf_ids, llamacpp)
    mismatches = [{"index": i, "text": t, "hf": a, "llama_cpp": b}
                  for i, (t, a, b) in enumerate(zip(texts, hf_ids, llamacpp)) if a != b]
    summary = {
        "name": name,
        "cases": len(texts),
        "test_vectors": stem + ".inp/.out (llama.cpp, see SOURCE_COMMIT.txt in the data folder)",
        "tokenizer_class": type(tok).__name__,
        "vocab_size_with_added": len(tok),
        "match_llama_cpp_out": n_llamacpp,
        "mismatches_llama_cpp": mismatches,
        "file_checks": problems,
    }
    if direct is not None:
        lib, fn = direct(src_dir)
        d_ids = encode_all(fn, texts)
        summary["direct_library"] = lib
        summary["match_direct_library"] = count_match(hf_ids, d_ids)
        summary["mismatches_direct_library"] = [
            {"index": i, "text": t, "hf": a, lib: b} for i, (t, a, b) in enumerate(zip(texts, hf_ids, d_ids)) if a != b]
        summary["direct_library_match_llama_cpp_out"] = count_match(d_ids, llamacpp)
    size_mb = os.path.getsize(tokenizer_json) / 1e6
    summary["tokenizer_json_mb"] = round(size_mb, 3)
    if size_mb > max_json_mb:
        summary["too_large"] = True
        problems.append(f"tokenizer.json is {size_mb:.1f} MB (> {max_json_mb} MB): do not commit")
    with open(os.path.join(out_dir, "comparison.json"), "w", encoding="utf-8") as f:
        json.dump(summary, f, ensure_ascii=False, indent=1)

    line = f"[{name}] HF vs llama.cpp .out: {n_llamacpp}/{len(texts)} match"
    if direct is not None:
        line += (f"; HF vs {summary['direct_library']}: {summary['match_direct_library']}/{len(texts)}"
                 f"; {summary['direct_library']} vs llama.cpp: {summary['direct_library_match_llama_cpp_out']}/{len(texts)}")
    line += f"; tokenizer.json {size_mb:.2f} MB"
    print(line, flush=True)
    for m in mismatches:
        print(f"   mismatch #{m['index']} {m['text']!r}: hf {m['hf']} llama.cpp {m['llama_cpp']}", flush=True)
    for p in problems:
        print(f"   PROBLEM: {p}", flush=True)
    return not problems


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, help="folder holding llama-spm/, gpt-2/, llama3/")
    ap.add_argument("--out", required=True, help="output root, e.g. tests/fixtures/tokenizers")
    ap.add_argument("--only", nargs="*", help="subset of variant names")
    ap.add_argument("--max-json-mb", type=float, default=10.0)
    args = ap.parse_args()

    import tokenizers
    import transformers
    print(f"transformers {transformers.__version__}, tokenizers {tokenizers.__version__}", flush=True)
    ok = True
    with tempfile.TemporaryDirectory() as work:
        for name, sub, stem, builder, direct in VARIANTS:
            if args.only and name not in args.only:
                continue
            try:
                ok &= make_one(name, os.path.join(args.data, sub), stem, builder, direct, args.out, work,
                               args.max_json_mb)
            except Exception:
                traceback.print_exc()
                print(f"[{name}] FAILED", flush=True)
                ok = False
    versions = {"transformers": transformers.__version__, "tokenizers": tokenizers.__version__}
    for mod in ("sentencepiece", "tiktoken"):
        try:
            versions[mod] = __import__(mod).__version__
        except Exception:
            pass
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "versions.json"), "w") as f:
        json.dump(versions, f, indent=1)
    print("tokenizer fixtures:", "OK" if ok else "WITH PROBLEMS", flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
