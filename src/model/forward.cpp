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

void Forward::embed(const int32_t* ids, const float* embd, int64_t n) {
  const int64_t E = c_.n_embd;
  ensure_capacity(n);
  if (embd) {
    be_.upload(x_.data(), embd, size_t(n * E) * sizeof(float));
  } else {
    for (int64_t t = 0; t < n; ++t)
      check(ids[t] >= 0 && ids[t] < c_.n_vocab, "token id {} is out of range (vocabulary size {})",
            ids[t], c_.n_vocab);
    be_.embed(*m_.weights().tok_embd, ids, n, x_.data());
  }
  be_.rope_table(rope_, pos_.data(), n, cos_.data(), sin_.data());
}

void Forward::layers(int64_t n, const std::function<void(int64_t)>& attend) {
  const int64_t E = c_.n_embd, hd = c_.head_dim, H = c_.n_head, KV = c_.n_head_kv;
  const ModelWeights& w = m_.weights();
  for (int64_t l = 0; l < c_.n_layer; ++l) {
    const LayerWeights& lw = w.layers[size_t(l)];
    // --- attention block (its norm: after the previous layer's residual add)
    if (l == 0) be_.rmsnorm(x_.data(), lw.attn_norm, xn_.data(), n, E, c_.rms_eps);
    const MatmulOut qkv[3] = {{lw.wq, q_.data(), lw.bq}, {lw.wk, k_.data(), lw.bk},
                              {lw.wv, v_.data(), lw.bv}};
    be_.matmuls(qkv, xn_.data(), n);
    be_.rope(q_.data(), n, H, hd, cos_.data(), sin_.data(), c_.rope_style);
    be_.rope(k_.data(), n, KV, hd, cos_.data(), sin_.data(), c_.rope_style);
    attend(l);
    be_.matmul(*lw.wo, att_.data(), n, xn_.data());
    // --- feed-forward block (SwiGLU)
    be_.add_rmsnorm(x_.data(), xn_.data(), lw.ffn_norm, xn_.data(), n, E, c_.rms_eps);
    const MatmulOut gate_up[2] = {{lw.w_gate, gate_.data(), nullptr}, {lw.w_up, up_.data(), nullptr}};
    be_.matmuls(gate_up, xn_.data(), n);
    be_.swiglu(gate_.data(), up_.data(), gate_.data(), n * c_.n_ff);
    be_.matmul(*lw.w_down, gate_.data(), n, xn_.data());
    if (l + 1 < c_.n_layer)
      be_.add_rmsnorm(x_.data(), xn_.data(), w.layers[size_t(l + 1)].attn_norm, xn_.data(), n, E,
                      c_.rms_eps);
    else
      be_.add(x_.data(), xn_.data(), x_.data(), n * E);
  }
}

void Forward::project(int64_t first, int64_t rows, float* host_out) {
  const ModelWeights& w = m_.weights();
  const int64_t E = c_.n_embd;
  be_.rmsnorm(x_.data() + first * E, w.output_norm, xn_.data(), rows, E, c_.rms_eps);
  if (be_.host_memory()) {  // straight into the caller's memory
    be_.matmul(*w.output, xn_.data(), rows, host_out);
    return;
  }
  out_.reserve(rows * c_.n_vocab);
  be_.matmul(*w.output, xn_.data(), rows, out_.data());
  be_.download(host_out, out_.data(), size_t(rows * c_.n_vocab) * sizeof(float));
}

// Attention of rows [r0, r0+n) of q_ (their K/V already in k_, v_ at the
// same rows) against one store, appending those rows to it first. The store
// (and its recorder) may belong to another session, whose backend is another
// queue (a CUDA stream): it appends after this pass's products, and this
// pass's attention reads the store after the append.
static void attend_rows(Backend& be, KvStore& store, Recorder* rec, int64_t l, float* q, const float* k,
                        const float* v, float* out, const int32_t* pos, int64_t n, int64_t n_head) {
  Backend& sb = store.backend();
  if (&sb != &be) sb.wait_for(be);
  store.append(l, k, v, pos, n);
  AttentionArgs a;
  a.kv = store.layer(l);
  a.q = q;
  a.q_pos = pos;
  a.n = n;
  a.n_head = n_head;
  a.out = out;
  if (rec) {
    rec->record_queries(l, q, pos, n);
    if (rec->spec().column_sums) {
      rec->fit(l, store);
      a.colsum = rec->colsum(l);
      a.colcount = rec->colcount(l);
      a.ld = rec->ld(l);
    }
  }
  if (&sb != &be) be.wait_for(sb);
  be.attention(a);
}

void Forward::run(const Batch& b, KvStore& store, Recorder* rec, std::vector<float>& logits) {
  check(b.n > 0, "empty batch");
  check((b.ids != nullptr) != (b.embd != nullptr), "batch needs either ids or embeddings");
  check(store.geometry().n_head_kv == c_.n_head_kv && c_.n_head % store.n_stored() == 0 &&
            store.geometry().n_layer == c_.n_layer && store.geometry().head_dim == c_.head_dim,
        "KV cache geometry does not fit the model");
  const int64_t n = b.n;
  ensure_capacity(n);
  for (int64_t t = 0; t < n; ++t) pos_[size_t(t)] = b.pos0 + int32_t(t);
  embed(b.ids, b.embd, n);
  layers(n, [&](int64_t l) {
    attend_rows(be_, store, rec, l, q_.data(), k_.data(), v_.data(), att_.data(), pos_.data(), n,
                c_.n_head);
  });
  if (!b.logits) return;
  // Output projection only for the rows asked for.
  const int64_t first = b.all_logits ? 0 : n - 1, rows = n - first;
  logits.resize(size_t(rows * c_.n_vocab));
  project(first, rows, logits.data());
}

void Forward::run_rows(const int32_t* ids, const int32_t* pos, int64_t n, KvStore* const* stores,
                       Recorder* const* recs, std::vector<float>* const* logits) {
  check(n > 0, "empty batch");
  for (int64_t i = 0; i < n; ++i) {
    const KvStore& s = *stores[i];
    check(s.geometry().n_head_kv == c_.n_head_kv && c_.n_head % s.n_stored() == 0 &&
              s.geometry().n_layer == c_.n_layer && s.geometry().head_dim == c_.head_dim,
          "KV cache geometry does not fit the model");
  }
  ensure_capacity(n);
  std::copy(pos, pos + n, pos_.begin());
  embed(ids, nullptr, n);
  const int64_t H = c_.n_head, hd = c_.head_dim, KV = c_.n_head_kv;
  layers(n, [&](int64_t l) {
    // Row i is a sequence of its own: its one query reads its own store.
    for (int64_t i = 0; i < n; ++i)
      attend_rows(be_, *stores[i], recs[i], l, q_.data() + i * H * hd, k_.data() + i * KV * hd,
                  v_.data() + i * KV * hd, att_.data() + i * H * hd, pos_.data() + i, 1, H);
  });
  // One projection for all rows, then each row's logits to its owner.
  const int64_t V = c_.n_vocab;
  rows_logits_.resize(size_t(n * V));
  project(0, n, rows_logits_.data());
  for (int64_t i = 0; i < n; ++i)
    logits[i]->assign(rows_logits_.begin() + i * V, rows_logits_.begin() + (i + 1) * V);
}

}  // namespace kvsieve
