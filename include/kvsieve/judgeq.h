// Judge Q's tools: soft tokens initialised from real tokens, trained so their
// attention over the prompt matches the model's own answers', and the
// keep-set overlap that measures how close any method comes to the ideal
// keep set. Soft tokens are a small GGUF file (`judgeq:soft=FILE` uses them).
// These run on the CPU.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace kvsieve {

class Engine;

// Soft tokens initialised with the embeddings of token ids (repeated or cut
// to `count` when count > 0), written to `out`. origin: how they were made,
// stored in the file. Returns their number.
int64_t judgeq_init(const Engine& engine, std::vector<int32_t> ids, int64_t count,
                    const std::string& origin, const std::string& out);

// What a soft-token file holds, or nullopt-like: ok false when `path` is not one.
struct SoftTokenInfo {
  bool ok = false;
  int64_t count = 0, n_embd = 0, n_layer = 0, n_vocab = 0;
  std::string arch, fingerprint, origin;
};
SoftTokenInfo read_soft_token_info(const std::string& path);

enum class JudgeLoss { kMse, kKl };
JudgeLoss judge_loss_from_name(const std::string& s);  // "mse", "kl"

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
  int threads = 0;              // CPU threads (0: the engine's)
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

// `kvsieve train-judgeq`: learns soft tokens for the frozen model. Each step
// takes one training prompt, runs the soft tokens after it (the prompt's K/V
// held fixed), compares their attention over the prompt with the target (the
// attention of the model's greedy answer), and updates only the soft
// embeddings with AdamW. Deterministic for a seed and a thread count;
// checkpoints allow resuming.
TrainResult train_judgeq(const Engine& engine, const TrainConfig& cfg);

struct OverlapRow {
  std::string method;
  int64_t budget;
  double overlap;        // mean share of the ideal keep set kept, over prompts
  double overlap_se;     // its standard error (0 with one prompt)
  double vs_first;       // mean of (this method - the first method), prompt by prompt
  double vs_first_se;    // its standard error
  double mass;           // mean share of the ideal set's attention mass kept
  double mass_se;
  double mass_vs_first;  // paired with the first method, as vs_first
  double mass_vs_first_se;
  int64_t prompts;
};

struct OverlapConfig {
  std::vector<std::string> methods;  // eviction specs, e.g. "snapkv", "judgeq:soft=F"
  std::vector<int64_t> budgets;      // tokens per KV head
  int64_t max_response = 64;         // answer tokens whose attention defines the ideal
  // Cut after the context, before the question is read (as kvsieve eval
  // --query-agnostic does); the ideal is then over the context positions only.
  bool query_agnostic = false;
  int threads = 0;                   // CPU threads (0: the engine's)
  bool progress = false;
};

// How much of the ideal keep set (per layer and KV head, the top-B prompt
// positions by the attention the model's own answer pays to them) each
// method keeps, on the held-out prompts of `data` (JSON lines as for
// training), with paired differences from the first method.
std::vector<OverlapRow> keep_set_overlap(const Engine& engine, const std::string& data,
                                         const OverlapConfig& cfg);

}  // namespace kvsieve
