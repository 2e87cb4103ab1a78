// Probe sources: the queries whose attention judges which cached keys matter
// (see "query probes" in DESIGN.md). A source watches the forward pass through
// its query observer and hands out, per layer, a ProbeBlock of post-RoPE
// queries with their positions. LAQ (lookahead decode queries) and Judge Q
// (soft-token queries) fill the same ProbeBlocks from their own runs.
#pragma once
#include <cstdint>
#include <functional>
#include <vector>

#include "core/thread_pool.h"
#include "kv/kv_cache.h"

namespace kvsieve {

// Observes per-layer post-RoPE queries (probe sources for eviction). Called
// by the forward pass after the batch's keys and values were appended to `cache`, before the
// batch attends, so an observer may score the queries against the cache.
//   q: [n, n_head * head_dim] of the batch's tokens at positions pos0 .. pos0+n-1
struct QueryEvent {
  int64_t layer;
  const float* q;
  int64_t n;
  int32_t pos0;
  const KvCache& cache;
};
using QueryObserver = std::function<void(const QueryEvent&)>;

// Queries of one layer:
//   q   [n, n_head * head_dim]     post-RoPE, row t is the token at pos[t]
//   pos [n]
//   k   [n, n_head_kv * head_dim]  optional: the probes' own keys, when the
//       probe tokens are not in the cache (Judge Q's soft tokens). Each probe
//       then attends over the cache rows and, causally, over these keys, as
//       it did in the forward pass; only the cache rows get scores.
struct ProbeBlock {
  std::vector<float> q;
  std::vector<int32_t> pos;
  std::vector<float> k;
  int64_t n() const { return int64_t(pos.size()); }
};

// Per layer, the queries of the last `window` tokens seen (prompt and, later,
// decoded tokens): SnapKV's observation window.
class WindowProbes {
 public:
  WindowProbes(int64_t n_layer, int64_t n_head, int64_t head_dim, int64_t window);
  // Feed from a QueryObserver: q [n, n_head*head_dim] at positions pos0...
  void observe(int64_t layer, const float* q, int64_t n, int32_t pos0);
  const ProbeBlock& layer(int64_t l) const { return blocks_[size_t(l)]; }
  int64_t window() const { return window_; }
  void clear();

 private:
  int64_t width_, window_;
  std::vector<ProbeBlock> blocks_;  // [n_layer]
};

// H2O's score: for every (layer, query head) and every cached row, the sum of
// the attention probabilities all queries seen so far gave it (each query
// attends causally, over the rows its head held when it ran), plus how many
// queries saw the row. Accumulated online, chunk by chunk, so the n x n
// attention matrix never exists. Rows follow the cache: call retain() with
// the same keep sets after the cache was cut.
class CumulativeAttention {
 public:
  CumulativeAttention(int64_t n_layer, int64_t n_head, int64_t head_dim);
  // After the batch's keys were appended: q [n, n_head*head_dim] at pos0...
  // Heads run in parallel on `pool` when given.
  void observe(int64_t layer, const float* q, int64_t n, int32_t pos0, const KvCache& cache,
               ThreadPool* pool = nullptr);
  // [rows of the head's stored head] for query head h of layer l.
  const std::vector<float>& sum(int64_t l, int64_t h) const { return sum_[idx(l, h)]; }
  const std::vector<float>& count(int64_t l, int64_t h) const { return count_[idx(l, h)]; }
  // Drops the rows the cache dropped. `before` are the positions each stored
  // head held before the cut (KvCache::positions()), `keep` the kept ones.
  void retain(const KeepSets& before, const KeepSets& keep);
  void clear();

 private:
  size_t idx(int64_t l, int64_t h) const { return size_t(l * n_head_ + h); }
  int64_t n_layer_, n_head_, head_dim_;
  std::vector<std::vector<float>> sum_;    // [n_layer * n_head][rows]
  std::vector<std::vector<float>> count_;  // [n_layer * n_head][rows]
};

}  // namespace kvsieve
