// `kvsieve train-judgeq`: learns Judge Q soft tokens for a frozen model.
// Each step takes one training prompt, runs the m soft tokens after it
// (SoftPass, the prompt's K/V held fixed and cached across steps), compares
// their attention over the prompt with the target (train/targets.h), and
// updates only the soft embeddings with AdamW (warmup, cosine decay, global
// gradient-norm clipping). Deterministic for a seed and a thread count;
// checkpoints (soft tokens + optimizer state) allow resuming.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/thread_pool.h"
#include "model/model.h"
#include "train/loss.h"

namespace kvsieve {

struct TrainConfig {
  std::string data;          // jsonl: {"context", "question"} or {"text"} per line
  std::string out;           // soft-token GGUF; OUT.state holds the optimizer state
  int64_t soft_tokens = 32;
  int64_t steps = 200;
  double lr = 1e-2;
  double weight_decay = 0.0;
  int64_t warmup = 10;
  double clip = 1.0;            // max global gradient norm (0: off)
  int64_t max_response = 64;    // response tokens whose attention is the target
  int64_t max_prompt = 0;       // prompt tokens kept (0: all); longer prompts are cut at the front
  JudgeLoss loss = JudgeLoss::kMse;
  std::vector<int64_t> layers;  // layers in the loss (empty: all)
  std::string init_text;        // initial embeddings: this text's tokens (repeated), or
  bool init_random = false;     // random rows with the embedding table's scale
  uint64_t seed = 1;
  bool query_agnostic = false;  // soft tokens after the context only
  int64_t checkpoint_every = 50;
  // Prompt K/V caches kept between steps, least recently used dropped: at most
  // this many, or (0) as many as fit in cache_mib. A step whose prompt is not
  // held pays a prefill of it, which costs more than the step itself.
  int64_t cache_prompts = 0;
  int64_t cache_mib = 4096;
  std::string target_dir;       // targets cached on disk ("" : OUT.targets/)
  bool resume = false;
  int64_t stop_after = 0;       // stop (and checkpoint) at this step, to resume later; 0: run to the end
  bool progress = true;
};

struct TrainResult {
  std::vector<double> losses;  // per step run
  int64_t first_step = 0;      // where this run started (after a resume)
  double seconds = 0, target_seconds = 0;
  // Of the training time: prefilling prompts whose K/V was not held (the
  // first step on each prompt, and every miss of the prompt cache).
  double prefill_seconds = 0;
  int64_t prefills = 0;
};

TrainResult train_judgeq(const Model& m, ThreadPool& pool, const TrainConfig& cfg);

}  // namespace kvsieve
