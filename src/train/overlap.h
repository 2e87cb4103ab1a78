// How close a method's keep sets come to the ideal ones: for held-out
// prompts, the ideal keep set of each (layer, KV head) is the top-B prompt
// positions by the attention the model's own response pays to them (the
// Judge Q target, averaged over the head's query group). A method's score at
// budget B is |kept ∩ ideal| / B, averaged over layers, heads and prompts.
// Beside it, the share of the ideal set's attention mass the kept set holds
// (sum of the answer's attention over kept positions / over the ideal ones):
// most layers spread the answer's attention thinly, and there the set overlap
// counts positions that carry almost nothing, while the mass weighs each by
// what the answer actually read from it.
// Every method sees the same prompts, so each is also compared with the first
// method prompt by prompt (a paired difference and its standard error): the
// differences between methods are often a few points, well inside the spread
// of single prompts, and only the pairing says whether they are real.
// The response is always generated from the whole prompt; query-agnostic
// runs only cut earlier, as the eval does.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/thread_pool.h"
#include "model/model.h"

namespace kvsieve {

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
  bool progress = false;
};

// data: JSON lines as for training ("context" + "question", or "text").
std::vector<OverlapRow> keep_set_overlap(const Model& m, ThreadPool& pool, const std::string& data,
                                         const OverlapConfig& cfg);

}  // namespace kvsieve
