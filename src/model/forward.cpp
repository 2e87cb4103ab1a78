#include "model/forward.h"

#include <algorithm>
#include <cmath>

#include "backend/cpu/ops.h"
#include "core/error.h"

namespace kvsieve {

Forward::Forward(const Model& m, ThreadPool& pool)
    : m_(m), pool_(pool), c_(m.config()), rope_(rope_freqs_for(m.config(), m.weights().rope_freqs)) {}

void Forward::ensure_capacity(int64_t n, int64_t max_rows) {
  auto grow = [](std::vector<float>& v, int64_t size) {
    if (int64_t(v.size()) < size) v.resize(size_t(size));
  };
  const int64_t hd = c_.head_dim;
  grow(x_, n * c_.n_embd);
  grow(xn_, n * c_.n_embd);
  grow(q_, n * c_.n_head * hd);
  grow(k_, n * c_.n_head_kv * hd);
  grow(v_, n * c_.n_head_kv * hd);
  grow(att_, n * c_.n_head * hd);
  grow(gate_, n * c_.n_ff);
  grow(up_, n * c_.n_ff);
  grow(cos_, n * hd / 2);
  grow(sin_, n * hd / 2);
  if (int64_t(pos_.size()) < n) pos_.resize(size_t(n));
  grow(scores_, int64_t(pool_.size()) * max_rows);
}

void Forward::embed(const Batch& b) {
  const int64_t E = c_.n_embd;
  if (b.embd) {
    std::copy(b.embd, b.embd + b.n * E, x_.begin());
    return;
  }
  const TensorView& te = *m_.weights().tok_embd;
  for (int64_t t = 0; t < b.n; ++t) {
    const int32_t id = b.ids[t];
    check(id >= 0 && id < c_.n_vocab, "token id {} is out of range (vocabulary size {})", id,
          c_.n_vocab);
    dequantize_row(te.type, te.row_ptr(id), x_.data() + t * E, E);
  }
}

// Causal attention of the batch's queries over the cache rows of each kv
// head. Rows are sorted by position, so a query at position p sees the prefix
// of rows with pos <= p. Work is split over (query head, token) pairs.
void Forward::attention(int64_t layer, const Batch& b, const KvCache& cache) {
  // Query heads per stored head: the model's group, or 1 when the cache holds
  // a copy of K/V per query head.
  const int64_t hd = c_.head_dim, H = c_.n_head, group = c_.n_head / cache.n_stored();
  const float scale = 1.0f / std::sqrt(float(hd));
  const int64_t stride = int64_t(scores_.size()) / pool_.size();
  pool_.parallel_for(H * b.n, [&](int64_t begin, int64_t end, int thread) {
    float* s = scores_.data() + thread * stride;
    for (int64_t job = begin; job < end; ++job) {
      const int64_t h = job / b.n, t = job % b.n;
      const HeadView kv = cache.head(layer, h / group);
      const int32_t p = b.pos0 + int32_t(t);
      const int64_t n = std::upper_bound(kv.pos, kv.pos + kv.n, p) - kv.pos;
      const float* q = q_.data() + (t * H + h) * hd;
      float* out = att_.data() + (t * H + h) * hd;
      dot_rows_f32(q, kv.k, n, hd, hd, s);
      scale_f32(s, scale, n);
      softmax_inplace(s, n);
      std::fill(out, out + hd, 0.0f);
      axpy_rows_f32(s, kv.v, n, hd, hd, out);
    }
  });
}

void Forward::run(const Batch& b, KvCache& cache, std::vector<float>& logits,
                  const QueryObserver& observe_q) {
  check(b.n > 0, "empty batch");
  check((b.ids != nullptr) != (b.embd != nullptr), "batch needs either ids or embeddings");
  check(cache.geometry().n_head_kv == c_.n_head_kv && c_.n_head % cache.n_stored() == 0,
        "KV cache geometry does not fit the model");
  const int64_t n = b.n, E = c_.n_embd, hd = c_.head_dim, H = c_.n_head, KV = c_.n_head_kv;
  ensure_capacity(n, cache.max_rows() + n);
  embed(b);
  for (int64_t t = 0; t < n; ++t) {
    pos_[size_t(t)] = b.pos0 + int32_t(t);
    rope_cos_sin(rope_, pos_[size_t(t)], cos_.data() + t * hd / 2,
                 sin_.data() + t * hd / 2);
  }
  const ModelWeights& w = m_.weights();
  for (int64_t l = 0; l < c_.n_layer; ++l) {
    const LayerWeights& lw = w.layers[size_t(l)];
    // --- attention block
    for (int64_t t = 0; t < n; ++t)
      rmsnorm(x_.data() + t * E, lw.attn_norm, xn_.data() + t * E, E, c_.rms_eps);
    matmul(*lw.wq, xn_.data(), n, q_.data(), pool_, lw.bq);
    matmul(*lw.wk, xn_.data(), n, k_.data(), pool_, lw.bk);
    matmul(*lw.wv, xn_.data(), n, v_.data(), pool_, lw.bv);
    for (int64_t t = 0; t < n; ++t) {
      const float* cs = cos_.data() + t * hd / 2;
      const float* sn = sin_.data() + t * hd / 2;
      apply_rope(q_.data() + t * H * hd, H, hd, cs, sn, c_.rope_style);
      apply_rope(k_.data() + t * KV * hd, KV, hd, cs, sn, c_.rope_style);
    }
    cache.append(l, k_.data(), v_.data(), pos_.data(), n);
    if (observe_q) observe_q(QueryEvent{l, q_.data(), n, b.pos0, cache});
    attention(l, b, cache);
    matmul(*lw.wo, att_.data(), n, xn_.data(), pool_);
    add_f32(x_.data(), xn_.data(), x_.data(), n * E);
    // --- feed-forward block (SwiGLU)
    for (int64_t t = 0; t < n; ++t)
      rmsnorm(x_.data() + t * E, lw.ffn_norm, xn_.data() + t * E, E, c_.rms_eps);
    matmul(*lw.w_gate, xn_.data(), n, gate_.data(), pool_);
    matmul(*lw.w_up, xn_.data(), n, up_.data(), pool_);
    silu_mul(gate_.data(), up_.data(), gate_.data(), n * c_.n_ff);
    matmul(*lw.w_down, gate_.data(), n, xn_.data(), pool_);
    add_f32(x_.data(), xn_.data(), x_.data(), n * E);
  }
  if (!b.logits) return;
  // Output projection only for the rows asked for.
  const int64_t first = b.all_logits ? 0 : n - 1, rows = n - first;
  for (int64_t t = first; t < n; ++t)
    rmsnorm(x_.data() + t * E, w.output_norm, xn_.data() + (t - first) * E, E, c_.rms_eps);
  logits.resize(size_t(rows * c_.n_vocab));
  matmul(*w.output, xn_.data(), rows, logits.data(), pool_);
}

}  // namespace kvsieve
