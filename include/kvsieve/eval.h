// The evaluation harness: long-context tasks (Needle in a Haystack, passkey,
// RULER's synthetic tasks, LongBench, fidelity to the full cache) scored for
// the full cache and for eviction methods at several budgets, one shared
// prefill per prompt, results as resumable JSON lines; and the report that
// turns them into tables and SVG charts.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "kvsieve/policy.h"

namespace kvsieve {

class Engine;

struct TaskOptions {
  // Filler for essay haystacks: a .txt file or a folder of them (read in
  // name order); empty: built-in filler sentences.
  std::string haystack;
  std::vector<double> depths;  // NIAH depths in percent; empty: spread over the samples
  uint64_t run_seed = 0;       // RULER tasks: sample i uses seed run_seed + i (data/ruler/README.md)
  // LongBench: the folder of the official data files (<dataset>.jsonl);
  // samples are its lines from run_seed on, prompts cut in the middle to the length.
  std::string longbench_dir;
  // A chat template around each prompt (not fidelity's text): "" none,
  // "auto" (the model's), or llama2, llama3, mistral, chatml. The context and
  // question form one user turn; a task's answer prefix ("The pass key is")
  // follows the assistant's header, as RULER does. Prompts keep their length
  // in tokens, template included.
  std::string chat;
  std::string system;  // the system message; "": the template's default, if any
};

struct EvalConfig {
  std::vector<std::string> tasks;
  std::vector<int64_t> lengths;
  int64_t samples = 10;
  uint64_t seed = 0;
  std::vector<std::string> methods;  // eviction specs; the full cache is always run too
  std::vector<int64_t> budgets;      // tokens per head; or
  std::vector<double> ratios;        // fractions removed
  std::string preset;
  Granularity granularity = Granularity::kKvHead;
  bool query_agnostic = false;       // question read after the cut
  TaskOptions task_options;
  std::string out_path;              // results JSONL (appended; existing rows are skipped)
  int64_t n_batch = 256;
  std::string kv_type = "f32";       // element type of the KV cache: f32, f16, bf16
  int threads = 0;                   // CPU threads (0: the engine's)
  bool progress = true;              // progress bar on stderr
};

struct EvalTotals {
  int64_t prompts_run = 0, prompts_skipped = 0, rows_written = 0, errors = 0;
  // The shared prefills. The forward pass records what the methods need as
  // it runs (the last queries, H2O's column sums), so their share is inside.
  double prefill_seconds = 0;
  double full_seconds = 0;      // full-cache question + decode after them
  double method_seconds = 0;    // every cut (probes, scores, the new store), its question and decode
  double generate_seconds = 0;  // the whole run, prompt making included
  size_t peak_device_bytes = 0; // most memory the backend held at once (KV stores, scratch)
  size_t max_full_kv_bytes = 0; // the largest full cache of a prompt
  size_t max_cut_kv_bytes = 0;  // the largest cut cache of a (prompt, method, budget)
};

// Runs the grid; throws Error naming a bad task, method or budget before
// anything runs.
EvalTotals run_eval(const Engine& engine, const EvalConfig& cfg);

// The prompts the grid would run, without running them.
struct EvalPrompt {
  std::string task, id;
  uint64_t seed = 0;
  int64_t length = 0;
  double depth = -1;      // needle depth in percent, or -1
  int64_t tokens = 0;     // context + question, with BOS
  std::string context, question, metric;
  std::vector<std::string> answers;
  int64_t max_new_tokens = 0;  // the answer's length limit
};
std::vector<EvalPrompt> eval_prompts(const Engine& engine, const EvalConfig& cfg);

// (name, summary) of every task.
std::vector<std::pair<std::string, std::string>> eval_tasks();

// A results file as a markdown table (method x budget, per task and
// overall, KV memory kept) and, with svg_dir, SVG charts written there.
struct EvalReport {
  std::string markdown;
  std::vector<std::string> svg_files;
  int64_t rows = 0, errors = 0;
};
EvalReport make_eval_report(const std::string& results_path, const std::string& svg_dir = "");

}  // namespace kvsieve
