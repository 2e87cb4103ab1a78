// The KV cache of one sequence: flat, ragged per head, on any device.
//
// Layout. For every layer l, in the backend's memory:
//   K[l]    [n_stored, capacity[l], head_dim]  type()  keys after RoPE
//   V[l]    [n_stored, capacity[l], head_dim]  type()  values
//   pos[l]  [n_stored, capacity[l]]            i32     original position of each row
// and on the host rows[l] [n_stored], the rows each head holds. Head s of
// layer l holds rows [0, rows[l][s]) of its slice; the rest is free room.
// The element type is f32, f16 or bf16 (values are rounded to it on append;
// attention widens them back to f32).
//
// Rows are sorted by position, strictly increasing: the rows a query at
// position p may see are a prefix (pos <= p). Positions are never rewritten:
// a kept row keeps its RoPE rotation and its position, and new tokens go on
// at the session's next position. After a cut heads hold different rows
// (ragged): Ada-KV gives heads of one layer different budgets, PyramidKV
// layers different ones; each layer's capacity is then its largest head.
//
// Stored heads: one per KV head (n_stored = n_head_kv), or, for query-head
// granularity (the LAQ / KVCache-Factory code repeats K/V per query head),
// `repeat` copies of each, n_stored = n_head_kv * repeat, stored head s
// holding KV head s / repeat; each copy can then be cut on its own. Query
// head h reads stored head h / (n_head / n_stored).
//
// Mutations that cut (retain, gather) are checked in full before anything
// changes: a bad keep set throws Error and leaves the store as it was.
// Positions are mirrored on the host when the device is not, so planning
// (which speaks positions) never reads device memory.
#pragma once
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "kv/keep_sets.h"

namespace kvsieve {

// What the store needs to know of the model (the kv layer never sees model code).
struct KvGeometry {
  int64_t n_layer = 0;
  int64_t n_head_kv = 0;
  int64_t head_dim = 0;
  int64_t repeat = 1;  // copies of each KV head (1, or n_head/n_head_kv for query-head granularity)
  int64_t n_stored() const { return n_head_kv * repeat; }
};

// KV element types a store may hold.
bool kv_type_supported(DType t);  // F32, F16, BF16
// "f32", "f16", "bf16" -> the type; throws Error naming the choices otherwise.
DType kv_type_from_name(const std::string& name);

class KvStore {
 public:
  KvStore(Backend& be, const KvGeometry& g, DType type = DType::F32);
  KvStore(KvStore&&) noexcept = default;
  KvStore& operator=(KvStore&&) noexcept = default;

  const KvGeometry& geometry() const { return geo_; }
  int64_t n_stored() const { return geo_.n_stored(); }
  DType type() const { return type_; }
  Backend& backend() const { return *be_; }

  // Room for `rows` rows per head in every layer, keeping what is held.
  void reserve(int64_t rows);
  int64_t capacity(int64_t layer) const { return layers_[size_t(layer)].cap; }

  // Appends n new tokens to every stored head of `layer`, growing the room
  // when needed.
  //   k, v: device [n, n_head_kv, head_dim] f32 (the projections, keys rotated)
  //   pos:  host [n], increasing, each after every position the layer holds
  void append(int64_t layer, const float* k, const float* v, const int32_t* pos, int64_t n);

  // The layer as device ops read it.
  KvLayerView layer(int64_t l) const;
  int64_t rows(int64_t l, int64_t s) const { return layers_[size_t(l)].rows[size_t(s)]; }
  const int64_t* layer_rows(int64_t l) const { return layers_[size_t(l)].rows.data(); }
  // Host view of the positions head (l, s) holds.
  std::span<const int32_t> positions(int64_t l, int64_t s) const;
  int64_t max_rows() const;
  int64_t max_rows(int64_t l) const;
  // Every head's positions.
  KeepSets positions() const;

  // Positions -> rows of each head, checked: a position the head does not
  // hold, an unsorted list or a shape mismatch throws Error.
  RowSelection rows_of(const KeepSets& keep) const;
  // Rows -> positions.
  KeepSets positions_of(const RowSelection& sel) const;

  // Keeps, in every head, exactly the listed positions (or rows) and frees
  // the memory of the others: each layer's arenas are rebuilt at its largest
  // kept head plus `headroom` rows. Checked in full first.
  void retain(const KeepSets& keep, int64_t headroom = 0);
  void retain_rows(const RowSelection& sel, int64_t headroom = 0);
  // A new store holding only the selected rows, this one untouched: the cut
  // of a full cache written straight into a small one. sel may list
  // n_stored * r heads, r >= 1: head s of the new store then reads head s / r
  // of this one (copies per query head, query-head granularity).
  KvStore gather(const RowSelection& sel, int64_t headroom = 0) const;
  // Drops every row at position >= pos in every head (e.g. soft tokens that
  // were run only to read their queries).
  void erase_from(int32_t pos);
  // Switches to query-head granularity: every KV head copied `repeat` times
  // (requires repeat == 1 now).
  void replicate(int64_t repeat);
  void clear();

  // Bytes of the K and V rows held (what a budget is about), of their
  // position index, and allocated in all (room included).
  size_t kv_bytes() const;
  size_t index_bytes() const;
  size_t bytes() const { return kv_bytes() + index_bytes(); }
  size_t capacity_bytes() const;

  // Host copies in f32 of head (l, s)'s rows: k, v [rows, head_dim] (either
  // may be null). For tests and host-side references.
  void read_head(int64_t l, int64_t s, std::vector<float>* k, std::vector<float>* v) const;

 private:
  struct Layer {
    int64_t cap = 0;
    DeviceArray<uint8_t> k, v;       // [n_stored, cap, head_dim] of type_
    DeviceArray<int32_t> pos_dev;    // [n_stored, cap], only when the device is not the host
    std::vector<int32_t> pos;        // host [n_stored, cap]
    std::vector<int64_t> rows;       // host [n_stored]
  };
  size_t row_bytes() const { return size_t(geo_.head_dim) * dtype_row_bytes(type_, 1); }
  void grow(Layer& L, int64_t cap);  // keeps the rows held
  void check_selection(const RowSelection& sel, int64_t heads_per_src) const;
  // dst := the rows sel picks for layer l (dst head h reading src head h / r),
  // at a capacity of the largest kept head plus headroom.
  void gather_layer(const Layer& src, const RowSelection& sel, int64_t l, int64_t r, Layer& dst,
                    int64_t n_dst, int64_t headroom) const;

  Backend* be_;
  KvGeometry geo_;
  DType type_;
  std::vector<Layer> layers_;  // [n_layer]
};

}  // namespace kvsieve
