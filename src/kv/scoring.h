// Scoring pieces, each usable alone: attention of probe queries over one
// head's cached keys (f32, only the probe rows exist), pooling along the
// sequence, aggregation over a query group. Policies chain them.
#pragma once
#include <cstdint>
#include <vector>

#include "kv/kv_cache.h"
#include "kv/probes.h"

namespace kvsieve {

enum class Reduce { kSum, kMean, kMax };
enum class PoolKind { kNone, kMax, kAvg };

// Attention probabilities of one query over the rows of a head:
//   out[j] = softmax_j(q · k_j / sqrt(head_dim)) over rows j with pos[j] <= qpos,
// 0 for later rows. q [head_dim]; out [kv.n]. In f32, max-subtracted.
void query_attention(const float* q, int32_t qpos, const HeadView& kv, int64_t head_dim,
                     float* out);

// Per query head h of a layer, the probes' attention over the rows of the
// stored head h reads, reduced over probes (sum, mean or max):
//   out[h] [rows of that head]. `group` = query heads per stored head.
// Rows a probe cannot see (later positions) count 0. A mean divides by the
// number of probes.
void probe_attention(const ProbeBlock& probes, const KvCache& cache, int64_t layer,
                     int64_t n_head, int64_t head_dim, Reduce over_probes,
                     std::vector<std::vector<float>>& out);

// 1-D pooling with stride 1 and padding kernel/2, as torch's max_pool1d
// (padding never wins) and avg_pool1d with count_include_pad (zeros padded,
// divided by kernel). kernel must be odd; 1 or kNone copies. out [n], no alias.
void pool1d(const float* in, int64_t n, int64_t kernel, PoolKind kind, float* out);

// Reduces consecutive groups of `group` rows of per-head scores into one:
// in [n_in][n] -> out [n_in/group][n] by mean or max over each group. All
// heads of a group must have the same length.
void reduce_groups(const std::vector<std::vector<float>>& in, int64_t group, Reduce how,
                   std::vector<std::vector<float>>& out);

}  // namespace kvsieve
