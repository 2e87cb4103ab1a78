// `kvsieve eval`: a grid of tasks x lengths x samples, each prompt prefilled
// once with the full cache and then cut by every (method, budget): each cut
// is planned on that prefill and written straight into a small store of its
// own (the full cache is never copied; the prefill never depends on the
// method), and a method's scores serve all its budgets unless its probes
// depend on the budget (LAQ). One JSON line per (sample, method, budget) is
// appended to the results file as soon as it is known, so a stopped run
// resumes where it was; a line cut by a crash is removed first.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "eval/sample.h"
#include "eval/tasks.h"
#include "kv/evictor.h"
#include "kvsieve/eval.h"
#include "model/model.h"

namespace kvsieve::eval {

// Checks every (method, budget) for the model before anything runs; throws
// Error naming the bad one.
void validate(const EvalConfig& cfg, const Model& m);

EvalTotals run_eval(const Model& m, Backend& be, const EvalConfig& cfg);

}  // namespace kvsieve::eval
