// Budgets: how many rows each head keeps.
//
// Two conventions, as the two reference libraries have them:
//   tokens (--kv-budget N): every head keeps N rows, the protected window
//     included (KVCache-Factory, LAQ). A prompt of n <= N rows is not cut.
//   ratio (--kv-ratio R): R is the fraction removed; a head of n rows keeps
//     int(n * (1 - R)) (kvpress; computed in double and truncated, as Python does).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "kv/policy.h"
#include "kvsieve/policy.h"

namespace kvsieve {

// Throws Error unless exactly one of tokens > 0 / ratio in (0, 1) is set.
void validate(const Budget& b);

// Rows a head of n rows keeps under uniform allocation.
int64_t uniform_keep(const Budget& b, int64_t n);

// Rows kept per layer [n_layer] (window included) for heads of n rows.
// Uniform: uniform_keep for every layer. Pyramid: PyramidKV's schedule, from
// the most rows in layer 0 down to the fewest in the last, the mean near the
// uniform budget. With tokens it follows KVCache-Factory (integer steps; no
// pyramid while n < 2 (N - window)); with a ratio, kvpress (float steps,
// rounded half to even; the uniform budget when the schedule is out of range).
std::vector<int64_t> layer_keep(const Budget& b, Allocation alloc, int64_t n, int64_t n_layer,
                                int64_t window, double beta);

// Ada-KV: splits one layer's budget (keep rows per head, window included, for
// every head) across its H heads by score. scores [H, ld] (host) are the
// pooled scores, rows[h] of them in head h; protected rows are kept by every
// head. Returns rows kept per head.
//   variant "kvpress": each head first keeps its protected rows and its best
//     int(keep * floor) rows; the rest of the layer's keep * heads rows go to
//     the best remaining scores of any head (ties: lower head, then earlier row).
//   variant "kvcache-factory": with B = keep - window, each head's sorted
//     scores are scaled by sum(top B) / sum(all); the heads' counts among the
//     best B * heads of the layer set cap = round(count (1 - floor) + int(B floor)).
std::vector<int64_t> adakv_split(const float* scores, int64_t ld, const int64_t* rows, int64_t H,
                                 int64_t keep, Protect p, double floor, const std::string& variant);

}  // namespace kvsieve
