#include "model/forward.h"

#include <algorithm>

#include "core/error.h"

namespace kvsieve {

Forward::Forward(const Model& m, Backend& be)
    : m_(m), be_(be), c_(m.config()), rope_(rope_freqs_for(m.config(), m.weights().rope_freqs)) {
  for (auto* a : {&x_, &xn_, &q_, &k_, &v_, &att_, &gate_, &up_, &cos_, &sin_, &out_}) a->bind(be);
}

void Forward::ensure_capacity(int64_t n) {
  if (n <= n_cap_) return;
  const int64_t hd = c_.head_dim;
  x_.resize(n * c_.n_embd);
  xn_.resize(n * c_.n_embd);
  q_.resize(n * c_.n_head * hd);
  k_.resize(n * c_.n_head_kv * hd);
  v_.resize(n * c_.n_head_kv * hd);
  att_.resize(n * c_.n_head * hd);
  gate_.resize(n * c_.n_ff);
  up_.resize(n * c_.n_ff);
  cos_.resize(n * hd / 2);
  sin_.resize(n * hd / 2);
  pos_.resize(size_t(n));
  n_cap_ = n;
}

void Forward::run(const Batch& b, KvStore& store, Recorder* rec, std::vector<float>& logits) {
  check(b.n > 0, "empty batch");
  check((b.ids != nullptr) != (b.embd != nullptr), "batch needs either ids or embeddings");
  check(store.geometry().n_head_kv == c_.n_head_kv && c_.n_head % store.n_stored() == 0 &&
            store.geometry().n_layer == c_.n_layer && store.geometry().head_dim == c_.head_dim,
        "KV cache geometry does not fit the model");
  const int64_t n = b.n, E = c_.n_embd, hd = c_.head_dim, H = c_.n_head, KV = c_.n_head_kv;
  ensure_capacity(n);
  if (b.embd) {
    be_.upload(x_.data(), b.embd, size_t(n * E) * sizeof(float));
  } else {
    for (int64_t t = 0; t < n; ++t)
      check(b.ids[t] >= 0 && b.ids[t] < c_.n_vocab, "token id {} is out of range (vocabulary size {})",
            b.ids[t], c_.n_vocab);
    be_.embed(*m_.weights().tok_embd, b.ids, n, x_.data());
  }
  for (int64_t t = 0; t < n; ++t) pos_[size_t(t)] = b.pos0 + int32_t(t);
  be_.rope_table(rope_, pos_.data(), n, cos_.data(), sin_.data());
  const ModelWeights& w = m_.weights();
  for (int64_t l = 0; l < c_.n_layer; ++l) {
    const LayerWeights& lw = w.layers[size_t(l)];
    // --- attention block
    be_.rmsnorm(x_.data(), lw.attn_norm, xn_.data(), n, E, c_.rms_eps);
    be_.matmul(*lw.wq, xn_.data(), n, q_.data(), lw.bq);
    be_.matmul(*lw.wk, xn_.data(), n, k_.data(), lw.bk);
    be_.matmul(*lw.wv, xn_.data(), n, v_.data(), lw.bv);
    be_.rope(q_.data(), n, H, hd, cos_.data(), sin_.data(), c_.rope_style);
    be_.rope(k_.data(), n, KV, hd, cos_.data(), sin_.data(), c_.rope_style);
    store.append(l, k_.data(), v_.data(), pos_.data(), n);
    AttentionArgs a;
    a.kv = store.layer(l);
    a.q = q_.data();
    a.q_pos = pos_.data();
    a.n = n;
    a.n_head = H;
    a.out = att_.data();
    if (rec) {
      rec->record_queries(l, q_.data(), pos_.data(), n);
      if (rec->spec().column_sums) {
        rec->fit(l, store);
        a.colsum = rec->colsum(l);
        a.colcount = rec->colcount(l);
        a.ld = rec->ld(l);
      }
    }
    be_.attention(a);
    be_.matmul(*lw.wo, att_.data(), n, xn_.data());
    be_.add(x_.data(), xn_.data(), x_.data(), n * E);
    // --- feed-forward block (SwiGLU)
    be_.rmsnorm(x_.data(), lw.ffn_norm, xn_.data(), n, E, c_.rms_eps);
    be_.matmul(*lw.w_gate, xn_.data(), n, gate_.data());
    be_.matmul(*lw.w_up, xn_.data(), n, up_.data());
    be_.swiglu(gate_.data(), up_.data(), gate_.data(), n * c_.n_ff);
    be_.matmul(*lw.w_down, gate_.data(), n, xn_.data());
    be_.add(x_.data(), xn_.data(), x_.data(), n * E);
  }
  if (!b.logits) return;
  // Output projection only for the rows asked for.
  const int64_t first = b.all_logits ? 0 : n - 1, rows = n - first;
  be_.rmsnorm(x_.data() + first * E, w.output_norm, xn_.data(), rows, E, c_.rms_eps);
  logits.resize(size_t(rows * c_.n_vocab));
  if (be_.host_memory()) {  // straight into the caller's vector
    be_.matmul(*w.output, xn_.data(), rows, logits.data());
    return;
  }
  out_.reserve(rows * c_.n_vocab);
  be_.matmul(*w.output, xn_.data(), rows, out_.data());
  be_.download(logits.data(), out_.data(), logits.size() * sizeof(float));
}

}  // namespace kvsieve
