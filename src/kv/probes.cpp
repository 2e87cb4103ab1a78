#include "kv/probes.h"

#include <algorithm>

#include "core/error.h"
#include "kv/kv_store.h"

namespace kvsieve {

Recorder::Recorder(Backend& be, int64_t n_layer, int64_t n_head, int64_t head_dim, RecordSpec spec)
    : be_(be), n_layer_(n_layer), n_head_(n_head), head_dim_(head_dim), spec_(spec) {
  check(spec.window >= 0, "probe window must be >= 0");
  const size_t L = size_t(n_layer);
  ring_.resize(L);
  ring_pos_.resize(L);
  start_.assign(L, 0);
  count_.assign(L, 0);
  colsum_.resize(L);
  colcount_.resize(L);
  ld_.assign(L, 0);
  for (size_t l = 0; l < L; ++l) {
    ring_[l].bind(be);
    colsum_[l].bind(be);
    colcount_[l].bind(be);
    if (spec.window > 0) {
      ring_[l].resize(spec.window * n_head * head_dim);
      ring_pos_[l].assign(size_t(spec.window), 0);
    }
  }
}

void Recorder::record_queries(int64_t layer, const float* q, const int32_t* pos, int64_t n) {
  const int64_t w = spec_.window;
  if (w == 0 || n <= 0) return;
  const size_t l = size_t(layer), width = size_t(n_head_ * head_dim_);
  // Only the batch's last `window` tokens can matter.
  for (int64_t t = std::max<int64_t>(0, n - w); t < n; ++t) {
    const size_t slot = (start_[l] + count_[l]) % size_t(w);
    be_.copy(ring_[l].data() + slot * width, q + size_t(t) * width, width * sizeof(float));
    ring_pos_[l][slot] = pos[t];
    if (count_[l] < size_t(w)) ++count_[l];
    else start_[l] = (start_[l] + 1) % size_t(w);
  }
}

ProbeBlock Recorder::window(int64_t layer) const {
  const size_t l = size_t(layer), width = size_t(n_head_ * head_dim_), n = count_[l];
  ProbeBlock b;
  b.q.bind(be_);
  b.k.bind(be_);
  b.q.resize(int64_t(n * width));
  b.pos.resize(n);
  if (n == 0) return b;
  const size_t w = size_t(spec_.window), first = std::min(n, w - start_[l]);
  // Oldest first: [start, end of ring), then [0, rest).
  be_.copy(b.q.data(), ring_[l].data() + start_[l] * width, first * width * sizeof(float));
  if (n > first) be_.copy(b.q.data() + first * width, ring_[l].data(), (n - first) * width * sizeof(float));
  for (size_t i = 0; i < n; ++i) b.pos[i] = ring_pos_[l][(start_[l] + i) % w];
  return b;
}

void Recorder::fit(int64_t layer, const KvStore& store) {
  if (!spec_.column_sums) return;
  const size_t l = size_t(layer);
  const int64_t cap = store.capacity(layer);
  if (cap <= ld_[l]) return;
  DeviceArray<float> s(be_, n_head_ * cap), c(be_, n_head_ * cap);
  be_.zero(s.data(), s.bytes());
  be_.zero(c.data(), c.bytes());
  for (int64_t h = 0; h < n_head_ && ld_[l] > 0; ++h) {
    be_.copy(s.data() + h * cap, colsum_[l].data() + h * ld_[l], size_t(ld_[l]) * sizeof(float));
    be_.copy(c.data() + h * cap, colcount_[l].data() + h * ld_[l], size_t(ld_[l]) * sizeof(float));
  }
  colsum_[l] = std::move(s);
  colcount_[l] = std::move(c);
  ld_[l] = cap;
}

void Recorder::retain_rows(const RowSelection& sel, const KvStore& store) {
  if (!spec_.column_sums) return;
  check(sel.n_layer == n_layer_ && sel.n_heads > 0 && n_head_ % sel.n_heads == 0,
        "recorder: a selection of {} heads does not fit {} query heads", sel.n_heads, n_head_);
  for (int64_t l = 0; l < n_layer_; ++l) {
    const int64_t cap = store.capacity(l), off_total = sel.off[size_t((l + 1) * sel.n_heads)] -
                                                      sel.off[size_t(l * sel.n_heads)];
    DeviceArray<float> s(be_, n_head_ * cap), c(be_, n_head_ * cap);
    be_.zero(s.data(), s.bytes());
    be_.zero(c.data(), c.bytes());
    const std::vector<int64_t> off = sel.layer_offsets(l);
    DeviceArray<int64_t> idx_dev;
    const int64_t* idx = sel.layer_items(l);
    if (!be_.host_memory() && off_total > 0) {
      idx_dev.bind(be_);
      idx_dev.resize(off_total);
      be_.upload(idx_dev.data(), idx, size_t(off_total) * sizeof(int64_t));
      idx = idx_dev.data();
    }
    if (off_total > 0 && ld_[size_t(l)] > 0) {
      GatherArgs g;
      g.n_heads = n_head_;
      g.sel_div = n_head_ / sel.n_heads;
      g.ld_src = ld_[size_t(l)];
      g.ld_dst = cap;
      g.row_bytes = sizeof(float);
      g.idx = idx;
      g.off = off.data();
      g.src = colsum_[size_t(l)].data();
      g.dst = s.data();
      be_.gather(g);
      g.src = colcount_[size_t(l)].data();
      g.dst = c.data();
      be_.gather(g);
    }
    colsum_[size_t(l)] = std::move(s);
    colcount_[size_t(l)] = std::move(c);
    ld_[size_t(l)] = cap;
  }
}

void Recorder::erase_rows(const KvStore& store) {
  if (!spec_.column_sums) return;
  const int64_t group = n_head_ / store.n_stored();
  for (int64_t l = 0; l < n_layer_; ++l) {
    const int64_t ld = ld_[size_t(l)];
    for (int64_t h = 0; h < n_head_; ++h) {
      const int64_t r = std::min(ld, store.rows(l, h / group));
      if (r >= ld) continue;
      be_.zero(colsum_[size_t(l)].data() + h * ld + r, size_t(ld - r) * sizeof(float));
      be_.zero(colcount_[size_t(l)].data() + h * ld + r, size_t(ld - r) * sizeof(float));
    }
  }
}

void Recorder::clear() {
  std::fill(start_.begin(), start_.end(), 0);
  std::fill(count_.begin(), count_.end(), 0);
  for (int64_t l = 0; l < n_layer_; ++l) {
    if (ld_[size_t(l)] == 0) continue;
    be_.zero(colsum_[size_t(l)].data(), colsum_[size_t(l)].bytes());
    be_.zero(colcount_[size_t(l)].data(), colcount_[size_t(l)].bytes());
  }
}

}  // namespace kvsieve
