// Probes: the queries whose attention judges which cached keys matter (see
// "query probes" in DESIGN.md), and the Recorder that keeps what the methods
// need while the forward pass runs, in device memory, with no host callback:
//   - the last `window` queries of every layer, as a ring (SnapKV's
//     observation window, TOVA's last query, LAQ++'s prompt queries, and the
//     lookahead and soft-token queries of LAQ and Judge Q);
//   - H2O's column sums: per query head, the attention every cached row has
//     received from all queries so far, added inside the forward attention.
// LAQ's lookahead decode and Judge Q's soft tokens fill ProbeBlocks through
// recorders of their own.
#pragma once
#include <cstdint>
#include <vector>

#include "backend/backend.h"
#include "kv/keep_sets.h"

namespace kvsieve {

class KvStore;

// Queries of one layer, in device memory:
//   q   [n, n_head, head_dim]     post-RoPE, row t is the token at pos[t]
//   pos host [n]
//   k   [n, n_head_kv, head_dim]  optional: the probes' own keys, when the
//       probe tokens are not in the cache (Judge Q's soft tokens). Each probe
//       then attends over the cache rows and, causally, over these keys, as
//       it did in the forward pass; only the cache rows get scores.
struct ProbeBlock {
  DeviceArray<float> q;
  std::vector<int32_t> pos;
  DeviceArray<float> k;
  int64_t n() const { return int64_t(pos.size()); }
};

// What a forward pass records.
struct RecordSpec {
  int64_t window = 0;        // last queries kept per layer (0: none)
  bool column_sums = false;  // H2O's accumulated attention
  bool any() const { return window > 0 || column_sums; }
  // Both specs' needs.
  RecordSpec& operator|=(const RecordSpec& o) {
    window = window > o.window ? window : o.window;
    column_sums = column_sums || o.column_sums;
    return *this;
  }
};

// Per layer, in the backend's memory:
//   ring     [window, n_head, head_dim]  the last queries, oldest at start_
//   colsum   [n_head, ld]  H2O: Σ over queries of the probability each gave the
//   colcount [n_head, ld]  row (rows follow the store's head h / group), and how
//                          many queries saw it. ld follows the store's capacity;
//                          rows the store does not hold are 0.
class Recorder {
 public:
  Recorder(Backend& be, int64_t n_layer, int64_t n_head, int64_t head_dim, RecordSpec spec);

  const RecordSpec& spec() const { return spec_; }

  // ---- fed by the forward pass
  // q: device [n, n_head, head_dim], pos host [n] (increasing).
  void record_queries(int64_t layer, const float* q, const int32_t* pos, int64_t n);
  // Makes the column sums of `layer` as wide as the store's capacity there
  // (keeping what was summed). Call before the attention that adds to them.
  void fit(int64_t layer, const KvStore& store);
  float* colsum(int64_t l) { return colsum_[size_t(l)].data(); }
  float* colcount(int64_t l) { return colcount_[size_t(l)].data(); }
  int64_t ld(int64_t l) const { return ld_[size_t(l)]; }

  // ---- read by the methods
  // The last min(window, seen) queries of layer l, oldest first (a copy).
  ProbeBlock window(int64_t l) const;
  int64_t window_size(int64_t l) const { return int64_t(count_[size_t(l)]); }
  const float* colsum(int64_t l) const { return colsum_[size_t(l)].data(); }
  const float* colcount(int64_t l) const { return colcount_[size_t(l)].data(); }

  // The store was cut with sel (rows of its stored heads; sel.n_heads
  // divides n_head): the column sums keep the same rows, at ld = the store's
  // new capacity per layer.
  void retain_rows(const RowSelection& sel, const KvStore& store);
  // The store dropped every row at or after these counts (erase_from): their
  // sums restart at 0.
  void erase_rows(const KvStore& store);
  void clear();

 private:
  Backend& be_;
  int64_t n_layer_, n_head_, head_dim_;
  RecordSpec spec_;
  std::vector<DeviceArray<float>> ring_;  // [n_layer] of [window, n_head * head_dim]
  std::vector<std::vector<int32_t>> ring_pos_;  // [n_layer][window]
  std::vector<size_t> start_, count_;     // oldest slot, slots filled
  std::vector<DeviceArray<float>> colsum_, colcount_;  // [n_layer] of [n_head, ld]
  std::vector<int64_t> ld_;
};

}  // namespace kvsieve
