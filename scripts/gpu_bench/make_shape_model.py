#!/usr/bin/env python3
"""A random-weight model of Llama-3.1-8B-Instruct's shape as a Hugging Face folder (BF16
safetensors), and random prompts as int32 .npy files, for benchmarks on the GPU machine.

    python3 make_shape_model.py --out DIR [--lengths 8192,32768] [--layers 32]

Shape: 32 layers, hidden 4096, 32 query / 8 KV heads of 128, FFN 14336, vocab 128256, RoPE theta
500000 with llama3 scaling (factor 8, low 1, high 4, original context 8192), tied embeddings off.
Weights: normal(0, 0.02) in bf16 (norms 1), seed 0; prompts: ids uniform in [0, vocab), seed 1.
"""
import argparse
import os

import numpy as np
import torch
from transformers import LlamaConfig, LlamaForCausalLM


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--lengths", default="8192,32768")
    ap.add_argument("--layers", type=int, default=32)
    a = ap.parse_args()
    cfg = LlamaConfig(vocab_size=128256, hidden_size=4096, intermediate_size=14336,
                      num_hidden_layers=a.layers, num_attention_heads=32, num_key_value_heads=8,
                      head_dim=128, max_position_embeddings=131072, rms_norm_eps=1e-5,
                      rope_theta=500000.0, tie_word_embeddings=False, bos_token_id=128000,
                      eos_token_id=128009,
                      rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                    "high_freq_factor": 4.0, "original_max_position_embeddings": 8192})
    torch.manual_seed(0)
    with torch.device("cuda" if torch.cuda.is_available() else "cpu"):
        model = LlamaForCausalLM(cfg).to(torch.bfloat16)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 1:
                p.fill_(1.0)
            else:
                p.normal_(0.0, 0.02)
    os.makedirs(a.out, exist_ok=True)
    model.save_pretrained(a.out, safe_serialization=True)
    rng = np.random.RandomState(1)
    for n in (int(x) for x in a.lengths.split(",")):
        np.save(os.path.join(a.out, f"ids_{n}.npy"), rng.randint(0, 128000, n).astype(np.int32))
    print(f"wrote {a.out}: {sum(p.numel() for p in model.parameters()) / 1e9:.2f}B parameters")


if __name__ == "__main__":
    main()
