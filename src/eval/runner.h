// `kvsieve eval`: a grid of tasks x lengths x samples, each prompt prefilled
// once with the full cache and then cut by every (method, budget) from a copy
// of that prefill (the prefill never depends on the method). One JSON line per
// (sample, method, budget) is appended to the results file as soon as it is
// known, so a stopped run resumes where it was.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/thread_pool.h"
#include "eval/sample.h"
#include "eval/tasks.h"
#include "kv/evictor.h"
#include "model/model.h"

namespace kvsieve::eval {

struct EvalConfig {
  std::vector<std::string> tasks;
  std::vector<int64_t> lengths;
  int64_t samples = 10;
  uint64_t seed = 0;
  std::vector<std::string> methods;  // --kv specs; the full cache is always run too
  std::vector<int64_t> budgets;      // tokens per head; or
  std::vector<double> ratios;        // fractions removed
  std::string preset;
  Granularity granularity = Granularity::kKvHead;
  bool query_agnostic = false;       // question read after the cut
  TaskOptions task_options;
  std::string out_path;              // results JSONL (appended; existing rows are skipped)
  int64_t n_batch = 256;
  bool progress = true;              // progress bar on stderr
};

struct EvalTotals {
  int64_t prompts_run = 0, prompts_skipped = 0, rows_written = 0, errors = 0;
  double prefill_seconds = 0;   // the shared prefills, without the methods' observers
  double observe_seconds = 0;   // the methods' observers during those prefills
  double full_seconds = 0;      // full-cache question + decode after them
  double method_seconds = 0;    // every cut, its question and decode
  double generate_seconds = 0;  // the whole run, prompt making included
};

// Checks every (method, budget) for the model before anything runs; throws
// Error naming the bad one.
void validate(const EvalConfig& cfg, const Model& m);

EvalTotals run_eval(const Model& m, ThreadPool& pool, const EvalConfig& cfg);

}  // namespace kvsieve::eval
