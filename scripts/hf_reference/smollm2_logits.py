#!/usr/bin/env python3
"""transformers' logits and greedy text for SmolLM2-135M-Instruct, from the same GGUF kvsieve reads.

transformers loads the GGUF itself (`gguf_file=`: it dequantizes every tensor to float32 with the
`gguf` package), so these numbers come from code nobody here wrote. Writes to --out:

  ids.npy             int32 [T]      the prompt: transformers' chat template (with its default
                                     system message) around a user turn, tokenized by transformers
  top_ids.npy         int32 [T, K]   transformers' K largest logits per position, their ids
  top_logits.npy      float32 [T, K] ... and values
  lse.npy             float32 [T]    log-sum-exp of each position's logits
  full_logits.npy     float32 [P, V] whole rows at the positions in manifest.json's full_rows
  greedy.json         greedy continuations (prompt ids, new ids and text) of this prompt and of
                      STORY's, up to max_new_tokens tokens each
  manifest.json       versions, the prompt's text and the messages, the settings

Run (CPU, float32): python3 scripts/hf_reference/smollm2_logits.py --gguf MODEL.gguf --out DIR
"""
import argparse
import json
import os

import numpy as np
import torch
import transformers
from transformers import AutoModelForCausalLM, AutoTokenizer

# A user turn long enough to cover a few hundred positions (public domain: Mary Shelley,
# Frankenstein, 1818, Letter 1).
USER = (
    "Read this letter and answer the question after it.\n\n"
    "You will rejoice to hear that no disaster has accompanied the commencement of an enterprise "
    "which you have regarded with such evil forebodings. I arrived here yesterday, and my first "
    "task is to assure my dear sister of my welfare and increasing confidence in the success of "
    "my undertaking. I am already far north of London, and as I walk in the streets of "
    "Petersburgh, I feel a cold northern breeze play upon my cheeks, which braces my nerves and "
    "fills me with delight. Do you understand this feeling? This breeze, which has travelled from "
    "the regions towards which I am advancing, gives me a foretaste of those icy climes. Inspirited "
    "by this wind of promise, my daydreams become more fervent and vivid. I try in vain to be "
    "persuaded that the pole is the seat of frost and desolation; it ever presents itself to my "
    "imagination as the region of beauty and delight. There, Margaret, the sun is for ever "
    "visible, its broad disk just skirting the horizon and diffusing a perpetual splendour. "
    "There, for with your leave, my sister, I will put some trust in preceding navigators, there "
    "snow and frost are banished; and, sailing over a calm sea, we may be wafted to a land "
    "surpassing in wonders and in beauty every region hitherto discovered on the habitable globe. "
    "Its productions and features may be without example, as the phenomena of the heavenly "
    "bodies undoubtedly are in those undiscovered solitudes.\n\n"
    "In which city is the writer of the letter, and where does he want to sail?"
)

# A second greedy case whose answer runs longer.
STORY = "Write a short story about a sailor who finds a lighthouse in the Arctic."


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gguf", required=True, help="SmolLM2-135M-Instruct.Q4_1.gguf")
    ap.add_argument("--out", required=True)
    ap.add_argument("--top", type=int, default=16)
    ap.add_argument("--new-tokens", type=int, default=64)
    ap.add_argument("--threads", type=int, default=0)
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    os.makedirs(a.out, exist_ok=True)
    folder, name = os.path.split(os.path.abspath(a.gguf))
    tok = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    model.eval()

    messages = [{"role": "user", "content": USER}]
    text = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    ids = tok(text, add_special_tokens=False, return_tensors="pt").input_ids
    T = ids.shape[1]
    print(f"prompt: {T} tokens; first 12 {ids[0, :12].tolist()}")
    with torch.no_grad():
        logits = model(ids).logits[0].float()  # [T, V]
    top = torch.topk(logits, a.top, dim=-1)
    lse = torch.logsumexp(logits, dim=-1)
    full_rows = [0, T // 2, T - 1]
    np.save(os.path.join(a.out, "ids.npy"), ids[0].numpy().astype(np.int32))
    np.save(os.path.join(a.out, "top_ids.npy"), top.indices.numpy().astype(np.int32))
    np.save(os.path.join(a.out, "top_logits.npy"), top.values.numpy().astype(np.float32))
    np.save(os.path.join(a.out, "lse.npy"), lse.numpy().astype(np.float32))
    np.save(os.path.join(a.out, "full_logits.npy"), logits[full_rows].numpy().astype(np.float32))

    cases = []
    for user, prompt_ids in ((USER, ids), (STORY, None)):
        if prompt_ids is None:
            t = tok.apply_chat_template([{"role": "user", "content": user}], tokenize=False,
                                        add_generation_prompt=True)
            prompt_ids = tok(t, add_special_tokens=False, return_tensors="pt").input_ids
        with torch.no_grad():
            gen = model.generate(prompt_ids, max_new_tokens=a.new_tokens, do_sample=False,
                                 top_p=None, top_k=None, temperature=None)
        new = gen[0, prompt_ids.shape[1]:].tolist()
        reply = tok.decode(new, skip_special_tokens=True)
        print(f"greedy ({len(new)} tokens): {reply!r}")
        cases.append({"user": user, "prompt_ids": prompt_ids[0].tolist(), "ids": new, "text": reply})
    with open(os.path.join(a.out, "greedy.json"), "w") as f:
        json.dump({"max_new_tokens": a.new_tokens, "eos_token_id": tok.eos_token_id,
                   "cases": cases}, f, indent=1)
    manifest = {
        "model": name,
        "messages": messages,
        "prompt_text": text,
        "n_tokens": T,
        "top": a.top,
        "full_rows": full_rows,
        "dtype": "float32",
        "device": "cpu",
        "versions": {"transformers": transformers.__version__, "torch": torch.__version__,
                     "numpy": np.__version__},
        "made_by": "scripts/hf_reference/smollm2_logits.py",
    }
    try:
        import gguf
        manifest["versions"]["gguf"] = getattr(gguf, "__version__", "?")
    except ImportError:
        pass
    with open(os.path.join(a.out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
    print("argmax of last position:", int(logits[-1].argmax()), repr(tok.decode([int(logits[-1].argmax())])))


if __name__ == "__main__":
    main()
