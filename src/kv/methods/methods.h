// The scorers of the built-in methods. Each file of this folder holds one;
// policy.cpp registers them with their parameters.
#pragma once
#include <memory>

#include "kv/scorer.h"

namespace kvsieve {

// SnapKV: mean attention of the last `window` prompt queries (each causal).
std::unique_ptr<Scorer> make_window_attention_scorer(int64_t window);
// LAQ / Judge Q: attention of external probes (ScoreInputs::probes) plus
// the last `window` prompt queries, summed.
std::unique_ptr<Scorer> make_probe_attention_scorer(int64_t window);
// H2O: attention summed over all queries so far; normalize divides each row
// by the number of queries that saw it (kvpress's ObservedAttentionPress).
std::unique_ptr<Scorer> make_cumulative_attention_scorer(bool normalize);
// TOVA: attention of the last query, averaged over all query heads.
std::unique_ptr<Scorer> make_tova_scorer();
// Key norm: -||k||2 (low-norm keys draw attention).
std::unique_ptr<Scorer> make_knorm_scorer();
// Uniform random scores, a pure function of (seed, layer, head, position).
std::unique_ptr<Scorer> make_random_scorer(uint64_t seed);
// StreamingLLM: later positions score higher (sinks are protected by the policy).
std::unique_ptr<Scorer> make_recency_scorer();

}  // namespace kvsieve
