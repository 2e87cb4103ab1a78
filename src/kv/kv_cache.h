// The KV cache, held per layer and per stored head so that heads can keep
// different token sets (per-head eviction).
//
// Memory layout, for each (layer l, stored head s) a HeadCache:
//   k   [n_rows, head_dim] f32   keys after RoPE, row-contiguous
//   v   [n_rows, head_dim] f32   values
//   pos [n_rows]           i32   original position of each row
// Rows are kept sorted by position, strictly increasing. Attention relies on
// it: the rows a query at position p may see are a prefix (pos <= p).
// Positions are never rewritten: a kept row keeps its RoPE rotation and its
// position, and new tokens continue at the session's next position.
//
// Stored heads: normally one per KV head (n_stored = n_head_kv). For
// query-head granularity (the LAQ / KVCache-Factory code repeats K/V per query
// head) each KV head is stored `repeat` times, n_stored = n_head_kv * repeat,
// and stored head s holds copies of KV head s / repeat; each copy can then be
// cut to its own token set. Query head h reads stored head h / (n_head / n_stored).
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
  int64_t repeat = 1;  // copies of each KV head (1, or n_head/n_head_kv for query-head granularity)
  int64_t n_stored() const { return n_head_kv * repeat; }
};

struct HeadView {
  const float* k;      // [n, head_dim]
  const float* v;      // [n, head_dim]
  const int32_t* pos;  // [n]
  int64_t n;
};

// Positions to keep, per (layer, stored head): keep[l * n_stored + s] is a
// strictly increasing list of positions that head holds now.
struct KeepSets {
  int64_t n_layer = 0;
  int64_t n_heads = 0;  // stored heads
  std::vector<std::vector<int32_t>> keep;  // [n_layer * n_heads]
  std::vector<int32_t>& at(int64_t l, int64_t h) { return keep[size_t(l * n_heads + h)]; }
  const std::vector<int32_t>& at(int64_t l, int64_t h) const {
    return keep[size_t(l * n_heads + h)];
  }
  int64_t total() const;
};

class KvCache {
 public:
  explicit KvCache(const KvGeometry& g);

  const KvGeometry& geometry() const { return geo_; }
  int64_t n_stored() const { return geo_.n_stored(); }

  // Reserves room for `rows` rows in every head (avoids regrowth during prefill).
  void reserve(int64_t rows);

  // Appends n new tokens to every stored head of `layer`.
  //   k, v: [n, n_head_kv * head_dim] (the projection outputs, keys already rotated)
  //   pos:  [n], each greater than every position already held
  void append(int64_t layer, const float* k, const float* v, const int32_t* pos, int64_t n);

  HeadView head(int64_t layer, int64_t stored_head) const;
  int64_t rows(int64_t layer, int64_t stored_head) const;
  // Largest row count over all heads.
  int64_t max_rows() const;

  // Keeps, in every head, exactly the rows whose positions are listed; frees
  // the memory of the others. Checked in full before anything changes: a
  // position the head does not hold, an unsorted list or a shape mismatch
  // throws Error and leaves the cache as it was.
  void retain(const KeepSets& keep);
  // Drops every row at position >= pos in every head (e.g. soft tokens that
  // were only run to read their queries).
  void erase_from(int32_t pos);
  // The positions every head holds now, as KeepSets.
  KeepSets positions() const;

  // Switches to query-head granularity: every KV head is copied `repeat`
  // times (requires repeat == 1 now). Each copy may then be cut on its own.
  void replicate(int64_t repeat);

  // Bytes of the K and V rows held (what a budget is about), bytes of the
  // position index, and bytes allocated in all.
  size_t kv_bytes() const;
  size_t index_bytes() const;
  size_t bytes() const { return kv_bytes() + index_bytes(); }
  size_t capacity_bytes() const;

  void clear();

 private:
  struct HeadCache {
    std::vector<float> k, v;
    std::vector<int32_t> pos;
  };
  HeadCache& at(int64_t layer, int64_t s) { return heads_[size_t(layer * geo_.n_stored() + s)]; }
  const HeadCache& at(int64_t layer, int64_t s) const {
    return heads_[size_t(layer * geo_.n_stored() + s)];
  }

  KvGeometry geo_;
  std::vector<HeadCache> heads_;  // [n_layer * n_stored]
};

}  // namespace kvsieve
