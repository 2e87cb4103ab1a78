#!/usr/bin/env python3
"""Keep sets of NVIDIA kvpress's presses on the tiny HF fixture models, in kvsieve's --dump-kept layout.

For each model in tests/fixtures/hf/{llama3-f32,mistral-f32,qwen2-f32}, a prompt made of the first
N ids of the fixture's ids.npy (N = 300, 271, 256), each press and each compression ratio in
{0.25, 0.5, 0.75}, this runs kvpress's own press over one prefill, exactly as kvpress's pipeline
compresses a context (query-agnostic: the whole prompt is the context):

    with press(model):
        model.model(input_ids=ids, past_key_values=DynamicCache())

in float32 on the CPU, then reads which positions each layer and KV head kept:

  * ScorerPress family (snapkv, pyramidkv, streamingllm, knorm, tova, h2o): the compressed cache
    holds the kept key rows in top-k order; each row is matched exactly (bytewise) to a row of the
    uncompressed keys the press was given (which are themselves checked to be bit-identical to an
    independent uncompressed prefill). The result is checked against top-k of the press's own
    scores, and the count against kvpress's budget formula.
  * AdaKV: nothing is removed; the kept positions are the complement of module.masked_key_indices.

kvsieve method name -> kvpress press (defaults: SnapKV window 64 kernel 5, StreamingLLM 4 sinks,
AdaKV alpha_safeguard 0.2, PyramidKV beta 20):

    snapkv SnapKVPress | pyramidkv PyramidKVPress | streamingllm StreamingLLMPress | knorm KnormPress
    tova TOVAPress | h2o ObservedAttentionPress (eager attention) | adakv AdaKVPress(SnapKVPress)

Everything except h2o runs with attn_implementation="sdpa" (kvpress then recomputes the window
attention itself; AdaKV refuses eager). Written to OUT/<model>/:

  ids.npy                 int32 [N], the prompt
  <method>_r<ratio>.json  kvsieve --dump-kept layout ("n_layer", "n_heads", "layers": [{"layer",
                          "heads": [{"head", "budget", "kept": sorted positions}]}]) plus
                          "reference" (press, versions, checks) and, per head, the reference
                          scores at the cut ("min_kept_score", "max_dropped_score")
  <method>_scores.npy     float32 [n_layer, n_kv_heads, N]: the press's scores (what its top-k
                          ran on) for snapkv, knorm, tova and h2o; pyramidkv and adakv use
                          snapkv's (checked bit-identical), streamingllm has 0/1 scores.
OUT/manifest.json sums up every case.

kvpress itself is imported from a copy of its minimal file closure (KVPRESS_DIR/kvpress/..., see
extract_kvpress.sh) with the package __init__ bypassed (it pulls in the pipeline and patches
attention globally). Needs torch, transformers and numpy; no network. See README.md.
"""

import argparse
import importlib
import json
import os
import sys
import time
import traceback
import types

import numpy as np
import torch

MODELS = {"llama3-f32": 300, "mistral-f32": 271, "qwen2-f32": 256}
RATIOS = [0.25, 0.5, 0.75]
# kvsieve method -> (kvpress class, attention implementation)
METHODS = {
    "snapkv": ("SnapKVPress", "sdpa"),
    "pyramidkv": ("PyramidKVPress", "sdpa"),
    "streamingllm": ("StreamingLLMPress", "sdpa"),
    "knorm": ("KnormPress", "sdpa"),
    "tova": ("TOVAPress", "sdpa"),
    "h2o": ("ObservedAttentionPress", "eager"),
    "adakv": ("AdaKVPress", "sdpa"),
}
OWN_SCORES = ("snapkv", "knorm", "tova", "h2o")  # methods whose scores file is written
SHIMS = set()  # compatibility shims that actually fired (reported)


# ----------------------------------------------------------------------------------------------
# kvpress import, bypassing the package __init__


def shim_transformers_names():
    """kvpress imports these by name; stub any that this transformers lacks (none used here)."""
    import transformers

    for name in ("Cache", "DynamicCache", "QuantizedCache", "PreTrainedModel", "LlamaForCausalLM",
                 "MistralForCausalLM", "Phi3ForCausalLM", "Qwen2ForCausalLM", "Qwen3ForCausalLM",
                 "Gemma3ForConditionalGeneration"):
        try:
            getattr(transformers, name)
        except (AttributeError, ImportError, RuntimeError) as e:
            setattr(transformers, name, type(name, (), {}))
            SHIMS.add(f"transformers.{name} missing ({type(e).__name__}); stubbed with an empty class")
    for mod, name in (("transformers.models.gemma3.modeling_gemma3", "Gemma3Attention"),
                      ("transformers.models.phi3.modeling_phi3", "Phi3Attention"),
                      ("transformers.models.qwen3.modeling_qwen3", "Qwen3Attention"),
                      ("transformers.models.llama.modeling_llama", "repeat_kv"),
                      ("transformers.models.llama.modeling_llama", "rotate_half")):
        try:
            m = importlib.import_module(mod)
            getattr(m, name)
        except (AttributeError, ImportError) as e:
            if name in ("repeat_kv", "rotate_half"):
                raise  # used by the presses: no shim
            m = sys.modules.get(mod) or types.ModuleType(mod)
            setattr(m, name, type(name, (), {}))
            sys.modules[mod] = m
            SHIMS.add(f"{mod}.{name} missing ({type(e).__name__}); stubbed with an empty class")


def import_kvpress(root):
    pkg = os.path.join(root, "kvpress")
    if not os.path.isfile(os.path.join(pkg, "presses", "base_press.py")):
        sys.exit(f"no kvpress closure under {pkg} (run scripts/kvpress_reference/extract_kvpress.sh)")
    shim_transformers_names()
    for name, path in (("kvpress", pkg), ("kvpress.presses", os.path.join(pkg, "presses"))):
        m = types.ModuleType(name)
        m.__path__ = [path]
        sys.modules[name] = m
    kp = types.SimpleNamespace()
    for mod, cls in (("snapkv_press", "SnapKVPress"), ("pyramidkv_press", "PyramidKVPress"),
                     ("streaming_llm_press", "StreamingLLMPress"), ("knorm_press", "KnormPress"),
                     ("tova_press", "TOVAPress"), ("observed_attention_press", "ObservedAttentionPress"),
                     ("adakv_press", "AdaKVPress"), ("scorer_press", "ScorerPress")):
        setattr(kp, cls, getattr(importlib.import_module("kvpress.presses." + mod), cls))
    commit_file = os.path.join(pkg, "COMMIT")
    kp.commit = open(commit_file).read().strip() if os.path.exists(commit_file) else "unknown"
    return kp


def make_press(kp, method, ratio):
    if method == "adakv":
        inner = kp.SnapKVPress(compression_ratio=ratio)
        return kp.AdaKVPress(press=inner), inner
    p = getattr(kp, METHODS[method][0])(compression_ratio=ratio)
    return p, p


# ----------------------------------------------------------------------------------------------
# hooks


def install_hook_shim(press, model):
    """kvpress's forward_hook reads kwargs hidden_states, past_key_values, cache_position and
    position_embeddings, and output[1]. Fill in any this transformers does not pass (recorded)."""
    orig = press.forward_hook
    rotary = model.model.rotary_emb

    def hook(module, args, kwargs, output):
        kw = dict(kwargs)
        if kw.get("hidden_states") is None:
            kw["hidden_states"] = args[0]
            SHIMS.add("hook kwargs: hidden_states taken from the positional argument")
        if kw.get("past_key_values") is None and kw.get("past_key_value") is not None:
            kw["past_key_values"] = kw["past_key_value"]
            SHIMS.add("hook kwargs: past_key_values taken from past_key_value")
        if kw.get("past_key_values") is None and kw.get("cache") is not None:
            kw["past_key_values"] = kw["cache"]
            SHIMS.add("hook kwargs: past_key_values taken from cache (transformers >= 5.2x)")
        hs = kw["hidden_states"]
        q_len = hs.shape[1]
        if kw.get("cache_position") is None:
            total = kw["past_key_values"].get_seq_length(module.layer_idx)
            kw["cache_position"] = torch.arange(total - q_len, total, device=hs.device)
            SHIMS.add("hook kwargs: cache_position rebuilt from the cache length")
        if kw.get("position_embeddings") is None:
            pos = kw.get("position_ids")
            if pos is None:
                pos = kw["cache_position"].unsqueeze(0)
            kw["position_embeddings"] = rotary(hs, pos)
            SHIMS.add("hook kwargs: position_embeddings recomputed with model.model.rotary_emb")
        out = output
        if not isinstance(output, (tuple, list)):
            out = (output, None)
            SHIMS.add("attention output was not a tuple; attention weights taken as None")
        orig(module, args, kw, out)
        return output

    press.forward_hook = hook


def run_press(model, ids, press, scorer):
    """One compressed prefill. Returns {layer: (keys_in, keys_out, masked)}, {layer: scores}."""
    from transformers import DynamicCache

    for layer in model.model.layers:
        layer.self_attn.masked_key_indices = None
    cap, scores = {}, {}
    orig_compress = press.compress
    orig_score = scorer.score

    def compress(module, hidden_states, keys, values, attentions, kwargs):
        k_in = keys.detach().clone()
        ko, vo = orig_compress(module, hidden_states, keys, values, attentions, kwargs)
        masked = getattr(module, "masked_key_indices", None)
        cap[module.layer_idx] = (k_in, ko.detach().clone(), masked)
        return ko, vo

    def score(module, *a, **k):
        s = orig_score(module, *a, **k)
        scores[module.layer_idx] = s.detach().clone()  # AdaKV scatters into s afterwards
        return s

    press.compress = compress
    scorer.score = score
    install_hook_shim(press, model)
    with torch.no_grad(), press(model):
        model.model(input_ids=ids, past_key_values=DynamicCache())
    return cap, scores


def full_prefill_keys(model, ids):
    from transformers import DynamicCache

    cache = DynamicCache()
    with torch.no_grad():
        model.model(input_ids=ids, past_key_values=cache)
    return [cache.layers[l].keys.detach().clone() for l in range(model.config.num_hidden_layers)]


# ----------------------------------------------------------------------------------------------
# keep sets


def kept_from_rows(k_in, k_out):
    """Positions of the rows of k_out (1, H, m, d) in k_in (1, H, n, d), per head, exact match."""
    k_in, k_out = k_in.float().cpu().numpy(), k_out.float().cpu().numpy()
    out = []
    for h in range(k_in.shape[1]):
        rows = {k_in[0, h, j].tobytes(): j for j in range(k_in.shape[2])}
        assert len(rows) == k_in.shape[2], "duplicate key rows: positions cannot be recovered"
        idx = [rows[k_out[0, h, i].tobytes()] for i in range(k_out.shape[2])]
        assert len(set(idx)) == len(idx), "a key row was kept twice"
        out.append(sorted(idx))
    return out


def kept_from_mask(masked, n_heads, n):
    b, h, s = (t.cpu().tolist() for t in masked)
    assert set(b) <= {0}
    dropped = [set() for _ in range(n_heads)]
    for hh, ss in zip(h, s):
        assert ss not in dropped[hh], "a position masked twice"
        dropped[hh].add(ss)
    return [sorted(set(range(n)) - dropped[hh]) for hh in range(n_heads)]


def budget_formula(method, ratio, n, layer, L, window=64, beta=20):
    """kvpress's kept count per head (AdaKV: per layer over all heads / n_heads)."""
    if method != "pyramidkv":
        return int(n * (1 - ratio))
    mcp = window + n * (1 - ratio)
    min_num = (mcp - window) / beta
    max_num = (mcp - window) * 2 - min_num
    if max_num >= n - window:
        max_num = n - window
        min_num = (mcp - window) * 2 - max_num
    if not (n >= max_num >= min_num >= window):
        return round(n * (1 - ratio))
    return round(max_num - layer * (max_num - min_num) / (L - 1))


def run_case(model, ids, kp, method, ratio, full_keys):
    n = ids.shape[1]
    L = model.config.num_hidden_layers
    H = model.config.num_key_value_heads
    press, scorer = make_press(kp, method, ratio)
    press_repr = repr(press)
    cap, scores = run_press(model, ids, press, scorer)
    assert sorted(cap) == list(range(L)), f"press ran on layers {sorted(cap)}"
    checks = []
    kept, sc = [], []
    for l in range(L):
        k_in, k_out, masked = cap[l]
        assert torch.equal(k_in, full_keys[l]), f"layer {l}: press input keys differ from the prefill"
        s = scores[l][0].float().cpu()  # (H, n)
        assert s.shape == (H, n), f"scores shape {tuple(s.shape)}"
        sc.append(s.numpy())
        if method == "adakv":
            assert torch.equal(k_out, k_in), "AdaKV changed the keys"
            assert masked is not None, "AdaKV left no masked_key_indices"
            ks = kept_from_mask(masked, H, n)
            assert sum(map(len, ks)) == H * budget_formula(method, ratio, n, l, L)
        else:
            ks = kept_from_rows(k_in, k_out)
            want = budget_formula(method, ratio, n, l, L)
            assert all(len(k) == want for k in ks), f"layer {l}: kept {[len(k) for k in ks]}, formula {want}"
            top = scores[l].topk(want, dim=-1).indices[0]
            for h in range(H):
                assert sorted(top[h].tolist()) == ks[h], f"layer {l} head {h}: rows != top-k of scores"
        kept.append(ks)
    checks.append("press input keys bit-identical to an uncompressed prefill, every layer")
    if method == "adakv":
        checks.append("kept = complement of masked_key_indices; layer total = n_kv_heads * int(n*(1-r))")
    else:
        checks.append("kept rows matched exactly to input rows; = top-k of the press's scores; "
                      "count = kvpress's budget formula")
    return dict(press=press_repr, kept=kept, scores=np.stack(sc).astype(np.float32), checks=checks)


def cut_scores(scores_lh, kept_lh):
    """(min kept score, max dropped score) of one head."""
    mask = np.zeros(scores_lh.shape[0], bool)
    mask[kept_lh] = True
    lo = float(scores_lh[mask].min()) if mask.any() else None
    hi = float(scores_lh[~mask].max()) if (~mask).any() else None
    return lo, hi


def relative_margin(method, scores, kept):
    """Smallest (min kept - max dropped) / max|score| over heads (AdaKV: over each layer's heads,
    window rows and safeguard aside, since its cut is global over a layer's heads)."""
    worst = float("inf")
    for l in range(scores.shape[0]):
        groups = [list(range(scores.shape[1]))] if method == "adakv" else [[h] for h in range(scores.shape[1])]
        for g in groups:
            lo, hi = float("inf"), -float("inf")
            for h in g:
                s = scores[l, h].astype(np.float64)
                m = np.zeros(s.shape[0], bool)
                m[kept[l][h]] = True
                if method == "adakv":  # rank among non-window rows only (window padded with max+1)
                    m_cand = np.ones(s.shape[0], bool)
                    m_cand[-64:] = False
                    if (m & m_cand).any():
                        lo = min(lo, s[m & m_cand].min())
                    if (~m & m_cand).any():
                        hi = max(hi, s[~m & m_cand].max())
                else:
                    if m.any():
                        lo = min(lo, s[m].min())
                    if (~m).any():
                        hi = max(hi, s[~m].max())
            scale = float(np.abs(scores[l, g]).max()) or 1.0
            if np.isfinite(lo) and np.isfinite(hi):
                worst = min(worst, (lo - hi) / scale)
    return worst if np.isfinite(worst) else None


# ----------------------------------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--kvpress", default="third_party_ref", help="folder holding kvpress/ (closure)")
    ap.add_argument("--models", default="tests/fixtures/hf", help="folder of the HF fixture models")
    ap.add_argument("--out", default="tests/fixtures/kvpress")
    ap.add_argument("--only", nargs="*", help="model names")
    ap.add_argument("--threads", type=int, default=8)
    ap.add_argument("--cross-device", default="", help="also run every case on this device "
                    "(e.g. cuda, fp32, TF32 off) and report keep sets that differ (nothing saved)")
    ap.add_argument("--cross-eager", action="store_true", help="also run snapkv, pyramidkv and tova "
                    "with eager attention (kvpress then uses the model's own weights) and report")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    import transformers
    from transformers import AutoModelForCausalLM

    kp = import_kvpress(args.kvpress)
    print(f"kvpress {kp.commit}; transformers {transformers.__version__}; torch {torch.__version__}; "
          f"numpy {np.__version__}", flush=True)
    versions = dict(kvpress_commit=kp.commit, transformers=transformers.__version__,
                    torch=torch.__version__, numpy=np.__version__)
    manifest = dict(versions=versions, cases=[], cross=[], failures=[])
    os.makedirs(args.out, exist_ok=True)

    for name, n in MODELS.items():
        if args.only and name not in args.only:
            continue
        folder = os.path.join(args.models, name)
        ids_all = np.load(os.path.join(folder, "ids.npy")).astype(np.int32)
        assert ids_all.shape[0] >= n
        ids_np = ids_all[:n].copy()
        outdir = os.path.join(args.out, name)
        os.makedirs(outdir, exist_ok=True)
        np.save(os.path.join(outdir, "ids.npy"), ids_np)
        ids = torch.from_numpy(ids_np.astype(np.int64)).unsqueeze(0)

        def load(impl, device="cpu"):
            m = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32, attn_implementation=impl)
            return m.to(device).eval()

        models = {impl: load(impl) for impl in ("sdpa", "eager")}
        full = {impl: full_prefill_keys(m, ids) for impl, m in models.items()}
        snap_scores = None
        for method, (cls, impl) in METHODS.items():
            for ratio in RATIOS:
                tag = f"{name} {method} r={ratio}"
                t0 = time.time()
                try:
                    res = run_case(models[impl], ids, kp, method, ratio, full[impl])
                except Exception:
                    traceback.print_exc()
                    manifest["failures"].append(dict(model=name, method=method, ratio=ratio,
                                                     error=traceback.format_exc(limit=3)))
                    print(f"FAIL {tag}", flush=True)
                    continue
                sc, kept = res["scores"], res["kept"]
                scores_file = None
                if method in OWN_SCORES:
                    scores_file = f"{method}_scores.npy"
                    path = os.path.join(outdir, scores_file)
                    if ratio == RATIOS[0]:
                        np.save(path, sc)
                    else:
                        assert np.array_equal(np.load(path), sc), "scores changed with the ratio"
                    if method == "snapkv":
                        snap_scores = sc
                elif method in ("pyramidkv", "adakv"):
                    assert snap_scores is not None and np.array_equal(sc, snap_scores), \
                        f"{method} scores differ from snapkv's"
                    scores_file = "snapkv_scores.npy"
                    res["checks"].append("scores bit-identical to snapkv's")
                L, H = sc.shape[0], sc.shape[1]
                layers = []
                for l in range(L):
                    heads = []
                    for h in range(H):
                        lo, hi = cut_scores(sc[l, h], kept[l][h])
                        heads.append(dict(head=h, budget=len(kept[l][h]), kept=kept[l][h],
                                          min_kept_score=lo, max_dropped_score=hi))
                    layers.append(dict(layer=l, heads=heads))
                margin = relative_margin(method, sc, kept) if method != "streamingllm" else None
                doc = dict(
                    method=method, preset="kvpress", granularity="kv-head", budget=dict(ratio=ratio),
                    prompt_tokens=n, n_layer=L, n_heads=H,
                    kvsieve_args=f"--kv-preset kvpress --kv {method} --kv-ratio {ratio}",
                    reference=dict(library="NVIDIA/kvpress", press=res["press"], **versions,
                                   attn_implementation=impl, dtype="float32", device="cpu",
                                   model=f"tests/fixtures/hf/{name}", ids="ids.npy",
                                   scores=scores_file, min_relative_cut_margin=margin,
                                   checks=res["checks"]),
                    layers=layers)
                fname = f"{method}_r{ratio}.json"
                with open(os.path.join(outdir, fname), "w") as f:
                    json.dump(doc, f, separators=(",", ":"))
                    f.write("\n")
                manifest["cases"].append(dict(model=name, method=method, ratio=ratio, file=f"{name}/{fname}",
                                              budgets=[[len(k) for k in kl] for kl in kept],
                                              min_relative_cut_margin=margin))
                print(f"ok {tag}: budgets {[[len(k) for k in kl] for kl in kept]} "
                      f"margin {margin} ({time.time() - t0:.2f}s)", flush=True)

                # Cross-checks (reported only).
                alts = []
                if args.cross_eager and method in ("snapkv", "pyramidkv", "tova"):
                    alts.append(("eager", models["eager"], full["eager"]))
                if args.cross_device:
                    md = load(impl, args.cross_device)
                    alts.append((args.cross_device, md, full_prefill_keys(md, ids.to(args.cross_device))))
                for alt_name, md, fk in alts:
                    try:
                        r2 = run_case(md, ids.to(md.device), kp, method, ratio, fk)
                        diff = [(l, h, sorted(set(kept[l][h]) - set(r2["kept"][l][h])),
                                 sorted(set(r2["kept"][l][h]) - set(kept[l][h])))
                                for l in range(L) for h in range(H) if kept[l][h] != r2["kept"][l][h]]
                        manifest["cross"].append(dict(model=name, method=method, ratio=ratio,
                                                      alt=alt_name, differing_heads=diff))
                        print(f"   cross {alt_name}: {'same keep sets' if not diff else diff}", flush=True)
                    except Exception:
                        traceback.print_exc()
                        manifest["cross"].append(dict(model=name, method=method, ratio=ratio, alt=alt_name,
                                                      error=traceback.format_exc(limit=3)))

    manifest["shims"] = sorted(SHIMS)
    with open(os.path.join(args.out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")
    print("shims:", sorted(SHIMS) or "none")
    print(f"{len(manifest['cases'])} cases written, {len(manifest['failures'])} failures", flush=True)
    return 1 if manifest["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
