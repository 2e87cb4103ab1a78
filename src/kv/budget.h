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

#include "core/adakv_split.h"  // adakv_split, Ada-KV's allocation
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

}  // namespace kvsieve
