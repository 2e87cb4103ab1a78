#!/usr/bin/env python3
"""Greedy agreement of kvsieve and llama.cpp on the same GGUF file, token by token.

For each prompt: llama.cpp's llama-completion generates greedily twice, with the prompt in
batches (-b 2048 -ub 512, its default) and one token at a time (-b 1 -ub 1); kvsieve generates
from the same prompt token ids (the ids llama.cpp tokenized, printed by --verbose-prompt, so
both read the same input; whether kvsieve's own tokenization gives the same ids is checked and
shown). With --f32 FILE, llama.cpp also runs batched on FILE (e.g. the dequantized f32 copy of
the model). Both engines stop at the end-of-generation token or after -n tokens. Then a table
of agreement lengths: generated tokens until the first difference, per pair of runs.

    python3 scripts/agree_llamacpp.py --llama PATH/bin MODEL.gguf --prompts PROMPTS.jsonl
        [--f32 MODEL-F32.gguf] [--ruler TASKS --length 4096 --samples 2 --haystack DIR]
        [--kvsieve build/kvsieve] [-n 64] [--threads 2] [--kv-type f16] [--batch 256]

PROMPTS.jsonl: one JSON object a line, {"name": ..., "prompt": TEXT} or the lines of
`kvsieve eval --print-samples` (context + question). --ruler adds those of kvsieve's eval
(same seeds as `kvsieve eval`). llama.cpp is not part of kvsieve: build it yourself from its
public repository; this script neither downloads nor builds anything.

llama-completion prints text, not token ids, so runs are compared as text: a pair with kvsieve
agrees for k tokens when the text of kvsieve's first k tokens (their vocabulary pieces, read
from the GGUF file) starts the other run's text and its first k+1 do not; two llama.cpp runs
agree for the tokens (kvsieve's tokenizer) of their common text. A run that ended (end of
generation) ends its text: "=" marks a pair that agreed on every token until both ended.
"""
import argparse
import json
import os
import re
import struct
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
EOT = re.compile(rb" \[end of text\]\s*$")


def run(cmd, **kw):
    r = subprocess.run(cmd, capture_output=True, **kw)
    if r.returncode != 0:
        sys.exit("failed (%d): %s\n%s" % (r.returncode, " ".join(cmd)[:400],
                                           r.stderr.decode("utf-8", "replace")[-3000:]))
    return r


def gguf_tokens(path):
    """tokenizer.ggml.tokens of a GGUF file (the key-value section only)."""
    with open(path, "rb") as f:
        def rd(fmt):
            return struct.unpack("<" + fmt, f.read(struct.calcsize("<" + fmt)))[0]

        def rstr():
            return f.read(rd("Q"))
        scalar = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}

        def value(t):
            if t == 8:
                return rstr()
            if t == 9:
                et, n = rd("I"), rd("Q")
                return [value(et) for _ in range(n)]
            return rd(scalar[t])
        if f.read(4) != b"GGUF":
            sys.exit(path + ": not a GGUF file")
        rd("I")
        rd("Q")
        for _ in range(rd("Q")):
            key, t = rstr(), rd("I")
            v = value(t)
            if key == b"tokenizer.ggml.tokens":
                return v
    sys.exit(path + ": no tokenizer.ggml.tokens")


def piece_bytes(tok):
    """A SentencePiece vocabulary entry as the bytes it prints."""
    m = re.fullmatch(rb"<0x([0-9A-Fa-f]{2})>", tok)
    if m:
        return bytes([int(m.group(1), 16)])
    if tok in (b"<s>", b"</s>", b"<unk>"):
        return b""
    return tok.replace("\u2581".encode(), b" ")


def write_npy_ids(path, ids):
    """An int32 .npy file (version 1.0) of ids."""
    header = "{'descr': '<i4', 'fortran_order': False, 'shape': (%d,), }" % len(ids)
    header += " " * ((64 - (10 + len(header) + 1) % 64) % 64) + "\n"
    with open(path, "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode("latin1"))
        f.write(struct.pack("<%di" % len(ids), *ids))


def run_llama(a, model, prompt_file, extra):
    """(prompt ids, generated text, ended) of a greedy llama-completion run."""
    cmd = [os.path.join(a.llama, "llama-completion"), "-m", model, "-f", prompt_file, "-n", str(a.n),
           "-no-cnv", "--no-escape", "--temp", "0", "--top-k", "1", "--sampling-seq", "k",
           "--no-warmup", "-c", str(a.ctx), "-t", str(a.threads), "--verbose-prompt", "--no-display-prompt",
           "-ctk", a.kv_type, "-ctv", a.kv_type] + extra
    r = run(cmd, stdin=subprocess.DEVNULL)
    err = r.stderr.decode("utf-8", "replace")
    m = re.search(r"number of tokens in prompt = (\d+)", err)
    if not m:
        sys.exit("llama-completion printed no prompt tokens: " + " ".join(cmd))
    ids = [int(x) for x in re.findall(r"^(?:[\d.]+ [A-Z] )? *(\d+) -> '", err[m.end():], re.M)][: int(m.group(1))]
    m = EOT.search(r.stdout)
    return ids, r.stdout[: m.start()] if m else r.stdout, m is not None


def run_kvsieve(a, model, ids_file):
    cmd = [a.kvsieve, "run", "-m", model, "--ids", ids_file, "-n", str(a.n), "--temp", "0",
           "--print-ids", "-t", str(a.threads), "--kv-type", a.kv_type, "-b", str(a.batch)]
    return [int(x) for x in run(cmd).stdout.split()]


def n_tokens(a, text_file):
    return len(run([a.kvsieve, "tokenize", "-m", a.model, "-f", text_file]).stdout.split())


def agree_kv(pieces, kv_ended, text, ended):
    """(tokens of kvsieve's that start text, whether the runs agreed until both ended)."""
    k, pos = 0, 0
    while k < len(pieces) and text.startswith(pieces[k], pos):
        pos += len(pieces[k])
        k += 1
    return k, k == len(pieces) and pos == len(text) and kv_ended == ended


def common_prefix(x, y):
    k = 0
    while k < min(len(x), len(y)) and x[k] == y[k]:
        k += 1
    return k


def load_prompts(a):
    prompts = []
    lines = []
    if a.prompts:
        with open(a.prompts, encoding="utf-8") as f:
            lines += [l for l in f if l.strip()]
    if a.ruler:
        cmd = [a.kvsieve, "eval", "-m", a.model, "--tasks", a.ruler, "--lengths", str(a.length),
               "--samples", str(a.samples), "--print-samples"]
        if a.haystack:
            cmd += ["--haystack", a.haystack]
        lines += run(cmd).stdout.splitlines()
    for line in lines:
        j = json.loads(line)
        if "prompt" in j:
            prompts.append((j.get("name", "p%d" % len(prompts)), j["prompt"]))
        else:
            prompts.append(("%s/%d/%s" % (j["task"], j["length"], j["id"]), j["context"] + j["question"]))
    if not prompts:
        sys.exit("no prompts: give --prompts and/or --ruler")
    return prompts


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", help="GGUF file both engines run")
    ap.add_argument("--llama", required=True, help="llama.cpp's bin folder (llama-completion)")
    ap.add_argument("--prompts", help="JSON lines of prompts")
    ap.add_argument("--ruler", help="also kvsieve eval's prompts of these tasks (comma-separated)")
    ap.add_argument("--length", type=int, default=4096)
    ap.add_argument("--samples", type=int, default=2)
    ap.add_argument("--haystack", help="kvsieve eval's --haystack")
    ap.add_argument("--f32", help="also llama.cpp (batched) on this file, e.g. the dequantized copy")
    ap.add_argument("--kvsieve", default=os.path.join(HERE, "..", "build", "kvsieve"))
    ap.add_argument("-n", type=int, default=64, help="tokens to generate at most")
    ap.add_argument("--ctx", type=int, default=8192, help="llama.cpp's context (-c)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--kv-type", default="f16", choices=["f32", "f16"], help="K/V cache, both engines")
    ap.add_argument("--batch", type=int, default=256, help="kvsieve's prefill chunk (-b)")
    ap.add_argument("--no-one-by-one", action="store_true",
                    help="skip llama.cpp's -b 1 run (slow on long prompts on a busy machine)")
    ap.add_argument("--json", help="also write every run here")
    a = ap.parse_args()
    prompts = load_prompts(a)
    vocab = [piece_bytes(t) for t in gguf_tokens(a.model)]
    llama_runs = [("lb", "llama.cpp batched", a.model, ["-b", "2048", "-ub", "512"])]
    if not a.no_one_by_one:
        llama_runs.append(("l1", "llama.cpp 1 by 1", a.model, ["-b", "1", "-ub", "1"]))
    if a.f32:
        llama_runs.append(("lf", "llama.cpp batched on " + os.path.basename(a.f32), a.f32,
                           ["-b", "2048", "-ub", "512"]))
    cols = ["kv-" + k for k, _, _, _ in llama_runs] + ([] if a.no_one_by_one else ["lb-l1"])
    rows, dump = [], []
    with tempfile.TemporaryDirectory() as tmp:
        pf, idf, cf = (os.path.join(tmp, x) for x in ("prompt.txt", "prompt.npy", "common.txt"))
        for name, text in prompts:
            with open(pf, "w", encoding="utf-8") as f:
                f.write(text)
            runs = {}
            for key, _, model, extra in llama_runs:
                ids, out, ended = run_llama(a, model, pf, extra)
                if key == "lb":
                    prompt = ids
                elif ids != prompt:
                    sys.exit("%s: llama.cpp tokenized the prompt differently in run %s" % (name, key))
                runs[key] = (out, ended)
            write_npy_ids(idf, prompt)
            kv = run_kvsieve(a, a.model, idf)
            eos = 2  # the Llama 2 vocabulary's </s>
            kv_ended = len(kv) < a.n or (kv and kv[-1] == eos)
            kv_ids = [t for t in kv if t != eos]
            pieces = [vocab[t] for t in kv_ids]
            same_tok = [int(t) for t in run([a.kvsieve, "tokenize", "-m", a.model, "-f", pf]).stdout.split()] \
                == prompt
            ag = {}
            for key, _, _, _ in llama_runs:
                ag["kv-" + key] = agree_kv(pieces, kv_ended, *runs[key])
            if "l1" in runs:
                (x, xe), (y, ye) = runs["lb"], runs["l1"]
                c = common_prefix(x, y)
                with open(cf, "wb") as f:
                    f.write(text.encode("utf-8") + x[:c])
                ag["lb-l1"] = (n_tokens(a, cf) - len(prompt), x == y and xe == ye)
            k = ag["kv-lb"][0]
            diff = "-" if ag["kv-lb"][1] else "%d %r / %r" % (kv_ids[k] if k < len(kv_ids) else -1,
                                                             b"".join(pieces[k:k + 2]).decode("utf-8", "replace"),
                                                             runs["lb"][0][sum(map(len, pieces[:k])):][:12].decode("utf-8", "replace"))
            rows.append((name, len(prompt), same_tok, ag, diff))
            dump.append({"name": name, "prompt_tokens": len(prompt), "same_tokenization": same_tok,
                         "agreement": ag, "kvsieve_ids": kv,
                         "llama": {k: v[0].decode("utf-8", "replace") for k, v in runs.items()}})
            print("%s: %s" % (name, ag), file=sys.stderr, flush=True)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(dump, f, indent=1)
    print("Tokens generated alike until the first difference (at most %d; = : alike until both ended)\n" % a.n)
    for key, what, _, extra in llama_runs:
        print("- kv-%s: kvsieve (-b %d, %s K/V) vs %s (%s)" % (key, a.batch, a.kv_type, what, " ".join(extra)))
    print("" if a.no_one_by_one else "- lb-l1: llama.cpp batched vs llama.cpp 1 by 1\n")
    print("| prompt | tokens | same ids | %s | kv-lb first difference: kvsieve id 'text' / llama.cpp 'text' |" %
          " | ".join(cols))
    print("|---|---:|---|%s---|" % ("---:|" * len(cols)))
    for name, n_prompt, same_tok, ag, diff in rows:
        cells = ["%d%s" % (ag[c][0], " =" if ag[c][1] else "") for c in cols]
        print("| %s | %d | %s | %s | %s |" % (name, n_prompt, "yes" if same_tok else "NO", " | ".join(cells), diff))
    print()
    for c in cols:
        v = sorted(r[3][c][0] for r in rows)
        ok = sum(r[3][c][0] >= 32 or r[3][c][1] for r in rows)
        print("%s: min %d, median %d; %d of %d prompts alike for >= 32 tokens or until both ended" %
              (c, v[0], v[len(v) // 2], ok, len(rows)))


if __name__ == "__main__":
    main()
