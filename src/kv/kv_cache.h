// The KV cache, held per layer and per KV head so that heads can later keep
// different token sets (per-head eviction).
//
// Memory layout, for each (layer l, kv head g) a HeadCache:
//   k   [n_rows, head_dim] f32   keys after RoPE, row-contiguous
//   v   [n_rows, head_dim] f32   values
//   pos [n_rows]           i32   original position of each row
// Rows are kept sorted by position, strictly increasing. Attention relies on
// it: the rows a query at position p may see are a prefix (pos <= p).
// Positions are never rewritten: a kept row keeps its RoPE rotation and its
// position, and new tokens continue at the session's next position.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace kvsieve {

// What the cache needs to know of the model (the kv layer never sees model code).
struct KvGeometry {
  int64_t n_layer = 0;
  int64_t n_head_kv = 0;
  int64_t head_dim = 0;
};

struct HeadView {
  const float* k;      // [n, head_dim]
  const float* v;      // [n, head_dim]
  const int32_t* pos;  // [n]
  int64_t n;
};

class KvCache {
 public:
  explicit KvCache(const KvGeometry& g);

  const KvGeometry& geometry() const { return geo_; }

  // Reserves room for `rows` rows in every head (avoids regrowth during prefill).
  void reserve(int64_t rows);

  // Appends n new tokens to every kv head of `layer`.
  //   k, v: [n, n_head_kv * head_dim] (the projection outputs, keys already rotated)
  //   pos:  [n], each greater than every position already held
  void append(int64_t layer, const float* k, const float* v, const int32_t* pos, int64_t n);

  HeadView head(int64_t layer, int64_t kv_head) const;
  int64_t rows(int64_t layer, int64_t kv_head) const;
  // Largest row count over all heads.
  int64_t max_rows() const;

  // Bytes held by the rows present (K, V and positions), and bytes allocated.
  size_t bytes() const;
  size_t capacity_bytes() const;

  void clear();

 private:
  struct HeadCache {
    std::vector<float> k, v;
    std::vector<int32_t> pos;
  };
  HeadCache& at(int64_t layer, int64_t g) { return heads_[size_t(layer * geo_.n_head_kv + g)]; }
  const HeadCache& at(int64_t layer, int64_t g) const {
    return heads_[size_t(layer * geo_.n_head_kv + g)];
  }

  KvGeometry geo_;
  std::vector<HeadCache> heads_;  // [n_layer * n_head_kv]
};

}  // namespace kvsieve
