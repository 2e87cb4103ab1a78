#!/usr/bin/env python3
"""Tiny random-weight Llama-family models and their Hugging Face transformers logits.

Each variant is built by transformers from a config (nothing downloaded), given seeded random
weights large enough that the logits are not flat, saved with save_pretrained (safetensors), and
run by transformers (attn_implementation="eager", the whole sequence in one forward pass, on the
CPU) over a fixed sequence of random token ids. What is saved per folder
tests/fixtures/hf/<name>/:

  config.json, model.safetensors (or shards + model.safetensors.index.json), generation_config.json
  ids.npy         int32   [n]          the token ids (positions 0..n-1)
  logits.npy      float32 [n, vocab]   the model's logits in its own dtype (BF16 values upcast)
  logits_f32.npy  float32 [n, vocab]   BF16 models only: the BF16 weights upcast to F32, run in F32
  reference.json  config summary, versions, checks, BF16 tolerance

The logits are computed from the saved folder (loaded back with from_pretrained), so they are what
transformers makes of exactly the files checked in. Runs where torch + transformers are installed:

  python3 scripts/hf_reference/make_model_fixtures.py --out tests/fixtures/hf
"""

import argparse
import copy
import json
import os
import shutil
import sys
import traceback

import numpy as np

N_TOKENS = 300
VOCAB = 512
INIT_STD = 0.1  # 0.02 (the usual init) gives nearly flat logits in a random model this small

# name, base model (the BF16 variant of a base shares its weights), dtype, config form on disk,
# shard the weights
VARIANTS = [
    ("llama3-f32", "llama3", "float32", "rope_parameters", True),
    ("llama3-bf16", "llama3", "bfloat16", "legacy", False),
    ("mistral-f32", "mistral", "float32", "rope_parameters", False),
    ("mistral-bf16", "mistral", "bfloat16", "rope_parameters", False),
    ("qwen2-f32", "qwen2", "float32", "rope_parameters", False),
    ("qwen2-bf16", "qwen2", "bfloat16", "rope_parameters", False),
    ("llama2-f32", "llama2", "float32", "legacy", False),
]

BASES = {
    # Llama 3.1-style: GQA 4/2, llama3 RoPE scaling whose original context (64) is inside the tested
    # 300 positions, so all three frequency bands (kept, interpolated, divided by factor) are used.
    # Every matrix row length (64, 128) is a multiple of 32, so the engine can quantize it.
    "llama3": dict(cls="LlamaForCausalLM", seed=1001, hidden_size=64, intermediate_size=128,
                   num_hidden_layers=3, num_attention_heads=4, num_key_value_heads=2, head_dim=16,
                   max_position_embeddings=512, rms_norm_eps=1e-5, tie_word_embeddings=False,
                   attention_bias=False, mlp_bias=False, bos_token_id=1, eos_token_id=2,
                   rope={"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0, "low_freq_factor": 1.0,
                         "high_freq_factor": 4.0, "original_max_position_embeddings": 64}),
    # Mistral: GQA with one KV head for four query heads; sliding window far beyond 300 tokens.
    "mistral": dict(cls="MistralForCausalLM", seed=2002, hidden_size=64, intermediate_size=172,
                    num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=1, head_dim=16,
                    max_position_embeddings=4096, rms_norm_eps=1e-5, tie_word_embeddings=False,
                    sliding_window=4096, bos_token_id=1, eos_token_id=2,
                    rope={"rope_type": "default", "rope_theta": 1000000.0}),
    # Qwen2: q/k/v biases, tied embeddings (no lm_head tensor in the file).
    "qwen2": dict(cls="Qwen2ForCausalLM", seed=3003, hidden_size=64, intermediate_size=172,
                  num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                  max_position_embeddings=1024, rms_norm_eps=1e-6, tie_word_embeddings=True,
                  use_sliding_window=False, bos_token_id=1, eos_token_id=2,
                  rope={"rope_type": "default", "rope_theta": 1000000.0}),
    # Llama 2: plain multi-head attention, no scaling.
    "llama2": dict(cls="LlamaForCausalLM", seed=4004, hidden_size=64, intermediate_size=172,
                   num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=4, head_dim=16,
                   max_position_embeddings=2048, rms_norm_eps=1e-6, tie_word_embeddings=False,
                   attention_bias=False, mlp_bias=False, bos_token_id=1, eos_token_id=2,
                   rope={"rope_type": "default", "rope_theta": 10000.0}),
}

# Keys written into config.json from the config object when save_pretrained left them out (it drops
# values equal to the defaults), so a loader never has to know transformers' defaults.
EXPLICIT_KEYS = ["vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
                 "num_key_value_heads", "head_dim", "hidden_act", "max_position_embeddings", "rms_norm_eps",
                 "tie_word_embeddings", "attention_bias", "mlp_bias", "sliding_window", "use_sliding_window",
                 "bos_token_id", "eos_token_id"]


class Checks:
    def __init__(self):
        self.failed = []

    def check(self, ok, what):
        print(f"    {'ok  ' if ok else 'FAIL'} {what}", flush=True)
        if not ok:
            self.failed.append(what)
        return ok


def torch_dtype(name):
    import torch
    return {"float32": torch.float32, "bfloat16": torch.bfloat16}[name]


def make_config(base):
    import transformers
    spec = dict(BASES[base])
    cls_name = spec.pop("cls")
    spec.pop("seed")
    rope = dict(spec.pop("rope"))
    config_cls = getattr(transformers, cls_name.replace("ForCausalLM", "Config"))
    major = int(transformers.__version__.split(".")[0])
    if major >= 5:
        spec["rope_parameters"] = rope
    else:  # transformers 4 takes the older keys
        spec["rope_theta"] = rope.pop("rope_theta")
        spec["rope_scaling"] = rope if rope.get("rope_type", "default") != "default" else None
    cfg = config_cls(vocab_size=VOCAB, hidden_act="silu", **spec)
    cfg.architectures = [cls_name]
    return cls_name, cfg


def build_model(base):
    """The F32 model with seeded weights: matrices and embeddings N(0, INIT_STD), norm gains
    1 + N(0, 0.1) (not all ones, so a missing norm multiply shows), biases N(0, 0.1)."""
    import torch
    import transformers
    cls_name, cfg = make_config(base)
    cls = getattr(transformers, cls_name)
    try:
        model = cls._from_config(cfg, attn_implementation="eager", dtype=torch.float32)
    except TypeError:
        cfg._attn_implementation = "eager"
        model = cls(cfg)
    model = model.float().eval()
    gen = torch.Generator().manual_seed(BASES[base]["seed"])
    with torch.no_grad():
        for name, p in sorted(model.named_parameters()):  # tied weights are listed once
            noise = torch.randn(p.shape, generator=gen, dtype=torch.float32)
            if p.dim() == 1 and "norm" in name:
                p.copy_(1.0 + 0.1 * noise)
            elif name.endswith(".bias"):
                p.copy_(0.1 * noise)
            else:
                p.copy_(INIT_STD * noise)
    return model


def make_ids(base):
    rng = np.random.default_rng(BASES[base]["seed"] + 17)
    return rng.integers(0, VOCAB, size=N_TOKENS).astype(np.int32)


def load(folder, dtype, device="cpu"):
    import torch
    import transformers
    try:
        m = transformers.AutoModelForCausalLM.from_pretrained(folder, dtype=torch_dtype(dtype),
                                                              attn_implementation="eager")
    except TypeError:
        m = transformers.AutoModelForCausalLM.from_pretrained(folder, torch_dtype=torch_dtype(dtype),
                                                              attn_implementation="eager")
    return m.to(device).eval()


def forward(model, ids, device="cpu"):
    import torch
    with torch.no_grad():
        x = torch.from_numpy(ids.astype(np.int64))[None].to(device)
        out = model(input_ids=x, use_cache=False)
    return out.logits[0].float().cpu().numpy().astype(np.float32)


def max_abs(a, b):
    return float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64))))


def fix_config_json(folder, model_config, form):
    """Write the keys save_pretrained dropped; optionally rewrite RoPE into the older keys."""
    path = os.path.join(folder, "config.json")
    with open(path) as f:
        cfg = json.load(f)
    added = []
    for k in EXPLICIT_KEYS:
        if k not in cfg and hasattr(model_config, k):
            cfg[k] = getattr(model_config, k)
            added.append(k)
    if form == "legacy":
        rp = dict(cfg.pop("rope_parameters", None) or {})
        if "rope_theta" in rp:
            cfg["rope_theta"] = rp.pop("rope_theta")
        cfg["rope_scaling"] = rp if rp.get("rope_type", "default") != "default" else None
    with open(path, "w") as f:
        json.dump(cfg, f, indent=2, sort_keys=True)
        f.write("\n")
    return cfg, added


def rope_of(config):
    rp = getattr(config, "rope_parameters", None)
    if rp is None:  # transformers 4
        rp = dict(getattr(config, "rope_scaling", None) or {"rope_type": "default"})
        rp["rope_theta"] = config.rope_theta
    return {k: (float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else v) for k, v in rp.items()}


def summary_of(config):
    keys = ["model_type", "vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers",
            "num_attention_heads", "num_key_value_heads", "head_dim", "max_position_embeddings", "rms_norm_eps",
            "tie_word_embeddings", "attention_bias", "mlp_bias", "sliding_window", "use_sliding_window", "hidden_act"]
    s = {k: getattr(config, k) for k in keys if hasattr(config, k)}
    s["rope"] = rope_of(config)
    return s


def make_variant(name, base, dtype, form, sharded, model_f32, out_root, versions, cuda):
    import torch
    chk = Checks()
    folder = os.path.join(out_root, name)
    if os.path.isdir(folder):
        shutil.rmtree(folder)
    print(f"[{name}] {BASES[base]['cls']} {dtype}, config form {form}{', sharded' if sharded else ''}", flush=True)
    ids = make_ids(base)

    model = model_f32 if dtype == "float32" else copy.deepcopy(model_f32).to(torch.bfloat16)
    if sharded:
        model.save_pretrained(folder, max_shard_size="256KB")
    else:
        model.save_pretrained(folder)
    files = sorted(os.listdir(folder))
    shards = [f for f in files if f.endswith(".safetensors")]
    if sharded:
        chk.check(len(shards) >= 2 and "model.safetensors.index.json" in files, f"sharded into {shards}")
    else:
        chk.check(shards == ["model.safetensors"], f"single file {shards}")

    # Canonical logits: the folder as saved by transformers (rope_parameters form), loaded back.
    _, added = fix_config_json(folder, model.config, "rope_parameters")
    loaded = load(folder, dtype)
    chk.check(loaded.config._attn_implementation == "eager", "eager attention")
    logits = forward(loaded, ids)
    if dtype == "float32":
        d = max_abs(logits, forward(model_f32, ids))
        chk.check(d <= 1e-5, f"saved+reloaded F32 logits equal the in-memory model's (max abs diff {d:.3g})")
    ref_rope = rope_of(loaded.config)

    legacy_diff = None
    if form == "legacy":
        cfg_json, _ = fix_config_json(folder, model.config, "legacy")
        chk.check("rope_parameters" not in cfg_json and "rope_theta" in cfg_json and "rope_scaling" in cfg_json,
                  f"config.json in the older form: rope_theta={cfg_json.get('rope_theta')} "
                  f"rope_scaling={cfg_json.get('rope_scaling')}")
        legacy = load(folder, dtype)
        chk.check(rope_of(legacy.config) == ref_rope, f"older form parses to the same RoPE {rope_of(legacy.config)}")
        legacy_diff = max_abs(forward(legacy, ids), logits)
        chk.check(legacy_diff == 0.0, f"older-form config gives identical logits (max abs diff {legacy_diff:.3g})")
    else:
        with open(os.path.join(folder, "config.json")) as f:
            cfg_json = json.load(f)
        chk.check("rope_parameters" in cfg_json, f"config.json rope_parameters={cfg_json.get('rope_parameters')}")
    if base == "qwen2":
        from safetensors import safe_open
        with safe_open(os.path.join(folder, "model.safetensors"), "pt") as st:
            keys = list(st.keys())
        chk.check(cfg_json.get("tie_word_embeddings") is True and "lm_head.weight" not in keys,
                  "tied embeddings: tie_word_embeddings true, no lm_head.weight in the file")
        chk.check(any(k.endswith("q_proj.bias") for k in keys) and any(k.endswith("v_proj.bias") for k in keys),
                  "q/k/v biases stored")

    np.save(os.path.join(folder, "ids.npy"), ids)
    np.save(os.path.join(folder, "logits.npy"), logits)
    argmax = logits.argmax(axis=1)
    n_distinct = int(len(np.unique(argmax)))
    chk.check(np.isfinite(logits).all() and logits.shape == (N_TOKENS, VOCAB), f"logits {logits.shape} finite")
    chk.check(n_distinct >= 20, f"argmax takes {n_distinct} distinct values over {N_TOKENS} positions")
    print(f"    logits std {logits.std():.3f}, max |logit| {np.abs(logits).max():.3f}", flush=True)

    ref = {
        "name": name,
        "architecture": BASES[base]["cls"],
        "dtype": dtype,
        "config_form": "legacy rope_theta + rope_scaling" if form == "legacy" else "rope_parameters",
        "sharded": sharded,
        "weight_files": shards,
        "config_keys_added_by_script": added,
        "config": summary_of(loaded.config),
        "n_tokens": N_TOKENS,
        "ids_seed": BASES[base]["seed"] + 17,
        "weight_seed": BASES[base]["seed"],
        "init": f"matrices/embeddings N(0,{INIT_STD}); norm gains 1+N(0,0.1); biases N(0,0.1)",
        "forward": "transformers eager attention, whole sequence in one pass, CPU, positions 0..n-1",
        "logits_std": float(logits.std()),
        "argmax_distinct": n_distinct,
        "versions": versions,
    }
    if legacy_diff is not None:
        ref["legacy_config_max_abs_diff"] = legacy_diff

    if dtype == "bfloat16":
        # What an engine computing in F32 from these BF16 weights should reproduce.
        as_f32 = load(folder, "float32")
        chk.check(all(p.dtype == torch.float32 for p in as_f32.parameters()), "BF16 weights upcast to F32 on load")
        logits_f32 = forward(as_f32, ids)
        np.save(os.path.join(folder, "logits_f32.npy"), logits_f32)
        tol = max_abs(logits, logits_f32)
        agree = float(np.mean(logits.argmax(1) == logits_f32.argmax(1)))
        ref["bf16_vs_f32_max_abs_diff"] = tol
        ref["bf16_vs_f32_mean_abs_diff"] = float(np.mean(np.abs(logits - logits_f32)))
        ref["bf16_vs_f32_argmax_agreement"] = agree
        ref["f32_model_vs_bf16_weights_in_f32_max_abs_diff"] = max_abs(logits_f32, forward(model_f32, ids))
        print(f"    BF16 vs F32-from-BF16: max abs {tol:.4g}, argmax agreement {agree:.3f}", flush=True)
        chk.check(0.0 < tol < 1.0, f"BF16 tolerance {tol:.4g} is plausible")

    if cuda:  # a second opinion from the GPU (TF32 off)
        try:
            torch.backends.cuda.matmul.allow_tf32 = False
            torch.backends.cudnn.allow_tf32 = False
            g = load(folder, dtype, "cuda")
            ref["cuda_vs_cpu_max_abs_diff"] = max_abs(forward(g, ids, "cuda"), logits)
            if dtype == "bfloat16":
                g32 = load(folder, "float32", "cuda")
                ref["cuda_vs_cpu_f32_from_bf16_max_abs_diff"] = max_abs(forward(g32, ids, "cuda"), logits_f32)
            print(f"    CUDA vs CPU ({dtype}): max abs {ref['cuda_vs_cpu_max_abs_diff']:.3g}", flush=True)
        except Exception as e:
            ref["cuda_error"] = repr(e)

    ref["checks_failed"] = chk.failed
    with open(os.path.join(folder, "reference.json"), "w") as f:
        json.dump(ref, f, indent=1, sort_keys=True)
        f.write("\n")
    size = sum(os.path.getsize(os.path.join(folder, f)) for f in os.listdir(folder))
    print(f"    files {sorted(os.listdir(folder))}, {size / 1e6:.2f} MB", flush=True)
    return chk.failed


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="output root, e.g. tests/fixtures/hf")
    ap.add_argument("--only", nargs="*", help="subset of variant names")
    ap.add_argument("--no-cuda", action="store_true", help="skip the GPU cross-check")
    args = ap.parse_args()

    import safetensors
    import torch
    import transformers
    torch.manual_seed(0)
    torch.use_deterministic_algorithms(True, warn_only=True)
    versions = {"transformers": transformers.__version__, "torch": torch.__version__,
                "safetensors": safetensors.__version__, "numpy": np.__version__}
    print(versions, flush=True)
    cuda = torch.cuda.is_available() and not args.no_cuda
    os.makedirs(args.out, exist_ok=True)
    failed = {}
    models = {}
    for name, base, dtype, form, sharded in VARIANTS:
        if args.only and name not in args.only:
            continue
        try:
            if base not in models:
                models[base] = build_model(base)
            f = make_variant(name, base, dtype, form, sharded, models[base], args.out, versions, cuda)
        except Exception:
            traceback.print_exc()
            f = ["exception"]
        if f:
            failed[name] = f
    total = sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(args.out) for f in fs)
    print(f"total size of {args.out}: {total / 1e6:.2f} MB", flush=True)
    print("model fixtures:", "OK" if not failed else f"FAILED {failed}", flush=True)
    return 0 if not failed else 1


if __name__ == "__main__":
    sys.exit(main())
