#!/usr/bin/env python3
"""Train kvsieve's small long-context Llama model (issue 7) on one GPU; README.md beside this.

    python3 train.py --work /tmp/kvs_train --steps 11000 --minutes 28 --out $OUT  # train / resume
    python3 train.py --smoke --out $OUT                                          # checks, speed

The learning rate warms up, then follows a cosine over the steps or over this process's time
before its deadline (--minutes), whichever runs out first; --steps also sets the length
curriculum of data.py (256 tokens first, the final mix from a quarter of the steps).

Resumes from WORK/ckpt.pt when it exists (model, optimizer, step; the data stream continues at
the same batch). Logs loss per sample kind, and greedy RULER accuracy on held-out seeds
(900000+, Paul Graham haystack, exact sizing as evaluation does) every --eval-minutes. At the end
it saves a Hugging Face folder (config.json, model.safetensors in float16, tokenizer.model) to
WORK/hf and, with --out, packs it as hf.tgz.part-* files there (each under the device tool's
16 MiB limit; `cat hf.tgz.part-* | tar xz` restores it).
"""
import argparse
import io
import json
import math
import os
import shutil
import sys
import tarfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import data  # noqa: E402
import ruler  # noqa: E402

MODEL = dict(vocab_size=32000, hidden_size=256, intermediate_size=768, num_hidden_layers=12,
             num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096,
             rms_norm_eps=1e-5, tie_word_embeddings=True, bos_token_id=1, eos_token_id=2,
             pad_token_id=0, hidden_act="silu", initializer_range=0.02)

EVAL_GROUPS = [("niah_single_1", 2048), ("niah_single_2", 2048),
               ("niah_single_1", 4096), ("niah_single_2", 4096), ("niah_single_3", 4096),
               ("niah_multikey_1", 4096), ("niah_multikey_2", 4096), ("niah_multikey_3", 4096),
               ("niah_multivalue", 4096), ("niah_multiquery", 4096), ("vt", 4096)]
EVAL_SEED0 = 900_000  # < ruler.TRAIN_SEED_MIN: never trained on


def log(*a):
    msg = " ".join(str(x) for x in a)
    print(msg, flush=True)


def build_model():
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM
    cfg = LlamaConfig(**MODEL)
    cfg._attn_implementation = "sdpa"
    torch.manual_seed(0)
    return LlamaForCausalLM(cfg)


# ------------------------------------------------------------------------------- evaluation

def _eval_one(args):
    task, L, seed, cache = args
    global _EVAL_RES, _EVAL_TOK
    if "_EVAL_RES" not in globals():
        _EVAL_RES = ruler.Resources(essay_words=ruler.paulgraham_words_dir(os.path.join(cache, "paulgraham")))
        _EVAL_TOK = data.Tokenizer(os.path.join(cache, "tokenizer.model"))
    s = ruler.make_sample(_EVAL_RES, task, L, seed, _EVAL_TOK.count)
    s["ids"] = [data.BOS] + _EVAL_TOK.encode(s["text"])
    del s["text"]
    return s


def eval_set(cache, work, n_per_group):
    path = os.path.join(work, f"eval_{n_per_group}.json")
    if os.path.exists(path):
        with open(path) as f:
            return json.load(f)
    import multiprocessing as mp
    jobs = [(t, L, EVAL_SEED0 + i, cache) for t, L in EVAL_GROUPS for i in range(n_per_group)]
    with mp.get_context("fork").Pool(min(16, os.cpu_count() or 4)) as pool:
        samples = pool.map(_eval_one, jobs)
    with open(path, "w") as f:
        json.dump(samples, f)
    return samples


def evaluate(model, tok, samples, batch=16):
    import torch
    model.eval()
    groups = {}
    for s in samples:
        groups.setdefault((s["task"], s["length"]), []).append(s)
    res = {}
    examples = {}
    with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16):
        for (task, L), ss in groups.items():
            ttg = min(64, {"niah": 64, "vt": 30, "cwe": 64, "fwe": 50}.get(task.split("_")[0], 64))
            scores = []
            for i in range(0, len(ss), batch):
                part = ss[i:i + batch]
                T = max(len(s["ids"]) for s in part)
                ids = torch.zeros((len(part), T), dtype=torch.long)
                att = torch.zeros((len(part), T), dtype=torch.long)
                for j, s in enumerate(part):  # left padding
                    ids[j, T - len(s["ids"]):] = torch.tensor(s["ids"])
                    att[j, T - len(s["ids"]):] = 1
                out = model.generate(input_ids=ids.cuda(), attention_mask=att.cuda(),
                                     max_new_tokens=ttg, do_sample=False, eos_token_id=data.EOS,
                                     pad_token_id=data.PAD)
                for j, s in enumerate(part):
                    new = out[j, T:].tolist()
                    if data.EOS in new:
                        new = new[:new.index(data.EOS)]
                    pred = tok.decode(new)
                    scores.append(ruler.string_match_all(pred, s["refs"]))
                    if (task, L) not in examples:
                        examples[(task, L)] = (pred[:80], s["refs"])
            res[f"{task}@{L}"] = round(100 * sum(scores) / len(scores), 1)
    model.train()
    return res, {f"{k[0]}@{k[1]}": v for k, v in examples.items()}


# ------------------------------------------------------------------------------- export

def export(model, cache, dst, out=None, extra=None):
    import copy
    import torch
    if os.path.exists(dst):
        shutil.rmtree(dst)
    m = copy.deepcopy(model).to(torch.float16)
    m.save_pretrained(dst, safe_serialization=True)
    shutil.copy(os.path.join(cache, "tokenizer.model"), os.path.join(dst, "tokenizer.model"))
    if extra:
        with open(os.path.join(dst, "training.json"), "w") as f:
            json.dump(extra, f, indent=1)
    if out:
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w:gz") as tf:
            tf.add(dst, arcname="hf")
        b = buf.getvalue()
        part = 15 * 1024 * 1024
        for i in range(0, len(b), part):
            with open(os.path.join(out, f"hf.tgz.part-{i // part:02d}"), "wb") as f:
                f.write(b[i:i + part])
    log("exported", dst, sorted(os.listdir(dst)))


# ------------------------------------------------------------------------------- training

def lr_at(step, a, tfrac=0.0):
    """Warm-up, then cosine over whichever runs out first: the steps or this process's time
    (tfrac: fraction of the training time left before the deadline that has passed)."""
    if step < a.warmup:
        return a.lr * (step + 1) / a.warmup
    p = min(1.0, max(tfrac, (step - a.warmup) / max(1, a.steps - a.warmup)))
    return a.lr * (a.min_lr_frac + (1 - a.min_lr_frac) * 0.5 * (1 + math.cos(math.pi * p)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cache", default=os.path.join(HERE, ".cache"))
    ap.add_argument("--work", default="/tmp/kvs_train")
    ap.add_argument("--out", default=None)
    ap.add_argument("--steps", type=int, default=11000,
                    help="total steps: sets the length curriculum; the LR follows steps or time")
    ap.add_argument("--minutes", type=float, default=8.5, help="wall-clock limit of this process")
    ap.add_argument("--tokens-per-batch", type=int, default=131072)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--min-lr-frac", type=float, default=0.1)
    ap.add_argument("--warmup", type=int, default=300)
    ap.add_argument("--wd", type=float, default=0.1)
    ap.add_argument("--workers", type=int, default=12)
    ap.add_argument("--compile", type=int, default=1)
    ap.add_argument("--eval-minutes", type=float, default=5.0)
    ap.add_argument("--eval-n", type=int, default=16)
    ap.add_argument("--ckpt-minutes", type=float, default=3.0)
    ap.add_argument("--log-every", type=int, default=50)
    ap.add_argument("--layers", type=int, default=MODEL["num_hidden_layers"],
                    help="decoder layers (hidden 256, 4 query heads of 64 each way)")
    ap.add_argument("--kv-heads", type=int, default=MODEL["num_key_value_heads"],
                    help="KV heads (1: GQA 4:1; 2: 2:1; 4: no sharing)")
    ap.add_argument("--mixture", default="fourth", choices=sorted(data.MIXTURES),
                    help="named data mixture of data.py (fourth: the default, the shipped model's; second: the second run's)")
    ap.add_argument("--smoke", action="store_true")
    a = ap.parse_args()
    if a.layers < 1 or a.kv_heads not in (1, 2, 4):
        ap.error("--layers must be >= 1 and --kv-heads one of 1, 2, 4")
    MODEL.update(num_hidden_layers=a.layers, num_key_value_heads=a.kv_heads)
    t_start = time.time()

    import torch
    import torch.nn.functional as F
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    os.makedirs(a.work, exist_ok=True)
    dev = "cuda"

    tok = data.Tokenizer(os.path.join(a.cache, "tokenizer.model"))
    log(f"torch {torch.__version__}, tokenizer via {tok.kind}, gpu {torch.cuda.get_device_name()}")
    mix = data.Mixture(a.cache, tokenizer=tok, total_steps=a.steps, mixture=a.mixture)
    for kind in ("kv", "vtd", "copy", "niah_single_2"):
        s = mix.sample(kind, 1024, 123)
        if s:
            f = s[1][0][0]
            log(f"sample {kind}: {len(s[0])} tokens, {sum(b - c for c, b in s[1])} labelled;",
                repr(tok.decode(s[0][max(0, f - 30):f])), [tok.decode(s[0][c:b]) for c, b in s[1][:3]])
    del mix
    model = build_model().to(dev)
    n_params = sum(p.numel() for p in model.parameters())
    log(f"model params {n_params / 1e6:.2f}M (f16 {2 * n_params / 2**20:.1f} MiB)", MODEL)

    # no weight decay on the (tied) embedding, norms
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2 and "embed_tokens" not in n]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2 or "embed_tokens" in n]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": a.wd},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=a.lr, betas=(0.9, 0.95), eps=1e-8, fused=True)
    step = 0
    ckpt = os.path.join(a.work, "ckpt.pt")
    hist = {"loss": [], "eval": []}
    if os.path.exists(ckpt) and not a.smoke:
        st = torch.load(ckpt, map_location=dev)
        model.load_state_dict(st["model"])
        opt.load_state_dict(st["opt"])
        step, hist = st["step"], st["hist"]
        log(f"resumed from {ckpt} at step {step}")

    base = torch.compile(model.model) if a.compile else model.model

    def loss_fn(ids, tgt, w):
        h = base(input_ids=ids, use_cache=False).last_hidden_state
        m = tgt >= 0
        logits = model.lm_head(h[m]).float()
        ce = F.cross_entropy(logits, tgt[m], reduction="none")
        per_tok = torch.zeros_like(w)
        per_tok[m] = ce * w[m]
        per_sample = per_tok.sum(1)
        return per_sample.mean(), per_sample.detach()

    def save_ckpt():
        tmp = ckpt + ".tmp"
        torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "step": step,
                    "hist": hist, "args": vars(a)}, tmp)
        os.replace(tmp, ckpt)

    loader = torch.utils.data.DataLoader(
        data.torch_dataset(a.cache, step, a.tokens_per_batch, a.workers, a.steps, a.mixture), batch_size=None,
        num_workers=a.workers, prefetch_factor=4, pin_memory=True, persistent_workers=True)
    it = iter(loader)

    if a.smoke:
        t0 = time.time()
        batches = [next(it) for _ in range(24)]
        log(f"data: 24 batches in {time.time() - t0:.1f}s (incl. worker start)")
        t0 = time.time()
        batches += [next(it) for _ in range(24)]
        log(f"data: next 24 batches in {time.time() - t0:.1f}s")
        for L_want in (4096, 1024):
            bs = [b for b in batches if b[0].shape[1] == L_want][:1]
            if not bs:
                continue
            ids, tgt, w, kinds = bs[0]
            ids, tgt, w = ids.to(dev), tgt.to(dev), w.to(dev)
            for name, fn in (("compiled" if a.compile else "eager", base),):
                for i in range(13):
                    if i == 3:
                        torch.cuda.synchronize()
                        t0 = time.time()
                    with torch.autocast("cuda", dtype=torch.bfloat16):
                        loss, _ = loss_fn(ids, tgt, w)
                    loss.backward()
                    opt.zero_grad(set_to_none=True)
                torch.cuda.synchronize()
                dt = (time.time() - t0) / 10
                log(f"L={L_want} B={ids.shape[0]} {name}: {dt * 1e3:.1f} ms/step, "
                    f"{ids.numel() / dt / 1e3:.0f}K tok/s, loss {loss.item():.3f}, "
                    f"max mem {torch.cuda.max_memory_allocated() / 2**30:.1f} GiB")
        t0 = time.time()
        ev = eval_set(a.cache, a.work, 2)
        log(f"eval set (2/group) built in {time.time() - t0:.1f}s; lengths",
            sorted({(s['task'], len(s['ids'])) for s in ev})[:6])
        t0 = time.time()
        r, ex = evaluate(model, tok, ev)
        log(f"eval in {time.time() - t0:.1f}s", r, list(ex.items())[:2])
        export(model, a.cache, os.path.join(a.work, "hf_smoke"), a.out, {"smoke": True})
        return

    t0 = time.time()
    ev = eval_set(a.cache, a.work, a.eval_n)
    log(f"eval set: {len(ev)} samples ({time.time() - t0:.1f}s)")
    model.train()
    last_ckpt = last_eval = time.time()
    acc_tok, acc_t = 0, time.time()
    kind_loss = {}
    deadline = t_start + a.minutes * 60 - 50  # keep time for the final eval and export
    loop_t0 = time.time()
    wait = 0.0
    while step < a.steps and time.time() < deadline:
        tw = time.time()
        ids, tgt, w, kinds = next(it)
        wait += time.time() - tw
        ids, tgt, w = ids.to(dev, non_blocking=True), tgt.to(dev, non_blocking=True), w.to(dev, non_blocking=True)
        lr = lr_at(step, a, (time.time() - loop_t0) / max(1.0, deadline - loop_t0))
        for g in opt.param_groups:
            g["lr"] = lr
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss, per_sample = loss_fn(ids, tgt, w)
        loss.backward()
        gn = torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        step += 1
        acc_tok += ids.numel()
        if step % 10 == 0:
            for k, l in zip(kinds, per_sample.tolist()):
                s = kind_loss.setdefault(k, [0.0, 0])
                s[0] += l
                s[1] += 1
        if step % a.log_every == 0:
            dt = time.time() - acc_t
            kl = {k: round(v[0] / v[1], 3) for k, v in sorted(kind_loss.items()) if v[1]}
            log(f"step {step} L={ids.shape[1]} loss {loss.item():.4f} gnorm {gn.item():.2f} "
                f"lr {lr:.2e} {acc_tok / dt / 1e3:.0f}K tok/s data-wait {wait:.1f}s elapsed {(time.time() - t_start) / 60:.1f}m", kl)
            hist["loss"].append({"step": step, "loss": loss.item(), "kinds": kl,
                                 "tok_s": acc_tok / dt})
            acc_tok, acc_t, wait = 0, time.time(), 0.0
            kind_loss = {}
        if time.time() - last_eval > a.eval_minutes * 60:
            r, ex = evaluate(model, tok, ev)
            hist["eval"].append({"step": step, "scores": r})
            log(f"EVAL step {step}", r, ex)
            last_eval = time.time()
        if time.time() - last_ckpt > a.ckpt_minutes * 60:
            save_ckpt()
            last_ckpt = time.time()
    save_ckpt()
    r, ex = evaluate(model, tok, ev)
    hist["eval"].append({"step": step, "scores": r})
    log(f"EVAL step {step} (final of this run)", r, ex)
    export(model, a.cache, os.path.join(a.work, "hf"), a.out,
           {"step": step, "model": MODEL, "args": vars(a), "eval": hist["eval"],
            "loss": hist["loss"][-20:]})
    if a.out:
        with open(os.path.join(a.out, "history.json"), "w") as f:
            json.dump(hist, f)
    log(f"done: step {step}, {(time.time() - t_start) / 60:.1f} min")


if __name__ == "__main__":
    main()
